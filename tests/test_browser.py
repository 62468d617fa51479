"""The example page in a real browser (Debian's Chromium, driven by Playwright).

Each test serves a fresh example app with a real threaded Werkzeug server on
127.0.0.1 and checks what the user *sees* (rendered text), following the
client rules: 401 ``token_expired`` refreshes silently, any other 401 returns
to the login form, 403 shows "Access denied" and keeps the user logged in,
404 shows "Not found". A screenshot of each state goes to
``test-artifacts/browser/``.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import json
import pathlib
import shutil
import time
import typing as t

import jwt
import pytest
from conftest import free_port
from flask import Flask
from kit import bearer
from kit import chromium
from kit import seeded_example_db
from kit import serving
from werkzeug.serving import make_server

from example_app import create_app
from example_app import gate
from flask_authgate.dpop import access_token_hash
from flask_authgate.dpop import jwk_thumbprint

pytestmark = pytest.mark.browser

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser
    from playwright.sync_api import Page

ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"
SECRET = "browser-test-secret-" + "z" * 48


class LiveApp(t.NamedTuple):
    app: Flask
    url: str


@pytest.fixture(scope="module")
def browser() -> cabc.Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Seeded once, copied for each test."""
    return seeded_example_db(tmp_path_factory.mktemp("browser-db"))


@pytest.fixture
def live(tmp_path: pathlib.Path, seeded_template: pathlib.Path) -> cabc.Iterator[LiveApp]:
    """The example app on a real threaded Werkzeug server at 127.0.0.1:<free port>."""
    path = tmp_path / "example.sqlite"
    shutil.copy(seeded_template, path)
    app = create_app({"DATABASE": str(path), "SECRET_KEY": SECRET})
    with serving(make_server("127.0.0.1", free_port(), app, threaded=True)) as url:
        yield LiveApp(app, url)


