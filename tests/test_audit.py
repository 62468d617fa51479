"""AUTHGATE_AUDIT_LOG: one JSON line per decision on the ``flask_authgate.audit`` logger.

The lines are read as an operator reads them: from a real ``logging``
handler writing ``%(message)s`` into a stream, split on line breaks, each
parsed with :func:`json.loads`.
"""

from __future__ import annotations

import collections.abc as cabc
import io
import json
import logging
import typing as t

import pytest
from conftest import make_app
from flask import Flask
from flask.typing import ResponseReturnValue
from kit import add_admin_and_doc_views
from kit import add_view
from kit import bearer

from flask_authgate import AuthGate
from flask_authgate import Identity
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import roles_required
from flask_authgate.audit import AUDIT_LOGGER
from flask_authgate.audit import AuditLog
from flask_authgate.audit import audit_record
from flask_authgate.pipeline import Decision

FIELDS = ["time", "event", "outcome", "code", "reason", "status", "scheme", "method", "endpoint", "subject", "client"]


class Lines:
    """A handler on the audit logger that writes bare messages, as a JSON-lines deployment would."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self.records: list[logging.LogRecord] = []
        self.handler.addFilter(self._keep)

    def _keep(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return True

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def parsed(self) -> list[dict[str, t.Any]]:
        # str.splitlines also splits on \r, \x1c-\x1e, \x85, U+2028 and U+2029: any of them
        # left raw in a line would show here as an extra (unparseable) line.
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def lines() -> cabc.Iterator[Lines]:
    logger = logging.getLogger(AUDIT_LOGGER)
    out = Lines()
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(out.handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield out
    finally:
        logger.removeHandler(out.handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def audited_app(config: dict[str, t.Any] | None = None) -> tuple[Flask, AuthGate]:
    return make_app({"AUTHGATE_AUDIT_LOG": True, **(config or {})})


def issue(app: Flask, gate: AuthGate, subject: str = "alice", **kwargs: t.Any) -> str:
    with app.app_context():
        return gate.create_access_token(subject, **kwargs)


def test_one_json_line_per_decision_with_the_documented_fields(lines: Lines) -> None:
    app, gate = audited_app()

    add_admin_and_doc_views(app, ["GET", "DELETE"])
    client = app.test_client()
    admin_token = issue(app, gate, roles=["admin"])
    plain_token = issue(app, gate)
    addr = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.delete("/admin", headers=bearer(admin_token), environ_base=addr).status_code == 200
    assert client.get("/admin", environ_base=addr).status_code == 401
    assert client.get("/admin", headers=bearer(plain_token)).status_code == 403
    assert client.get("/doc/bob?secret=1", headers=bearer(plain_token)).status_code == 404

    records = lines.parsed()
    assert len(records) == 4  # one line per request, each a complete JSON object
    for record in records:
        assert list(record) == FIELDS
        assert record["event"] == "authgate.decision"
        assert record["time"].endswith("Z") and "T" in record["time"]
    first, second, third, fourth = records
    assert {k: v for k, v in first.items() if k != "time"} == {
        "event": "authgate.decision",
        "outcome": "allowed",
        "code": "ok",
        "reason": None,
        "status": 200,
        "scheme": "jwt",
        "method": "DELETE",
        "endpoint": "admin",
        "subject": "alice",
        "client": "203.0.113.9",
    }
    assert (second["outcome"], second["code"], second["reason"], second["status"], second["subject"]) == (
        "denied",
        "token_missing",
        "no_credentials",
        401,
        None,
    )
    assert (third["code"], third["reason"], third["status"], third["subject"], third["client"]) == (
        "insufficient_role",
        "role",
        403,
        "alice",
        "127.0.0.1",
    )
    # A refusal in the view wins over the guard that let the request in; no path, no query.
    assert (fourth["code"], fourth["reason"], fourth["status"], fourth["endpoint"]) == (
        "not_found",
        "authorize",
        404,
        "doc",
    )
    assert "secret" not in lines.text and "/doc/bob" not in lines.text
    assert all(r.levelno == logging.INFO and r.name == AUDIT_LOGGER for r in lines.records)
    assert [r.authgate_audit for r in lines.records] == records  # type: ignore[attr-defined]


def test_no_token_key_secret_or_header_value_in_the_lines(lines: Lines) -> None:
    app, gate = audited_app({"AUTHGATE_TOKEN_LOCATIONS": ["headers", "cookies"], "AUTHGATE_COOKIE_SECURE": False})
    api_key = "ak_" + "Z" * 40

    @gate.api_key_loader
    def load_key(key: str) -> Identity | None:
        return Identity(subject="ci-bot") if key == api_key else None

    app.add_url_rule("/me", "me", login_required(lambda: {"ok": True}), methods=["GET", "POST"])
    client = app.test_client()
    good = issue(app, gate, "alice", claims={"email": "alice@example.test", "note": "claim-value-xyz"})
    revoked = issue(app, gate, "bob")
    with app.app_context():
        gate.revoke(revoked)
    bad = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    sent = [
        client.get("/me", headers={**bearer(good), "X-Trace": "header-value-123"}),
        client.get("/me", headers=bearer(bad)),
        client.get("/me", headers=bearer(revoked)),
        client.get("/me", headers={"X-API-Key": api_key}),
        client.get("/me", headers={"X-API-Key": api_key + "-wrong"}),
        client.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}),
    ]
    client.set_cookie("authgate_access", good)
    sent.append(client.post("/me", headers={"X-CSRF-Token": "csrf-wrong-value"}))
    assert [r.status_code for r in sent] == [200, 401, 401, 200, 401, 401, 403]

    records = lines.parsed()
    assert len(records) == len(sent)
    text = lines.text
    secret = app.config["SECRET_KEY"]
    for needle in [good, bad, revoked, api_key, secret, "header-value-123", "dXNlcjpwYXNzd29yZA", "csrf-wrong-value"]:
        assert needle not in text
    for part in good.split(".") + revoked.split("."):  # not even one segment of a token
        assert part not in text
    assert "alice@example.test" not in text and "claim-value-xyz" not in text  # claims other than sub
    assert [r["code"] for r in records] == [
        "ok",
        "token_invalid",
        "token_revoked",
        "ok",
        "api_key_invalid",
        "token_missing",
        "csrf_failed",
    ]
    assert records[3]["scheme"] == "api_key" and records[3]["subject"] == "ci-bot"


HOSTILE = 'alice\n{"outcome":"allowed","subject":"admin"}\r\n\u2028\u2029\x00\x1b[31m\x85"\\'


def test_a_hostile_subject_cannot_forge_a_second_line(lines: Lines) -> None:
    app, gate = audited_app()
    app.add_url_rule("/admin", "admin", roles_required("admin")(lambda: {"ok": True}))
    token = issue(app, gate, HOSTILE)
    assert app.test_client().get("/admin", headers=bearer(token)).status_code == 403
    text = lines.text
    assert text.count("\n") == 1 and text.endswith("}\n")
    for raw in ("\r", "\u2028", "\u2029", "\x00", "\x1b", "\x85"):
        assert raw not in text
    assert text.isascii()
    (record,) = lines.parsed()
    assert record["subject"] == HOSTILE  # escaped, not altered
    assert record["outcome"] == "denied"


def test_a_hostile_method_and_client_address_cannot_forge_a_line(lines: Lines) -> None:
    # The app-wide allow list refuses before routing has a say: the request's own method and
    # address reach the log. Both are escaped and clipped.
    app, _ = audited_app({"AUTHGATE_IP_ALLOWLIST": ["10.0.0.0/8"]})
    method = 'GET\n{"outcome":"allowed"}' + "X" * 100
    address = '192.0.2.1\n{"outcome":"allowed"}' + "9" * 100
    response = app.test_client().open("/anything", method=method, environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 403
    assert lines.text.count("\n") == 1
    (record,) = lines.parsed()
    assert record["code"] == "ip_denied" and record["endpoint"] is None
    assert record["method"] == method.upper()[:32] + "\u2026"  # Werkzeug upper-cases the method
    assert record["client"] == address[:64] + "\u2026"


def test_long_subjects_are_clipped(lines: Lines) -> None:
    app, gate = audited_app()
    app.add_url_rule("/me", "me", login_required(lambda: {"ok": True}))
    subject = "u" * 5000
    token = issue(app, gate, subject)
    assert app.test_client().get("/me", headers=bearer(token)).status_code == 200
    (record,) = lines.parsed()
    assert record["subject"] == "u" * 1024 + "\u2026"


def test_async_and_methodview_views_and_a_503(lines: Lines) -> None:
    pytest.importorskip("asgiref")
    app, gate = audited_app()
    down = {"now": False}

    @gate.user_loader
    async def load_user(identity: Identity) -> dict[str, str]:
        if down["now"]:
            raise ConnectionError("db password=hunter2 at 10.9.9.9")  # its text must never be logged here
        return {"name": identity.subject}

    add_view(app, "/async", login_required, kind="async", returns={"ok": True}, endpoint="async_view")
    add_view(app, "/items", login_required, kind="methodview", returns={"ok": True})
    client = app.test_client()
    auth = bearer(issue(app, gate))
    assert client.get("/async", headers=auth).status_code == 200
    assert client.get("/items", headers=auth).status_code == 200
    down["now"] = True
    assert client.get("/items", headers=bearer(issue(app, gate, "bob"))).status_code == 503
    records = lines.parsed()
    assert [(r["endpoint"], r["code"], r["status"]) for r in records] == [
        ("async_view", "ok", 200),
        ("items", "ok", 200),
        ("items", "auth_unavailable", 503),
    ]
    assert records[2]["reason"] == "callback_error"
    assert "hunter2" not in lines.text


def test_public_views_and_unguarded_requests_log_nothing(lines: Lines) -> None:
    app, _ = audited_app()

    @app.get("/open")
    @public
    def open_view() -> ResponseReturnValue:
        return {"ok": True}

    client = app.test_client()
    assert client.get("/open", headers={"Authorization": "Bearer junk"}).status_code == 200
    assert client.get("/missing").status_code == 404
    assert lines.text == ""


def test_off_by_default(lines: Lines) -> None:
    app, _ = make_app()
    assert app.extensions["authgate"].decision_hooks == []
    app.add_url_rule("/me", "me", login_required(lambda: {"ok": True}))
    assert app.test_client().get("/me").status_code == 401
    assert lines.text == ""


def test_nothing_is_built_when_the_logger_drops_info(lines: Lines) -> None:
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.WARNING)
    app, _ = audited_app()
    app.add_url_rule("/me", "me", login_required(lambda: {"ok": True}))
    assert app.test_client().get("/me").status_code == 401
    assert lines.records == []


def test_metrics_and_audit_together() -> None:
    pytest.importorskip("opentelemetry.metrics")
    app, _ = make_app({"AUTHGATE_AUDIT_LOG": True, "AUTHGATE_METRICS": True})
    hooks = app.extensions["authgate"].decision_hooks
    assert [type(h).__name__ for h in hooks] == ["DecisionMetrics", "AuditLog"]


# -- the pieces, directly ------------------------------------------------------------------


def test_audit_record_and_the_injected_clock() -> None:
    decision = Decision("denied", "token_expired", 401, "none", 0.002, "expired", "me", "GET", None)
    assert audit_record(decision, when=0.0, client=None) == {
        "time": "1970-01-01T00:00:00.000Z",
        "event": "authgate.decision",
        "outcome": "denied",
        "code": "token_expired",
        "reason": "expired",
        "status": 401,
        "scheme": "none",
        "method": "GET",
        "endpoint": "me",
        "subject": None,
        "client": None,
    }
    logger = logging.getLogger("test_audit.custom")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        AuditLog(logger, level=logging.WARNING, clock=lambda: 1_800_000_000.5)(decision)  # outside a request
    finally:
        logger.removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["time"] == "2027-01-15T08:00:00.500Z"
    assert record["client"] is None
