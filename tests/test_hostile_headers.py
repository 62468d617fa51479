"""Property-based: arbitrary ``Authorization`` (and API-key) values never crash a guarded view.

Whatever the value, the answer is 400 or 401 with a code from the closed set,
and every ``WWW-Authenticate`` line matches the challenge grammar the
extension speaks: nothing from the request ever reaches a header.
"""

from __future__ import annotations

import re
import typing as t

from conftest import make_app
from flask import Flask
from flask.typing import ResponseReturnValue
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from flask_authgate import Identity
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate.errors import ERRORS

#: RFC 6750 §3 characters of a quoted error_description (no ``"`` and no ``\``).
_DESC = r'"[\x20\x21\x23-\x5b\x5d-\x7e]*"'
BEARER_LINE = re.compile(
    rf'Bearer realm="api"(?:, error="invalid_request"|, error="invalid_token", error_description={_DESC})?'
)
API_KEY_LINE = re.compile(rf'ApiKey realm="api"(?:, error="invalid_key", error_description={_DESC})?')
REFUSALS = {"token_missing", "token_invalid", "invalid_request", "api_key_invalid"}

# What a WSGI header value can hold: no CR, LF or other line breaks; latin-1 and beyond
# (the test client passes non-latin-1 text through as a real server would not, which is harsher).
_header_chars = st.characters(
    codec="utf-8",
    exclude_categories=("Cs", "Zl", "Zp"),
    exclude_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\x00",
)
_b64ish = st.text(alphabet="ABCabc019-._~+/=, \"'\\;:", max_size=40)
_scheme = st.sampled_from(["Bearer", "bearer", "BEARER", "BeArEr", "Basic", "Digest", "Token", "ApiKey", ""])
authorization_values = st.one_of(
    st.text(_header_chars, max_size=80),
    st.builds(lambda s, sp, v: f"{s}{sp}{v}", _scheme, st.sampled_from([" ", "  ", "\t", ""]), _b64ish),
    st.builds(lambda s, v: f"{s} {v}", _scheme, st.text(_header_chars, max_size=60)),
    st.lists(st.builds(lambda s, v: f"{s} {v}", _scheme, _b64ish), min_size=2, max_size=3).map(", ".join),
)


def guarded_app(*, api_keys: bool) -> Flask:
    app, gate = make_app()

    @app.route("/me", methods=["GET", "POST"])
    @login_required
    def me() -> ResponseReturnValue:
        return {"sub": current_identity.subject}

    if api_keys:

        @gate.api_key_loader
        def load(key: str) -> Identity | None:
            return None

    return app


def check(rv: t.Any, *, api_keys: bool) -> None:
    assert rv.status_code in (400, 401)
    body = rv.get_json()
    assert body["code"] in REFUSALS
    assert body == {
        "error": "Bad Request" if rv.status_code == 400 else "Unauthorized",
        "code": body["code"],
        "message": ERRORS[body["code"]].message,
        "status": rv.status_code,
    }
    assert ERRORS[body["code"]].status == rv.status_code
    lines = rv.headers.getlist("WWW-Authenticate")
    assert lines, "a 400/401 always carries a challenge"
    assert BEARER_LINE.fullmatch(lines[0])
    if api_keys and rv.status_code == 401:
        assert len(lines) == 2
        assert API_KEY_LINE.fullmatch(lines[1])
    else:
        assert len(lines) == 1
    assert rv.headers.getlist("Cache-Control") == ["no-store"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=authorization_values)
def test_arbitrary_authorization(value: str) -> None:
    app = guarded_app(api_keys=False)
    rv = app.test_client().get("/me", headers={"Authorization": value})
    check(rv, api_keys=False)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(authorization=st.one_of(st.none(), authorization_values), key=st.text(_header_chars, max_size=60))
def test_arbitrary_api_key_and_authorization(authorization: str | None, key: str) -> None:
    app = guarded_app(api_keys=True)
    headers = {"X-API-Key": key}
    if authorization is not None:
        headers["Authorization"] = authorization
    rv = app.test_client().post("/me", headers=headers)
    check(rv, api_keys=True)