@pytest.fixture
def page(browser: Browser, live: LiveApp) -> cabc.Iterator[Page]:
    context = browser.new_context(viewport={"width": 900, "height": 700})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live.url + "/")
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def shot(page: Page, request: pytest.FixtureRequest, state: str) -> None:
    """Save a screenshot of the current state as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = request.node.name.removeprefix("test_")
    page.screenshot(path=str(ARTIFACTS / f"{name}--{state}.png"), full_page=True)


def sign_in(page: Page, username: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#login-view")).to_be_visible()
    page.fill("#username", username)
    page.fill("#password", f"{username}-password")
    page.click("#login-button")
    expect(page.locator("#session")).to_have_text(
        f"Signed in as {username} ({'admin' if username == 'admin' else 'user'}) Log out"
    )
    # Let the first view's requests finish, so a test that revokes or moves the clock next
    # changes nothing under a request still in flight.
    page.wait_for_load_state("networkidle")


def stored_session(page: Page) -> dict[str, t.Any] | None:
    raw = page.evaluate("sessionStorage.getItem('authgate-demo-session')")
    return t.cast("dict[str, t.Any] | None", json.loads(raw) if raw else None)


def status_text(page: Page) -> str:
    return page.locator("#status").inner_text()


def expect_login_form(page: Page, title: str, code: str, message: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#app-view")).to_be_hidden()
    expect(page.locator("#session")).to_be_hidden()
    expect(page.locator("#status-title")).to_have_text(title)
    expect(page.locator("#status-code")).to_have_text(code)
    expect(page.locator("#status-message")).to_have_text(message)
    assert stored_session(page) is None


def test_the_page_starts_at_the_login_form(page: Page, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#login-view h2")).to_have_text("Sign in")
    expect(page.locator("#status")).to_be_hidden()
    shot(page, request, "login-form")


def test_a_wrong_password_shows_the_code_and_message(page: Page, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    page.fill("#username", "alice")
    page.fill("#password", "wrong")
    page.click("#login-button")
    expect(page.locator("#status")).to_be_visible()
    assert status_text(page) == "Sign-in failed login_failed The username or the password is wrong"
    expect(page.locator("#login-view")).to_be_visible()
    shot(page, request, "login-failed")


def test_a_plain_user_sees_their_notes(page: Page, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    sign_in(page, "alice")
    expect(page.locator("#notes-list li")).to_have_text(["#1 Shopping list", "#2 Ideas"])
    expect(page.locator("#notes-view h2")).to_have_text("My notes")
    expect(page.locator("#status")).to_be_hidden()
    expect(page.locator("#login-view")).to_be_hidden()
    shot(page, request, "my-notes")

    page.click("text=#1 Shopping list")
    expect(page.locator("#note-detail")).to_have_text("#1 Shopping list\nMilk, eggs, coffee")
    shot(page, request, "note-open")


def test_the_admin_panel_is_access_denied_and_the_user_stays_logged_in(
    page: Page, request: pytest.FixtureRequest
) -> None:
    from playwright.sync_api import expect

    sign_in(page, "alice")
    page.click("#nav-admin")
    expect(page.locator("#status-title")).to_have_text("Access denied")
    assert status_text(page) == "Access denied insufficient_role You do not have a role this request requires"
    expect(page.locator("#users-body tr")).to_have_count(0)
    # Still logged in: the session bar, the navigation and the tokens are all still there.
    expect(page.locator("#session")).to_have_text("Signed in as alice (user) Log out")
    expect(page.locator("#login-view")).to_be_hidden()
    stored = stored_session(page)
    assert stored is not None and stored["user"]["username"] == "alice"
    shot(page, request, "access-denied")

    page.click("#nav-reports")
    expect(page.locator("#status-code")).to_have_text("insufficient_scope")
    expect(page.locator("#status-title")).to_have_text("Access denied")

    page.click("#nav-notes")
    expect(page.locator("#notes-list li")).to_have_text(["#1 Shopping list", "#2 Ideas"])
    expect(page.locator("#status")).to_be_hidden()


def test_the_admin_sees_the_admin_panel(page: Page, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    sign_in(page, "admin")
    page.click("#nav-admin")
    rows = page.locator("#users-body tr")
    expect(rows).to_have_count(3)
    assert [row.inner_text() for row in rows.all()] == ["1\tadmin\tadmin\t1", "2\talice\tuser\t2", "3\tbob\tuser\t1"]
    expect(page.locator("#status")).to_be_hidden()
    shot(page, request, "admin-panel")
    page.click("#nav-reports")
    expect(page.locator("#report")).to_have_text("3 users, 4 notes")


def test_an_expired_access_token_is_refreshed_without_the_user_noticing(
    page: Page, live: LiveApp, request: pytest.FixtureRequest
) -> None:
    from playwright.sync_api import expect

    sign_in(page, "alice")
    expect(page.locator("#notes-list li")).to_have_count(2)
    before = stored_session(page)
    assert before is not None
    seen: list[tuple[str, str, int]] = []
    page.on("response", lambda r: seen.append((r.request.method, r.url.removeprefix(live.url), r.status)))
    sent = record_requests(page, live)

    # Twenty minutes later (the access token lives 15): move the app's token clock.
    live.app.extensions["authgate"].tokens.clock = lambda: time.time() + 20 * 60
    page.click("#nav-admin")  # a 403 first: the user stays logged in
    expect(page.locator("#status-title")).to_have_text("Access denied")
    page.click("#nav-notes")
    expect(page.locator("#notes-list li")).to_have_text(["#1 Shopping list", "#2 Ideas"])
    expect(page.locator("#status")).to_be_hidden()
    expect(page.locator("#login-view")).to_be_hidden()
    shot(page, request, "after-silent-refresh")

    assert seen == [
        ("GET", "/api/admin/users", 401),
        ("POST", "/auth/refresh", 200),
        ("GET", "/api/admin/users", 403),
        ("GET", "/api/notes", 200),
    ]
    after = stored_session(page)
    assert after is not None
    assert after["access"] != before["access"]
    assert after["refresh"] != before["refresh"]
    # The refresh token travels as Bearer with a proof of the session's key (no ath: RFC 9449 §5),
    # and the new access token is bound to the same key.
    refresh = sent[1]
    assert (refresh.method, refresh.path) == ("POST", "/auth/refresh")
    assert refresh.headers["authorization"] == f"Bearer {before['refresh']}"
    header, _ = check_proof(refresh.headers["dpop"], "POST", live.url + "/auth/refresh", None)
    retried = sent[2]
    assert retried.headers["authorization"] == f"DPoP {after['access']}"
    header2, _ = check_proof(retried.headers["dpop"], "GET", live.url + "/api/admin/users", after["access"])
    assert header2["jwk"] == header["jwk"]


def test_logging_out_returns_to_the_login_form(page: Page, live: LiveApp, request: pytest.FixtureRequest) -> None:
    sign_in(page, "alice")
    stored = stored_session(page)
    assert stored is not None
    page.click("#logout")
    expect_login_form(page, "Signed out", "", "You have been signed out")
    shot(page, request, "signed-out")
    # The server revoked both tokens, so a copy of them is worthless.
    client = live.app.test_client()
    rv = client.get("/api/me", headers=bearer(stored["access"]))
    assert (rv.status_code, rv.get_json()["code"]) == (401, "token_revoked")
    rv = client.post("/auth/refresh", headers=bearer(stored["refresh"]))
    assert (rv.status_code, rv.get_json()["code"]) == (401, "token_revoked")


def test_a_revoked_token_returns_to_the_login_form(page: Page, live: LiveApp, request: pytest.FixtureRequest) -> None:
    sign_in(page, "alice")
    with live.app.app_context():
        gate.revoke_subject("2")  # an admin ends every session of alice
    page.click("#nav-notes")
    expect_login_form(page, "Please sign in", "token_revoked", "The access token was revoked")
    shot(page, request, "revoked")


def test_a_failed_refresh_returns_to_the_login_form(page: Page, live: LiveApp, request: pytest.FixtureRequest) -> None:
    sign_in(page, "alice")
    seen: list[tuple[str, int]] = []
    page.on("response", lambda r: seen.append((r.url.removeprefix(live.url), r.status)))
    with live.app.app_context():
        gate.revoke_subject("2")  # the refresh token is revoked too
    live.app.extensions["authgate"].tokens.clock = lambda: time.time() + 20 * 60
    page.click("#nav-notes")
    # The access token expired, so the page tried one refresh; it was refused: sign in again.
    expect_login_form(page, "Please sign in", "token_revoked", "The refresh token was revoked")
    assert seen == [("/api/notes", 401), ("/auth/refresh", 401)]
    shot(page, request, "refresh-refused")


def test_another_users_note_is_not_found_where_hidden(page: Page, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    sign_in(page, "alice")
    page.fill("#note-id", "3")  # bob's note
    page.click("#open-note")
    expect(page.locator("#status-title")).to_have_text("Not found")
    assert status_text(page) == "Not found not_found The requested resource was not found"
    expect(page.locator("#note-detail")).to_be_hidden()
    shot(page, request, "hidden-note")

    page.fill("#note-id", "999")  # no such note: the very same message
    page.click("#open-note")
    expect(page.locator("#status-message")).to_have_text("The requested resource was not found")

    page.fill("#note-id", "3")  # deleting it is the same 404: a 403 would tell that it exists
    page.click("#delete-note")
    expect(page.locator("#status-title")).to_have_text("Not found")
    assert status_text(page) == "Not found not_found The requested resource was not found"
    expect(page.locator("#session")).to_be_visible()
    shot(page, request, "not-owner")


def test_a_note_can_be_added_and_the_session_survives_a_reload(page: Page, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    sign_in(page, "bob")
    page.fill("#note-title-input", "Groceries")
    page.fill("#note-body-input", "Bread")
    page.click("#note-form button[type=submit]")
    expect(page.locator("#notes-list li")).to_have_text(["#3 Bob's plans", "#5 Groceries"])
    page.reload()
    expect(page.locator("#session")).to_have_text("Signed in as bob (user) Log out")
    expect(page.locator("#notes-list li")).to_have_text(["#3 Bob's plans", "#5 Groceries"])
    shot(page, request, "after-reload")


# -- DPoP (RFC 9449) and step-up (RFC 9470) ------------------------------------------------


class Sent(t.NamedTuple):
    method: str
    path: str
    headers: dict[str, str]


def record_requests(page: Page, live: LiveApp) -> list[Sent]:
    """Every request the page sends to the app, with its headers (names lower-cased)."""
    sent: list[Sent] = []

    def on_request(request: t.Any) -> None:
        if request.url.startswith(live.url + "/auth/") or request.url.startswith(live.url + "/api/"):
            sent.append(Sent(request.method, request.url.removeprefix(live.url), dict(request.headers)))

    page.on("request", on_request)
    return sent


def decode_segment(segment: str) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def check_proof(proof: str, method: str, url: str, token: str | None) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """Verify a proof the page made, with PyJWT (not the code under test), and return its header and claims."""
    header = decode_segment(proof.split(".")[0])
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "ES256"
    assert sorted(header) == ["alg", "jwk", "typ"]
    assert sorted(header["jwk"]) == ["crv", "kty", "x", "y"]  # the public key only: no "d"
    assert (header["jwk"]["kty"], header["jwk"]["crv"]) == ("EC", "P-256")
    key = jwt.PyJWK(header["jwk"], algorithm="ES256")
    claims = jwt.decode(proof, key.key, algorithms=["ES256"])
    expected = ["htm", "htu", "iat", "jti"] + (["ath"] if token is not None else [])
    assert sorted(claims) == sorted(expected)
    assert (claims["htm"], claims["htu"]) == (method, url)
    assert abs(claims["iat"] - time.time()) < 120  # a fresh proof, not a fixed one
    assert len(base64.urlsafe_b64decode(claims["jti"] + "==")) == 16  # 128 random bits
    if token is not None:
        assert claims["ath"] == access_token_hash(token)
    return header, claims


def test_the_page_binds_its_tokens_to_a_browser_key(page: Page, live: LiveApp, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    sent = record_requests(page, live)
    sign_in(page, "alice")
    expect(page.locator("#notes-list li")).to_have_text(["#1 Shopping list", "#2 Ideas"])
    stored = stored_session(page)
    assert stored is not None and stored["tokenType"] == "DPoP"
    access = stored["access"]

    # The login proves the key (no access token, so no ath); the server binds the tokens to it.
    assert [(s.method, s.path) for s in sent] == [("POST", "/auth/login"), ("GET", "/api/notes")]
    login = sent[0]
    assert (login.method, login.path) == ("POST", "/auth/login")
    assert "authorization" not in login.headers
    login_header, _ = check_proof(login.headers["dpop"], "POST", live.url + "/auth/login", None)
    jkt = jwk_thumbprint(login_header["jwk"])
    expect(page.locator("#binding")).to_have_text(f"Tokens bound to this browser's key (DPoP, ES256, thumbprint {jkt})")

    # Every API request: Authorization: DPoP <token> and a fresh proof of the same key.
    page.click("#nav-admin")
    expect(page.locator("#status-title")).to_have_text("Access denied")
    page.click("#nav-notes")
    expect(page.locator("#status")).to_be_hidden()
    api = sent[1:]
    assert [(s.method, s.path) for s in api] == [
        ("GET", "/api/notes"),
        ("GET", "/api/admin/users"),
        ("GET", "/api/notes"),
    ]
    jtis = set()
    for s in api:
        assert s.headers["authorization"] == f"DPoP {access}"
        header, claims = check_proof(s.headers["dpop"], s.method, live.url + s.path, access)
        assert jwk_thumbprint(header["jwk"]) == jkt
        jtis.add(claims["jti"])
    assert len(jtis) == len(api)  # one proof per request
    shot(page, request, "dpop-session")

    # The same token without the key is worthless: as Bearer it is refused.
    rv = live.app.test_client().get("/api/me", headers=bearer(access))
    assert (rv.status_code, rv.get_json()["code"]) == (401, "token_invalid")

    # A reload keeps the key (IndexedDB) and the session.
    page.reload()
    expect(page.locator("#notes-list li")).to_have_text(["#1 Shopping list", "#2 Ideas"])
    expect(page.locator("#binding")).to_contain_text(jkt)
    header, _ = check_proof(sent[-1].headers["dpop"], "GET", live.url + "/api/notes", access)
    assert jwk_thumbprint(header["jwk"]) == jkt


PRIVATE_KEY_REPORT = """async () => {
  const report = async (key) => {
    const tries = {};
    for (const format of ['jwk', 'pkcs8']) {
      try {
        await crypto.subtle.exportKey(format, key);
        tries[format] = 'exported';
      } catch (e) {
        tries[format] = e.name;
      }
    }
    return { type: key.type, extractable: key.extractable, usages: key.usages,
             algorithm: key.algorithm.name, curve: key.algorithm.namedCurve, tries };
  };
  const kept = await loadKey(); // what IndexedDB holds for the next reload
  return { memory: await report(dpopKey.privateKey), stored: await report(kept.privateKey),
           publicJwk: Object.keys(kept.jwk).sort() };
}"""


def test_the_private_key_cannot_be_exported(page: Page, request: pytest.FixtureRequest) -> None:
    sign_in(page, "bob")
    report = page.evaluate(PRIVATE_KEY_REPORT)
    expected = {
        "type": "private",
        "extractable": False,
        "usages": ["sign"],
        "algorithm": "ECDSA",
        "curve": "P-256",
        "tries": {"jwk": "InvalidAccessError", "pkcs8": "InvalidAccessError"},
    }
    assert report == {"memory": expected, "stored": expected, "publicJwk": ["crv", "kty", "x", "y"]}
    shot(page, request, "key-not-extractable")


REPLAY = """async ([path, headers]) => {
  const response = await fetch(path, { headers });
  return { status: response.status, body: await response.json(),
           challenges: response.headers.get('WWW-Authenticate') };
}"""


def test_a_replayed_request_is_refused(page: Page, live: LiveApp, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    sent = record_requests(page, live)
    sign_in(page, "alice")
    notes = sent[-1]
    assert (notes.method, notes.path) == ("GET", "/api/notes")
    captured = {"Authorization": notes.headers["authorization"], "DPoP": notes.headers["dpop"]}
    # The very same request again, from the page itself: the proof's jti was used up.
    replay = page.evaluate(REPLAY, ["/api/notes", captured])
    assert replay == {
        "status": 401,
        "body": {
            "error": "Unauthorized",
            "code": "dpop_proof_invalid",
            "message": "The DPoP proof is invalid",
            "status": 401,
        },
        "challenges": 'Bearer realm="api", DPoP realm="api", algs="ES256 PS256 RS256 EdDSA", '
        'error="invalid_dpop_proof", error_description="The DPoP proof is invalid"',
    }
    # The captured proof is for GET /api/notes only: another URL is refused too.
    other = page.evaluate(REPLAY, ["/api/me", captured])
    assert (other["status"], other["body"]["code"]) == (401, "dpop_proof_invalid")
    # The page's own requests, each with a fresh proof, still work.
    page.click("#nav-notes")
    expect(page.locator("#notes-list li")).to_have_text(["#1 Shopping list", "#2 Ideas"])
    expect(page.locator("#session")).to_be_visible()
    shot(page, request, "after-replay")


def test_deleting_all_notes_steps_up_then_retries(page: Page, live: LiveApp, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    sign_in(page, "alice")
    before = stored_session(page)
    assert before is not None
    seen: list[tuple[str, str, int]] = []
    page.on("response", lambda r: seen.append((r.request.method, r.url.removeprefix(live.url), r.status)))

    page.click("#delete-all")
    expect(page.locator("#step-up-view")).to_be_visible()
    expect(page.locator("#step-up-reason")).to_have_text("A stronger or more recent authentication is required")
    expect(page.locator("#session")).to_be_visible()  # a 401 that does not sign out
    shot(page, request, "step-up-prompt")

    page.fill("#step-up-password", "alice-password")
    page.fill("#step-up-code", "000000")  # a wrong code: asked again
    page.click("#step-up-button")
    expect(page.locator("#step-up-error")).to_have_text("The password or the second-factor code is wrong")
    expect(page.locator("#step-up-view")).to_be_visible()
    shot(page, request, "step-up-wrong-code")

    page.fill("#step-up-password", "alice-password")
    page.fill("#step-up-code", "271828")
    page.click("#step-up-button")
    expect(page.locator("#status")).to_have_text("Deleted 2 notes were deleted")
    expect(page.locator("#step-up-view")).to_be_hidden()
    expect(page.locator("#notes-empty")).to_be_visible()
    expect(page.locator("#notes-list li")).to_have_count(0)
    shot(page, request, "step-up-done")
    assert seen == [
        ("DELETE", "/api/notes", 401),
        ("POST", "/auth/step-up", 401),
        ("POST", "/auth/step-up", 200),
        ("DELETE", "/api/notes", 200),  # retried once, with the stronger token
        ("GET", "/api/notes", 200),
    ]
    after = stored_session(page)
    assert after is not None
    assert after["access"] != before["access"] and after["refresh"] == before["refresh"]
    assert after["tokenType"] == "DPoP"
    # The weaker token was revoked by the step-up.
    rv = live.app.test_client().get("/api/me", headers=bearer(before["access"]))
    assert rv.status_code == 401


def test_a_cancelled_step_up_keeps_the_session(page: Page, live: LiveApp, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    sign_in(page, "bob")
    page.click("#delete-all")
    expect(page.locator("#step-up-view")).to_be_visible()
    page.click("#step-up-cancel")
    expect(page.locator("#step-up-view")).to_be_hidden()
    assert status_text(page) == (
        "Confirmation needed insufficient_user_authentication A stronger or more recent authentication is required"
    )
    expect(page.locator("#session")).to_have_text("Signed in as bob (user) Log out")
    page.click("#nav-notes")
    expect(page.locator("#notes-list li")).to_have_text(["#3 Bob's plans"])
    shot(page, request, "step-up-cancelled")


def test_logging_out_forgets_the_key(page: Page) -> None:
    from playwright.sync_api import expect

    sign_in(page, "alice")
    assert page.evaluate("loadKey().then((k) => k !== undefined)") is True
    page.click("#logout")
    expect(page.locator("#status-title")).to_have_text("Signed out")
    assert page.evaluate("loadKey().then((k) => k === undefined)") is True
    assert page.evaluate("dpopKey") is None
