"""Public callback types, reused by the registrars."""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import typing as t

from .identity import Identity

if t.TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from .errors import AuthError

#: ``identity -> user object``; ``None`` fails the request with 401 ``identity_not_found``. May be ``async def``.
UserLoader = cabc.Callable[[Identity], t.Any]
#: ``identity -> role names`` for roles kept in a database; replaces the token's roles. May be ``async def``.
RolesLoader = cabc.Callable[[Identity], cabc.Iterable[str] | cabc.Awaitable[cabc.Iterable[str]]]
#: ``raw API key -> Identity``, or ``None`` for an unknown key (401 ``api_key_invalid``). May be ``async def``.
ApiKeyLoader = cabc.Callable[[str], Identity | cabc.Awaitable[Identity | None] | None]
#: ``AuthError -> response value`` for the body; the extension keeps its status-specific headers. May be ``async def``.
ErrorRenderer = cabc.Callable[["AuthError"], "ResponseReturnValue | cabc.Awaitable[ResponseReturnValue]"]


@dataclasses.dataclass(slots=True)
class Callbacks:
    """The callbacks registered on one :class:`~flask_authgate.AuthGate`."""

    user_loader: UserLoader | None = None
    roles_loader: RolesLoader | None = None
    api_key_loader: ApiKeyLoader | None = None
    error_renderer: ErrorRenderer | None = None
