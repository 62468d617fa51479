"""The JSON API: one guard of each kind.

=================================  =============================================
route                              guard
=================================  =============================================
``GET /api/me``                    ``@login_required``
``POST /api/me/password``          ``@fresh_login_required`` (a token from a real login)
``GET /api/admin/users``           ``@roles_required("admin")``
``GET /api/reports``               ``@scopes_required("reports:read")``
``GET /api/internal/health``       ``@public`` + ``@ip_allowed`` (loopback only)
``GET /api/notes``                 login (the app's default deny)
``POST /api/notes``                login
``DELETE /api/notes``              ``@step_up_required("mfa", max_age=300)``: a second-factor login,
                                   at most five minutes old (RFC 9470)
``GET /api/notes/<id>``            ``require_owner(..., hide=True)``: someone else's note is a 404
``PUT, DELETE /api/notes/<id>``    ``require_owner(..., hide=True)``: someone else's note is a 404 too
=================================  =============================================
"""

from __future__ import annotations

import typing as t

from flask import Blueprint
from flask import Response
from flask import abort
from flask import jsonify
from flask import url_for

from flask_authgate import current_identity
from flask_authgate import current_user
from flask_authgate import fresh_login_required
from flask_authgate import ip_allowed
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import require_owner
from flask_authgate import roles_required
from flask_authgate import scopes_required
from flask_authgate import step_up_required

from . import db
from .auth import ACR_SECOND_FACTOR
from .auth import json_body
from .extensions import gate

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_TITLE = 200
MAX_BODY = 10_000
#: How recent the second-factor login must be for a destructive action (seconds).
STEP_UP_MAX_AGE = 300


def _me() -> db.User:
    return t.cast(db.User, current_user._get_current_object())


@bp.get("/me")
@login_required
def me() -> dict[str, t.Any]:
    return {
        **_me().public(),
        "scopes": sorted(current_identity.scopes),
        "fresh": current_identity.fresh,
    }


@bp.post("/me/password")
@fresh_login_required
def change_password() -> Response | dict[str, t.Any]:
    """Only with a token from a real login: a refreshed token gets 401 ``fresh_token_required``."""
    password = json_body().get("new_password")
    if not isinstance(password, str) or len(password) < 8:
        return gate.error_response(400, "invalid_input", "The new password needs at least 8 characters")
    db.set_password(_me().id, password)
    return {"message": "Password changed"}


@bp.get("/admin/users")
@roles_required("admin")
def admin_users() -> dict[str, t.Any]:
    return {"users": db.all_users()}


@bp.get("/reports")
@scopes_required("reports:read")
def reports() -> dict[str, t.Any]:
    return {"report": db.counts()}


@bp.get("/internal/health")
@public
@ip_allowed("127.0.0.0/8", "::1/128")
def health() -> dict[str, t.Any]:
    """For a load balancer on the same machine: no token, but loopback only."""
    db.get_db().execute("SELECT 1").fetchone()
    return {"status": "ok"}


def _note_input() -> tuple[str, str] | Response:
    data = json_body()
    title, body = data.get("title"), data.get("body", "")
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        return gate.error_response(400, "invalid_input", f"A note needs a title of 1 to {MAX_TITLE} characters")
    if not isinstance(body, str) or len(body) > MAX_BODY:
        return gate.error_response(400, "invalid_input", f"A note body is text of at most {MAX_BODY} characters")
    return title.strip(), body


@bp.get("/notes")
def list_notes() -> dict[str, t.Any]:
    """My notes (no decorator: ``AUTHGATE_DEFAULT_DENY`` already needs a login)."""
    return {"notes": db.notes_of(_me().id)}


@bp.post("/notes")
def create_note() -> Response:
    data = _note_input()
    if isinstance(data, Response):
        return data
    note = db.create_note(_me().id, *data)
    response = jsonify(note)
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_note", note_id=note["id"])
    return response


@bp.delete("/notes")
@step_up_required(ACR_SECOND_FACTOR, max_age=STEP_UP_MAX_AGE)
def delete_all_notes() -> dict[str, t.Any]:
    """Delete every note of mine: only after a second-factor login within the last five minutes.

    Otherwise 401 ``insufficient_user_authentication`` with ``acr_values="mfa"``
    and ``max_age="300"`` in the challenge; the page then asks for the
    password and the code (``POST /auth/step-up``) and retries.
    """
    return {"deleted": db.delete_notes_of(_me().id)}


def _existing(note_id: int) -> t.Any:
    row = db.get_note(note_id)
    if row is None:
        abort(404)  # the same JSON 404 as a hidden note
    return row


@bp.get("/notes/<int:note_id>")
def get_note(note_id: int) -> dict[str, t.Any]:
    """Someone else's note answers exactly like a note that does not exist."""
    row = _existing(note_id)
    require_owner(row["owner_id"], hide=True)
    return db.note_dict(row)


@bp.put("/notes/<int:note_id>")
def update_note(note_id: int) -> Response | dict[str, t.Any]:
    """Someone else's note: the same 404 as a missing one (a 403 would tell that it exists)."""
    row = _existing(note_id)
    require_owner(row["owner_id"], hide=True)
    data = _note_input()
    if isinstance(data, Response):
        return data
    return db.update_note(row, *data)


@bp.delete("/notes/<int:note_id>")
def delete_note(note_id: int) -> Response:
    row = _existing(note_id)
    require_owner(row["owner_id"], hide=True)
    db.delete_note(note_id)
    return Response(status=204)
