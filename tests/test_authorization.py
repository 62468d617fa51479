"""Object-level authorization: ``require_owner`` and ``authorize`` (issue 3).

The "load the record, then check" view: ``@login_required`` first (so an
anonymous caller learns nothing about which records exist), then the lookup
(``abort(404)`` for a missing record), then the ownership check.
"""

from __future__ import annotations

import dataclasses
import typing as t

import pytest
from conftest import make_app
from flask import Flask
from flask import abort
from flask.testing import FlaskClient
from flask.views import MethodView
from kit import access_token
from kit import bearer
from kit import body
from kit import invalid_token_challenge
from kit import login

from flask_authgate import AuthGate
from flask_authgate import authorize
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import require_owner

NOT_FOUND = body("not_found")
NOT_OWNER = body("not_owner")
FORBIDDEN = body("forbidden")
TOKEN_MISSING = body("token_missing")
TOKEN_INVALID = body("token_invalid")
INVALID_CHALLENGE = invalid_token_challenge("token_invalid")


@dataclasses.dataclass(frozen=True)
class Note:
    id: str
    owner: str
    text: str


NOTES = {
    "1": Note("1", "alice", "alice's note"),
    "2": Note("2", "bob", "bob's note"),
}


def load_note(note_id: str) -> Note:
    note = NOTES.get(note_id)
    if note is None:
        abort(404)
    return note


def _register_views(app: Flask) -> None:
    @app.get("/sync/notes/<note_id>")
    @login_required
    def sync_note(note_id: str) -> dict[str, str]:
        note = load_note(note_id)
        require_owner(note.owner)
        return {"text": note.text}

    @app.get("/sync/hidden/<note_id>")
    @login_required
    def sync_hidden(note_id: str) -> dict[str, str]:
        note = load_note(note_id)
        require_owner(note.owner, hide=True)
        return {"text": note.text}

    @app.get("/async/notes/<note_id>")
    @login_required
    async def async_note(note_id: str) -> dict[str, str]:
        note = load_note(note_id)
        require_owner(note.owner)
        return {"text": note.text}

    @app.get("/async/hidden/<note_id>")
    @login_required
    async def async_hidden(note_id: str) -> dict[str, str]:
        note = load_note(note_id)
        require_owner(note.owner, hide=True)
        return {"text": note.text}

    class NoteView(MethodView):
        decorators: t.ClassVar[list[t.Callable[..., t.Any]]] = [login_required]

        def get(self, note_id: str) -> dict[str, str]:
            note = load_note(note_id)
            require_owner(note.owner)
            return {"text": note.text}

    class HiddenNoteView(MethodView):
        decorators: t.ClassVar[list[t.Callable[..., t.Any]]] = [login_required]

        def get(self, note_id: str) -> dict[str, str]:
            note = load_note(note_id)
            require_owner(note.owner, hide=True)
            return {"text": note.text}

    app.add_url_rule("/methodview/notes/<note_id>", view_func=NoteView.as_view("mv_note"))
    app.add_url_rule("/methodview/hidden/<note_id>", view_func=HiddenNoteView.as_view("mv_hidden"))

    # No guard at all: require_owner itself asks for an identity first.
    @app.get("/unguarded/notes/<note_id>")
    def unguarded_note(note_id: str) -> dict[str, str]:
        note = NOTES["1"] if note_id == "1" else NOTES["2"]
        require_owner(note.owner)
        return {"text": note.text}

    @app.get("/async-unguarded/notes/<note_id>")
    async def async_unguarded_note(note_id: str) -> dict[str, str]:
        note = NOTES["1"] if note_id == "1" else NOTES["2"]
        require_owner(note.owner, hide=True)
        return {"text": note.text}

    @app.get("/sync/authorize/<answer>")
    def sync_authorize(answer: str) -> dict[str, bool]:
        authorize(answer == "yes")
        return {"ok": True}

    @app.get("/sync/authorize-hidden/<answer>")
    def sync_authorize_hidden(answer: str) -> dict[str, bool]:
        authorize(answer == "yes", hide=True)
        return {"ok": True}

    @app.get("/async/authorize/<answer>")
    async def async_authorize(answer: str) -> dict[str, bool]:
        authorize(answer == "yes")
        return {"ok": True}

    @app.get("/async/authorize-hidden/<answer>")
    async def async_authorize_hidden(answer: str) -> dict[str, bool]:
        authorize(answer == "yes", hide=True)
        return {"ok": True}

    # The documented admin bypass: written out, never implied by require_owner.
    @app.get("/admin-bypass/notes/<note_id>")
    @login_required
    def admin_bypass(note_id: str) -> dict[str, str]:
        note = load_note(note_id)
        authorize(note.owner == current_identity.subject or "admin" in current_identity.roles)
        return {"text": note.text}

    @app.get("/numeric/<int:owner_id>")
    @login_required
    def numeric_owner(owner_id: int) -> dict[str, int]:
        require_owner(owner_id)
        return {"owner": owner_id}

    @app.get("/owner-none")
    @login_required
    def owner_none() -> dict[str, bool]:
        require_owner(None)
        return {"ok": True}


