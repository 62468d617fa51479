"""pytest fixtures for apps that use flask-authgate, registered as the ``flask_authgate`` plugin.

Installing flask-authgate registers this plugin through the ``pytest11``
entry point, so a project's tests can use the fixtures with no setup beyond
an ``app`` fixture of their own:

* ``authgate_client_factory``: ``authgate_client_factory(subject="alice", roles=["admin"])``
  returns an :class:`~flask_authgate.testing.AuthGateClient` for the ``app``
  fixture (or for ``app=`` when given).
* ``authgate_make_token``: :func:`~flask_authgate.testing.make_token` bound
  to the ``app`` fixture: ``authgate_make_token("alice", expires_in=-5)``.
* ``fake_identity_provider``: a running
  :class:`~flask_authgate.testing.FakeIdentityProvider`, stopped after the test.

Nothing here is autouse, and flask-authgate itself is imported only when a
fixture is used, so the plugin costs nothing in projects that don't use it.
Turn it off with ``-p no:flask_authgate``.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import pytest

if t.TYPE_CHECKING:
    from flask import Flask

    from .testing import AuthGateClient
    from .testing import FakeIdentityProvider


class ClientFactory(t.Protocol):
    def __call__(
        self,
        subject: str | None = ...,
        *,
        roles: cabc.Iterable[str] = ...,
        scopes: cabc.Iterable[str] = ...,
        claims: cabc.Mapping[str, t.Any] | None = ...,
        fresh: bool = ...,
        app: Flask | None = ...,
        use_cookies: bool = ...,
    ) -> AuthGateClient: ...


class TokenFactory(t.Protocol):
    def __call__(self, subject: str, *, app: Flask | None = ..., **kwargs: t.Any) -> str: ...


def _user_app(request: pytest.FixtureRequest) -> Flask:
    try:
        return t.cast("Flask", request.getfixturevalue("app"))
    except pytest.FixtureLookupError:
        pytest.fail(
            "the flask_authgate fixtures need an 'app' fixture returning your Flask app (or pass app=... to the factory)",
            pytrace=False,
        )


@pytest.fixture
def authgate_client_factory(request: pytest.FixtureRequest) -> ClientFactory:
    """Make test clients signed in as someone: ``authgate_client_factory("alice", roles=["admin"])``.

    The client sends a valid access token for that identity on every request
    (see :class:`~flask_authgate.testing.AuthGateClient`); with no subject it
    sends nothing. It uses your ``app`` fixture unless ``app=`` is given.
    """
    from .testing import AuthGateClient

    def factory(
        subject: str | None = None,
        *,
        roles: cabc.Iterable[str] = (),
        scopes: cabc.Iterable[str] = (),
        claims: cabc.Mapping[str, t.Any] | None = None,
        fresh: bool = False,
        app: Flask | None = None,
        use_cookies: bool = True,
    ) -> AuthGateClient:
        flask_app = app if app is not None else _user_app(request)
        return AuthGateClient(
            flask_app,
            flask_app.response_class,
            use_cookies=use_cookies,
            subject=subject,
            roles=roles,
            scopes=scopes,
            claims=claims,
            fresh=fresh,
        )

    return factory


@pytest.fixture
def authgate_make_token(request: pytest.FixtureRequest) -> TokenFactory:
    """:func:`~flask_authgate.testing.make_token` for your ``app`` fixture (or ``app=``).

    ``authgate_make_token("alice", expires_in=-5)`` is an expired token.
    """
    from .testing import make_token

    def factory(subject: str, *, app: Flask | None = None, **kwargs: t.Any) -> str:
        return make_token(app if app is not None else _user_app(request), subject, **kwargs)

    return factory


@pytest.fixture
def fake_identity_provider() -> cabc.Iterator[FakeIdentityProvider]:
    """A running :class:`~flask_authgate.testing.FakeIdentityProvider` (needs ``cryptography``)."""
    from .testing import FakeIdentityProvider

    with FakeIdentityProvider() as provider:
        yield provider
