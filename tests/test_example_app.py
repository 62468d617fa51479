from __future__ import annotations

from example_app import create_app


def test_me_needs_a_token() -> None:
    app = create_app({"TESTING": True})
    rv = app.test_client().get("/api/me")
    assert rv.status_code == 401
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']