@pytest.fixture
def notes_app(app: Flask) -> Flask:
    _register_views(app)
    return app


@pytest.fixture
def notes_client(notes_app: Flask) -> FlaskClient:
    return notes_app.test_client()


KINDS = [pytest.param("sync", id="sync"), pytest.param("async", id="async"), pytest.param("methodview", id="mv")]


def _note_path(kind: str, hidden: bool, note_id: str) -> str:
    if kind == "methodview":
        return f"/methodview/{'hidden' if hidden else 'notes'}/{note_id}"
    return f"/{kind}/{'hidden' if hidden else 'notes'}/{note_id}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hidden", [pytest.param(False, id="plain"), pytest.param(True, id="hide")])
def test_anonymous_gets_401_before_any_ownership_check(notes_client: FlaskClient, kind: str, hidden: bool) -> None:
    existing = notes_client.get(_note_path(kind, hidden, "1"))
    missing = notes_client.get(_note_path(kind, hidden, "404"))
    for rv in (existing, missing):
        assert rv.status_code == 401
        assert rv.get_json() == TOKEN_MISSING
        assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']
    # The same answer whether or not the record exists: no existence oracle.
    assert existing.data == missing.data
    assert list(existing.headers) == list(missing.headers)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_token_gets_the_same_401_for_existing_and_missing_records(notes_client: FlaskClient, kind: str) -> None:
    headers = {"Authorization": "Bearer not.a.token"}
    existing = notes_client.get(_note_path(kind, True, "1"), headers=headers)
    missing = notes_client.get(_note_path(kind, True, "404"), headers=headers)
    assert existing.status_code == missing.status_code == 401
    assert existing.get_json() == TOKEN_INVALID
    assert existing.headers.getlist("WWW-Authenticate") == [INVALID_CHALLENGE]
    assert existing.data == missing.data
    assert list(existing.headers) == list(missing.headers)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hidden", [pytest.param(False, id="plain"), pytest.param(True, id="hide")])
def test_owner_gets_200(notes_app: Flask, gate: AuthGate, kind: str, hidden: bool) -> None:
    rv = notes_app.test_client().get(_note_path(kind, hidden, "1"), headers=login(notes_app, gate, "alice"))
    assert rv.status_code == 200
    assert rv.get_json() == {"text": "alice's note"}


@pytest.mark.parametrize("kind", KINDS)
def test_other_user_gets_403_not_owner(notes_app: Flask, gate: AuthGate, kind: str) -> None:
    rv = notes_app.test_client().get(_note_path(kind, False, "1"), headers=login(notes_app, gate, "bob"))
    assert rv.status_code == 403
    assert rv.get_json() == NOT_OWNER
    assert rv.headers.getlist("WWW-Authenticate") == []
    assert rv.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("kind", KINDS)
