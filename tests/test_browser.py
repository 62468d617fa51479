"""The example page in a real browser (Debian's Chromium, driven by Playwright).

Each test serves a fresh example app with a real threaded Werkzeug server on
127.0.0.1 and checks what the user *sees* (rendered text), following the
client rules: 401 ``token_expired`` refreshes silently, any other 401 returns
to the login form, 403 shows "Access denied" and keeps the user logged in,
404 shows "Not found". A screenshot of each state goes to
``test-artifacts/browser/``.
"""

from __future__ import annotations

import collections.abc as cabc
import json
import os
import pathlib
import shutil
import threading
import time
import typing as t

import pytest
from conftest import IN_CI
from conftest import free_port
from flask import Flask
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

from example_app import create_app
from example_app import db
from example_app import gate

pytestmark = pytest.mark.browser

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"
SECRET = "browser-test-secret-" + "z" * 48


class LiveApp(t.NamedTuple):
    app: Flask
    url: str


@pytest.fixture(scope="module")
def browser() -> cabc.Iterator[Browser]:
    """Debian's Chromium; a missing binary skips outside CI and fails in CI."""
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing; .ci/run must install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("browser-db") / "template.sqlite"
    db.seed(str(path))
    return path


@pytest.fixture
def live(tmp_path: pathlib.Path, seeded_template: pathlib.Path) -> cabc.Iterator[LiveApp]:
    """The example app on a real threaded Werkzeug server at 127.0.0.1:<free port>."""
    path = tmp_path / "example.sqlite"
    shutil.copy(seeded_template, path)
    app = create_app({"DATABASE": str(path), "SECRET_KEY": SECRET})
    port = free_port()
    server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield LiveApp(app, f"http://127.0.0.1:{port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


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


def test_logging_out_returns_to_the_login_form(page: Page, live: LiveApp, request: pytest.FixtureRequest) -> None:
    sign_in(page, "alice")
    stored = stored_session(page)
    assert stored is not None
    page.click("#logout")
    expect_login_form(page, "Signed out", "", "You have been signed out")
    shot(page, request, "signed-out")
    # The server revoked both tokens, so a copy of them is worthless.
    client = live.app.test_client()
    rv = client.get("/api/me", headers={"Authorization": f"Bearer {stored['access']}"})
    assert (rv.status_code, rv.get_json()["code"]) == (401, "token_revoked")
    rv = client.post("/auth/refresh", headers={"Authorization": f"Bearer {stored['refresh']}"})
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
