"""Random sequences of requests through one app: every answer is what that request's own credentials allow.

Issue 9's "done means": a hypothesis state machine mixes tokens (valid,
garbage, expired, revoked, refresh), cookies, refresh rotations, revocations
and app-context nesting (requests sent inside an already pushed app context,
nested test request contexts) and checks each response against a model that
knows only that request's credentials. Nothing may carry over from an earlier
request, and nothing may be a 500.
"""

from __future__ import annotations

import typing as t

import hypothesis.strategies as st
from conftest import make_app
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import precondition
from hypothesis.stateful import rule
from kit import add_view
from kit import bearer
from kit import subject_json

from flask_authgate import AuthGate
from flask_authgate import current_identity
from flask_authgate import get_identity
from flask_authgate import login_required
from flask_authgate import refresh_token_required
from flask_authgate import roles_required

USERS = ("alice", "bob", "carol")


class Token(t.NamedTuple):
    value: str
    subject: str
    admin: bool
    kind: str  # "access" or "refresh"


def build() -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_LOCATIONS": ["headers", "cookies"], "AUTHGATE_COOKIE_SECURE": False})

    add_view(
        app,
        "/me",
        login_required,
        returns=lambda: {"sub": current_identity.subject, "admin": "admin" in current_identity.roles},
    )

    add_view(app, "/admin", roles_required("admin"), returns=subject_json, kind="async")

    @app.get("/open")
    def open_view() -> dict[str, t.Any]:
        identity = get_identity()
        return {"sub": identity.subject if identity else None}

    add_view(app, "/refresh", refresh_token_required, methods=["POST"], returns=gate.rotate_refresh_token)

    return app, gate


class Requests(RuleBasedStateMachine):
    """The model: which tokens exist, which are revoked or used; nothing about earlier requests."""

    @initialize()
    def setup(self) -> None:
        self.app, self.gate = build()
        self.tokens: list[Token] = []
        self.revoked: set[str] = set()  # token values revoked one by one or used up (refresh)
        self.revoked_subjects: set[str] = set()
        self.outer = self.app.app_context()
        self.outer.push()  # every request of the run is sent inside this one app context

    def teardown(self) -> None:
        self.outer.pop()

    # -- making tokens --------------------------------------------------------------------

    @rule(subject=st.sampled_from(USERS), admin=st.booleans(), kind=st.sampled_from(["access", "refresh"]))
    def issue(self, subject: str, admin: bool, kind: str) -> None:
        roles = ["admin"] if admin else []
        if kind == "access":
            value = self.gate.create_access_token(subject, roles=roles)
        else:
            value = self.gate.create_refresh_token(subject, roles=roles)
        self.tokens.append(Token(value, subject, admin, kind))

    def expected(self, token: Token | None, path: str) -> tuple[int, str | None]:
        """What this request alone should get: (status, subject or code)."""
        if token is None:
            return (200, None) if path == "/open" else (401, "token_missing")
        dead = token.value in self.revoked or token.subject in self.revoked_subjects
        wanted = "refresh" if path == "/refresh" else "access"
        if path == "/open":
            alive = not dead and token.kind == "access"
            return 200, token.subject if alive else None
        if token.kind != wanted:
            return 401, "token_type_invalid"
        if dead:
            return 401, "token_revoked"
        if path == "/admin" and not token.admin:
            return 403, "insufficient_role"
        return 200, token.subject

    def check(self, rv: t.Any, token: Token | None, path: str) -> None:
        assert rv.status_code != 500
        status, detail = self.expected(token, path)
        assert rv.status_code == status, (path, token, rv.get_json())
        body = rv.get_json()
        if status == 200 and path != "/refresh":
            assert body["sub"] == detail
        elif status != 200:
            assert body["code"] == detail

    # -- requests --------------------------------------------------------------------------

    @rule(data=st.data(), path=st.sampled_from(["/me", "/admin", "/open"]), how=st.sampled_from(["header", "cookie"]))
    def request(self, data: st.DataObject, path: str, how: str) -> None:
        token = data.draw(st.none() | st.sampled_from(self.tokens)) if self.tokens else None
        client = self.app.test_client(use_cookies=False)
        headers = {}
        if token is not None:
            headers = bearer(token.value) if how == "header" else {"Cookie": f"authgate_access={token.value}"}
        if token is not None and how == "cookie" and token.kind == "refresh":
            headers = bearer(token.value)  # the access cookie holds access tokens only
        self.check(client.get(path, headers=headers), token, path)

    @rule(garbage=st.sampled_from(["x.y.z", "Bearer", "eyJhbGciOiJub25lIn0.e30.", "a" * 9000, "Basic Zm9vOmJhcg=="]))
    def garbage(self, garbage: str) -> None:
        client = self.app.test_client(use_cookies=False)
        value = garbage if garbage.startswith(("Bearer", "Basic")) else f"Bearer {garbage}"
        rv = client.get("/me", headers={"Authorization": value})
        assert rv.status_code == 401
        assert rv.get_json()["code"] in ("token_invalid", "token_missing")
        assert client.get("/open", headers={"Authorization": value}).get_json() == {"sub": None}

    @precondition(lambda self: bool(self.tokens))
    @rule(data=st.data())
    def nested_contexts(self, data: st.DataObject) -> None:
        first = data.draw(st.sampled_from(self.tokens))
        second = data.draw(st.none() | st.sampled_from(self.tokens))

        def seen(token: Token | None) -> str | None:
            _status, who = self.expected(token, "/open")
            return who

        with self.app.test_request_context(headers=bearer(first.value) if first else {}):
            before = get_identity()
            inner_headers = bearer(second.value) if second is not None else {}
            with self.app.test_request_context(headers=inner_headers):
                inner = get_identity()
                assert (inner.subject if inner else None) == seen(second)
            after = get_identity()
            assert (before.subject if before else None) == (after.subject if after else None) == seen(first)

    @precondition(lambda self: bool(self.tokens))
    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(self.tokens))
        self.gate.revoke(token.value)
        self.revoked.add(token.value)

    @rule(subject=st.sampled_from(USERS))
    def revoke_subject(self, subject: str) -> None:
        self.gate.revoke_subject(subject)
        self.revoked_subjects.add(subject)
        # Tokens issued after this moment are fresh again: forget the subject for new ones.
        self.tokens = [tok for tok in self.tokens if tok.subject != subject]
        self.revoked_subjects.discard(subject)

    @precondition(lambda self: any(tok.kind == "refresh" for tok in self.tokens))
    @rule(data=st.data())
    def rotate(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from([tok for tok in self.tokens if tok.kind == "refresh"]))
        client = self.app.test_client(use_cookies=False)
        rv = client.post("/refresh", headers=bearer(token.value))
        status, _ = self.expected(token, "/refresh")
        assert rv.status_code == status, rv.get_json()
        if rv.status_code == 200:
            pair = rv.get_json()
            self.revoked.add(token.value)  # used up
            self.tokens.append(Token(pair["access_token"], token.subject, token.admin, "access"))
            self.tokens.append(Token(pair["refresh_token"], token.subject, token.admin, "refresh"))
        else:
            # Reuse of a used refresh token ends its whole family (OWASP): the model cannot tell
            # which tokens are of that family, so it stops sending this subject's tokens.
            self.tokens = [tok for tok in self.tokens if tok.subject != token.subject]

    @invariant()
    def bounded(self) -> None:
        assert len(self.tokens) < 400


Requests.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_request_sequences = Requests.TestCase