def test_hidden_404_is_byte_identical_to_a_real_missing_record(notes_app: Flask, gate: AuthGate, kind: str) -> None:
    client = notes_app.test_client()
    headers = login(notes_app, gate, "bob")
    hidden = client.get(_note_path(kind, True, "1"), headers=headers)  # alice's note, hidden from bob
    missing = client.get(_note_path(kind, True, "404"), headers=headers)  # abort(404) in the view
    assert hidden.status_code == missing.status_code == 404
    assert hidden.data == missing.data
    assert list(hidden.headers) == list(missing.headers)
    assert hidden.get_json() == NOT_FOUND
    assert list(hidden.headers) == [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(hidden.data))),
        ("Cache-Control", "no-store"),
    ]


def test_hidden_404_matches_an_unknown_url_too(notes_app: Flask, gate: AuthGate) -> None:
    client = notes_app.test_client()
    headers = login(notes_app, gate, "bob")
    hidden = client.get("/sync/hidden/1", headers=headers)
    unknown = client.get("/no/such/url", headers=headers)
    assert unknown.status_code == 404
    assert hidden.data == unknown.data
    assert list(hidden.headers) == list(unknown.headers)


@pytest.mark.parametrize("kind", [pytest.param("sync", id="sync"), pytest.param("async", id="async")])
def test_require_owner_without_a_guard_asks_for_an_identity_first(notes_app: Flask, gate: AuthGate, kind: str) -> None:
    client = notes_app.test_client()
    path = "/unguarded/notes/1" if kind == "sync" else "/async-unguarded/notes/1"
    rv = client.get(path)
    assert rv.status_code == 401
    assert rv.get_json() == TOKEN_MISSING
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']
    rv = client.get(path, headers={"Authorization": "Bearer garbage"})
    assert rv.status_code == 401
    assert rv.get_json() == TOKEN_INVALID
    assert client.get(path, headers=login(notes_app, gate, "alice")).status_code == 200
    rv = client.get(path, headers=login(notes_app, gate, "bob"))
    assert rv.get_json() == (NOT_OWNER if kind == "sync" else NOT_FOUND)


@pytest.mark.parametrize("kind", [pytest.param("sync", id="sync"), pytest.param("async", id="async")])
@pytest.mark.parametrize(
    ("hidden", "status", "body"),
    [
        pytest.param(False, 403, FORBIDDEN, id="forbidden"),
        pytest.param(True, 404, NOT_FOUND, id="hidden"),
    ],
)
def test_authorize_false(
    notes_app: Flask, gate: AuthGate, kind: str, hidden: bool, status: int, body: dict[str, t.Any]
) -> None:
    client = notes_app.test_client()
    prefix = f"/{kind}/authorize-hidden" if hidden else f"/{kind}/authorize"
    headers = login(notes_app, gate, "alice")
    rv = client.get(f"{prefix}/no", headers=headers)
    assert rv.status_code == status
    assert rv.get_json() == body
    assert rv.headers.getlist("WWW-Authenticate") == []
    assert rv.headers["Cache-Control"] == "no-store"
    ok = client.get(f"{prefix}/yes", headers=headers)
    assert ok.status_code == 200
    assert ok.get_json() == {"ok": True}


@pytest.mark.parametrize("kind", [pytest.param("sync", id="sync"), pytest.param("async", id="async")])
@pytest.mark.parametrize("answer", [pytest.param("yes", id="allowed"), pytest.param("no", id="refused")])
def test_authorize_needs_an_identity_first(notes_client: FlaskClient, kind: str, answer: str) -> None:
    rv = notes_client.get(f"/{kind}/authorize-hidden/{answer}")
    assert rv.status_code == 401
    assert rv.get_json() == TOKEN_MISSING
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']


@pytest.mark.parametrize(
    ("subject", "roles", "note_id", "status"),
    [
        pytest.param("alice", [], "1", 200, id="owner"),
        pytest.param("bob", [], "1", 403, id="other-user"),
        pytest.param("bob", ["editor"], "1", 403, id="other-role"),
        pytest.param("carol", ["admin"], "1", 200, id="admin-bypass"),
        pytest.param("carol", ["admin"], "404", 404, id="admin-missing"),
    ],
)
def test_explicit_admin_bypass(
    notes_app: Flask, gate: AuthGate, subject: str, roles: list[str], note_id: str, status: int
) -> None:
    rv = notes_app.test_client().get(
        f"/admin-bypass/notes/{note_id}", headers=login(notes_app, gate, subject, roles=roles)
    )
    assert rv.status_code == status
    expected = {200: {"text": "alice's note"}, 403: FORBIDDEN, 404: NOT_FOUND}[status]
    assert rv.get_json() == expected


def test_require_owner_does_not_let_admins_bypass(notes_app: Flask, gate: AuthGate) -> None:
    rv = notes_app.test_client().get("/sync/notes/1", headers=login(notes_app, gate, "carol", roles=["admin"]))
    assert rv.status_code == 403
    assert rv.get_json() == NOT_OWNER


@pytest.mark.parametrize(
    ("subject", "status"),
    [pytest.param("42", 200, id="same-as-str"), pytest.param("420", 403, id="different")],
)
def test_require_owner_compares_as_strings(notes_app: Flask, gate: AuthGate, subject: str, status: int) -> None:
    rv = notes_app.test_client().get("/numeric/42", headers=login(notes_app, gate, subject))
    assert rv.status_code == status


def test_require_owner_none_is_never_owned(notes_app: Flask, gate: AuthGate) -> None:
    rv = notes_app.test_client().get("/owner-none", headers=login(notes_app, gate, "None"))
    assert rv.status_code == 403
    assert rv.get_json() == NOT_OWNER


def test_hidden_404_in_problem_format_matches_the_apps_own_404() -> None:
    app, gate = make_app({"AUTHGATE_ERROR_FORMAT": "problem"})
    _register_views(app)
    client = app.test_client()
    headers = login(app, gate, "bob")
    hidden = client.get("/sync/hidden/1", headers=headers)
    missing = client.get("/sync/hidden/404", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.headers["Content-Type"] == "application/problem+json"
    assert hidden.data == missing.data
    assert list(hidden.headers) == list(missing.headers)


def test_hidden_404_goes_through_the_apps_own_404_handler_too() -> None:
    # An app with its own 404 page: the hidden 404 must use it as well, or the
    # difference would reveal which records exist.
    app, gate = make_app()

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[dict[str, str], int]:
        return {"page": "custom not found"}, 404

    _register_views(app)
    client = app.test_client()
    headers = login(app, gate, "bob")
    for kind in ("sync", "async", "methodview"):
        hidden = client.get(_note_path(kind, True, "1"), headers=headers)
        missing = client.get(_note_path(kind, True, "404"), headers=headers)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.get_json() == {"page": "custom not found"}
        assert hidden.data == missing.data
        assert list(hidden.headers) == list(missing.headers)


def test_unguarded_async_view_with_async_loaders(token_format: str) -> None:
    # No guard loads the identity first: require_owner() verifies the token itself, from inside
    # the view's event loop, and must still await the async user_loader and roles_loader.
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    seen: list[str] = []

    @gate.user_loader
    async def load_user(identity: t.Any) -> dict[str, str] | None:
        seen.append(identity.subject)
        return None if identity.subject == "ghost" else {"name": identity.subject}

    @gate.roles_loader
    async def load_roles(identity: t.Any) -> list[str]:
        return ["editor"]

    @app.get("/notes/<owner>")
    async def note(owner: str) -> dict[str, t.Any]:
        require_owner(owner)
        return {"sub": current_identity.subject, "roles": sorted(current_identity.roles)}

    client = app.test_client()
    alice = access_token(app, gate)
    ghost = access_token(app, gate, "ghost")
    ok = client.get("/notes/alice", headers=bearer(alice))
    assert (ok.status_code, ok.get_json()) == (200, {"sub": "alice", "roles": ["editor"]})
    other = client.get("/notes/bob", headers=bearer(alice))
    assert (other.status_code, other.get_json()["code"]) == (403, "not_owner")
    gone = client.get("/notes/ghost", headers=bearer(ghost))
    assert (gone.status_code, gone.get_json()["code"]) == (401, "identity_not_found")
    anonymous = client.get("/notes/alice")
    assert (anonymous.status_code, anonymous.get_json()["code"]) == (401, "token_missing")
    assert seen == ["alice", "alice", "ghost"]
