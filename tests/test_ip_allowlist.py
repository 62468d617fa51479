"""IP allow lists: ``@ip_allowed`` per view and ``AUTHGATE_IP_ALLOWLIST`` app-wide (issue 3).

The client address is ``request.remote_addr`` and nothing else; behind a
proxy, Werkzeug's ``ProxyFix`` rewrites ``REMOTE_ADDR`` from the trusted hop.
The app-wide list is checked before anything else: before other
``before_request`` hooks, authentication, deny-by-default, static files and
routing (an unknown URL or a wrong method from a denied address is 403 too).
"""

from __future__ import annotations

import collections.abc as cabc
import http.client
import json
import pathlib
import threading
import typing as t

import pytest
from conftest import make_app
from flask import Flask
from kit import add_view
from kit import add_views
from kit import body
from kit import noted
from kit import static_app
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import make_server

from flask_authgate import AuthGate
from flask_authgate import ConfigError
from flask_authgate import ip_allowed
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import roles_required

IP_DENIED = body("ip_denied")
TOKEN_MISSING = body("token_missing")


def addr(remote: str) -> dict[str, t.Any]:
    return {"environ_base": {"REMOTE_ADDR": remote}}


def assert_ip_denied(rv: t.Any) -> None:
    assert rv.status_code == 403
    assert rv.get_json() == IP_DENIED
    assert rv.headers.getlist("WWW-Authenticate") == []
    assert rv.headers["Cache-Control"] == "no-store"


@pytest.fixture
def view_app() -> Flask:
    """Per-view allow lists only."""
    app, _ = make_app()
    add_views(
        app,
        {
            "/office": ip_allowed("10.0.0.0/8", "192.168.1.0/24"),
            "/v6": ip_allowed("2001:db8::/32"),
            "/office-login": (login_required, ip_allowed("10.0.0.0/8")),
            "/two-lists": (ip_allowed("10.0.0.0/8"), ip_allowed("10.1.0.0/16", "172.16.0.0/12")),
        },
    )
    add_view(app, "/async-office", ip_allowed("10.0.0.0/8"), kind="async")
    return app


@pytest.mark.parametrize(
    ("path", "remote", "allowed"),
    [
        pytest.param("/office", "10.1.2.3", True, id="ipv4-in"),
        pytest.param("/office", "192.168.1.200", True, id="ipv4-second-network"),
        pytest.param("/office", "192.168.2.1", False, id="ipv4-out"),
        pytest.param("/office", "11.0.0.1", False, id="ipv4-next-block"),
        pytest.param("/office", "::ffff:10.1.2.3", True, id="ipv4-mapped-in"),
        pytest.param("/office", "::ffff:11.1.2.3", False, id="ipv4-mapped-out"),
        pytest.param("/office", "2001:db8::1", False, id="ipv6-vs-ipv4-list"),
        pytest.param("/office", "not-an-ip", False, id="garbage"),
        pytest.param("/office", "10.1.2.3, 10.1.2.4", False, id="list-in-remote-addr"),
        pytest.param("/office", "", False, id="empty"),
        pytest.param("/v6", "2001:db8::1", True, id="ipv6-in"),
        pytest.param("/v6", "2001:db8:ffff::5", True, id="ipv6-in-high"),
        pytest.param("/v6", "2001:db9::1", False, id="ipv6-out"),
        pytest.param("/v6", "10.1.2.3", False, id="ipv4-vs-ipv6-list"),
        pytest.param("/two-lists", "10.1.9.9", True, id="both-groups"),
        pytest.param("/two-lists", "10.2.9.9", False, id="first-group-only"),
        pytest.param("/two-lists", "172.16.0.1", False, id="second-group-only"),
        pytest.param("/async-office", "10.1.2.3", True, id="async-in"),
        pytest.param("/async-office", "12.1.2.3", False, id="async-out"),
    ],
)
def test_ip_allowed_per_view(view_app: Flask, path: str, remote: str, allowed: bool) -> None:
    rv = view_app.test_client().get(path, **addr(remote))
    if allowed:
        assert rv.status_code == 200
        assert rv.get_data(as_text=True) == path.lstrip("/")
    else:
        assert_ip_denied(rv)


def test_ip_denied_comes_before_authentication(view_app: Flask) -> None:
    client = view_app.test_client()
    # Outside the network: 403 even without credentials, and even with a bad token.
    assert_ip_denied(client.get("/office-login", **addr("8.8.8.8")))
    assert_ip_denied(client.get("/office-login", headers={"Authorization": "Bearer junk"}, **addr("8.8.8.8")))
    # Inside: now authentication is asked for.
    rv = client.get("/office-login", **addr("10.0.0.1"))
    assert rv.status_code == 401
    assert rv.get_json() == TOKEN_MISSING


@pytest.mark.parametrize("header", ["X-Forwarded-For", "X-Real-IP", "Forwarded"], ids=str.lower)
def test_forwarding_headers_are_ignored_without_proxyfix(view_app: Flask, header: str) -> None:
    value = "for=10.1.2.3" if header == "Forwarded" else "10.1.2.3"
    rv = view_app.test_client().get("/office", headers={header: value}, **addr("203.0.113.9"))
    assert_ip_denied(rv)
    # And a forwarding header cannot lock out an allowed client either.
    rv = view_app.test_client().get("/office", headers={header: "203.0.113.9"}, **addr("10.1.2.3"))
    assert rv.status_code == 200


def hello_app(allow: list[str] | str, *, proxy_fix: bool = False) -> Flask:
    """``/`` answers "hello" to the addresses in the app-wide ``allow`` list (behind ``ProxyFix``, if asked)."""
    app, _ = make_app({"AUTHGATE_IP_ALLOWLIST": allow})
    add_view(app, "/", returns="hello")
    if proxy_fix:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    return app


def through_the_proxy(forwarded_for: str) -> t.Any:
    """A request to the hello app behind ``ProxyFix``, from the proxy (127.0.0.1, not in the allow list)."""
    app = hello_app(["10.0.0.0/8"], proxy_fix=True)
    return app.test_client().get("/", headers={"X-Forwarded-For": forwarded_for}, **addr("127.0.0.1"))


@pytest.mark.parametrize(
    "forwarded_for",
    # The client itself can add entries; only the last one, appended by the trusted proxy, counts.
    ["10.1.2.3", "203.0.113.9, 10.1.2.3", "::ffff:10.1.2.3"],
    ids=["client-in", "proxy-appended-in", "mapped-via-proxy"],
)
def test_proxyfix_lets_in_the_client_the_trusted_hop_names(forwarded_for: str) -> None:
    rv = through_the_proxy(forwarded_for)
    assert rv.status_code == 200
    assert rv.get_data(as_text=True) == "hello"


@pytest.mark.parametrize(
    "forwarded_for", ["203.0.113.9", "10.1.2.3, 203.0.113.9"], ids=["client-out", "spoofed-first-entry"]
)
def test_proxyfix_denies_the_client_the_trusted_hop_names(forwarded_for: str) -> None:
    assert_ip_denied(through_the_proxy(forwarded_for))


def test_proxyfix_without_header_uses_the_proxy_address() -> None:
    app = hello_app(["10.0.0.0/8"], proxy_fix=True)
    assert_ip_denied(app.test_client().get("/", **addr("127.0.0.1")))
    assert app.test_client().get("/", **addr("10.9.9.9")).status_code == 200


@pytest.fixture
def served() -> cabc.Iterator[cabc.Callable[[Flask], int]]:
    """Serve apps over real HTTP on 127.0.0.1; yields a function returning the port."""
    servers: list[t.Any] = []
    threads: list[threading.Thread] = []

    def serve(app: Flask) -> int:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append(server)
        threads.append(thread)
        return server.server_port

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=10)


def http_get(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, t.Any] | str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        data = resp.read().decode()
        if resp.getheader("Content-Type") == "application/json":
            return resp.status, t.cast(dict[str, t.Any], json.loads(data))
        return resp.status, data
    finally:
        conn.close()


def test_real_http_server_uses_the_socket_address(served: cabc.Callable[[Flask], int]) -> None:
    allowed = served(hello_app(["127.0.0.0/8"], proxy_fix=False))
    denied = served(hello_app(["10.0.0.0/8"], proxy_fix=False))
    assert http_get(allowed, "/", {}) == (200, "hello")
    # A spoofed X-Forwarded-For from a direct client changes nothing.
    assert http_get(allowed, "/", {"X-Forwarded-For": "203.0.113.9"}) == (200, "hello")
    assert http_get(denied, "/", {"X-Forwarded-For": "10.1.2.3"}) == (403, IP_DENIED)


def test_real_http_server_behind_proxyfix(served: cabc.Callable[[Flask], int]) -> None:
    # The test acts as the proxy on 127.0.0.1 and appends the client's address.
    port = served(hello_app(["10.0.0.0/8"], proxy_fix=True))
    assert http_get(port, "/", {"X-Forwarded-For": "10.1.2.3"}) == (200, "hello")
    assert http_get(port, "/", {"X-Forwarded-For": "10.1.2.3, 203.0.113.9"}) == (403, IP_DENIED)
    assert http_get(port, "/", {}) == (403, IP_DENIED)


# -- app-wide ---------------------------------------------------------------


def _app_wide(tmp_path: pathlib.Path, extra: dict[str, t.Any] | None = None) -> tuple[Flask, list[str]]:
    app = static_app(tmp_path, {"AUTHGATE_IP_ALLOWLIST": ["10.0.0.0/8", "2001:db8::/32"], **(extra or {})})
    ran: list[str] = []

    @app.before_request
    def hook_registered_before_init_app() -> None:
        ran.append("hook")

    AuthGate(app)

    add_view(app, "/open", returns=noted(ran, "open"))
    add_view(app, "/public", public, returns=noted(ran, "public"))
    add_view(app, "/admin", roles_required("admin"), returns=noted(ran, "admin"))
    add_view(app, "/narrow", ip_allowed("10.1.0.0/16"))

    return app, ran


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        pytest.param("GET", "/open", {}, id="unguarded-view"),
        pytest.param("GET", "/public", {}, id="public-view"),
        pytest.param("GET", "/admin", {}, id="guarded-no-credentials"),
        pytest.param("GET", "/admin", {"Authorization": "Bearer junk"}, id="guarded-bad-token"),
        pytest.param("GET", "/static/app.css", {}, id="static-file"),
        pytest.param("GET", "/no/such/url", {}, id="unknown-url"),
        pytest.param("POST", "/open", {}, id="wrong-method"),
        pytest.param("OPTIONS", "/admin", {"Origin": "https://x.example"}, id="automatic-options"),
    ],
)
@pytest.mark.parametrize("default_deny", [pytest.param(False, id="allow"), pytest.param(True, id="default-deny")])
def test_app_wide_allowlist_comes_before_anything_else(
    tmp_path: pathlib.Path, method: str, path: str, headers: dict[str, str], default_deny: bool
) -> None:
    app, ran = _app_wide(tmp_path, {"AUTHGATE_DEFAULT_DENY": default_deny})
    rv = app.test_client().open(path, method=method, headers=headers, **addr("203.0.113.9"))
    assert_ip_denied(rv)
    assert ran == []  # not even the app's own before_request hook ran


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        pytest.param("/open", 200, "open", id="unguarded-view"),
        pytest.param("/public", 200, "public", id="public-view"),
        pytest.param("/admin", 401, TOKEN_MISSING, id="guarded"),
        pytest.param("/static/app.css", 200, "body {}\n", id="static-file"),
        pytest.param("/no/such/url", 404, None, id="unknown-url"),
    ],
)
@pytest.mark.parametrize(
    "remote",
    [
        pytest.param("10.1.2.3", id="ipv4"),
        pytest.param("2001:db8::7", id="ipv6"),
        pytest.param("::ffff:10.1.2.3", id="mapped"),
    ],
)
def test_app_wide_allowlist_lets_allowed_clients_through(
    tmp_path: pathlib.Path, path: str, status: int, body: str | dict[str, t.Any] | None, remote: str
) -> None:
    app, ran = _app_wide(tmp_path)
    rv = app.test_client().get(path, **addr(remote))
    assert rv.status_code == status
    if isinstance(body, dict):
        assert rv.get_json() == body
    elif body is not None:
        assert rv.get_data(as_text=True) == body
    assert ran[:1] == ["hook"]
    rv.close()


def test_app_wide_and_per_view_lists_must_both_hold(tmp_path: pathlib.Path) -> None:
    app, _ = _app_wide(tmp_path)
    client = app.test_client()
    assert client.get("/narrow", **addr("10.1.2.3")).status_code == 200
    assert_ip_denied(client.get("/narrow", **addr("10.2.0.1")))  # app-wide yes, view no
    assert_ip_denied(client.get("/narrow", **addr("2001:db8::1")))


@pytest.mark.parametrize(
    "remote",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("10.0.0.256", id="bad-octet"),
        pytest.param("10.1.2.3:5000", id="with-port"),
    ],
)
def test_app_wide_allowlist_denies_an_unparseable_address(tmp_path: pathlib.Path, remote: str) -> None:
    app, _ = _app_wide(tmp_path)
    assert_ip_denied(app.test_client().get("/public", **addr(remote)))


# -- strict parsing -----------------------------------------------------------


@pytest.mark.parametrize(
    "network",
    [
        pytest.param("10.0.0.1/8", id="host-bits-set"),
        pytest.param("not-an-ip", id="not-an-ip"),
        pytest.param("10.0.0.0/33", id="prefix-too-long"),
        pytest.param("2001:db8::1/32", id="ipv6-host-bits"),
        pytest.param("", id="empty"),
    ],
)
def test_ip_allowed_refuses_a_bad_network_at_decoration_time(network: str) -> None:
    with pytest.raises(ConfigError) as info:
        ip_allowed("10.0.0.0/8", network)
    assert repr(network) in str(info.value)
    assert str(info.value).startswith("ip_allowed(")


def test_ip_allowed_needs_networks() -> None:
    with pytest.raises(ConfigError, match="at least one network"):
        ip_allowed()
    with pytest.raises(TypeError, match="ip_allowed"):
        ip_allowed(t.cast(str, lambda: None))


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        pytest.param(["10.0.0.1/8"], "'10.0.0.1/8'", id="host-bits-set"),
        pytest.param(["10.0.0.0/8", "not-an-ip"], "'not-an-ip'", id="not-an-ip"),
        pytest.param([], "must not be empty", id="empty-list"),
        pytest.param([10], "list of non-empty strings", id="not-a-string"),
        pytest.param("10.0.0.1/8", "'10.0.0.1/8'", id="single-string-bad"),
    ],
)
def test_app_wide_allowlist_is_parsed_at_init_app(value: t.Any, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_app({"AUTHGATE_IP_ALLOWLIST": value})
    assert str(info.value).startswith("AUTHGATE_IP_ALLOWLIST")
    assert needle in str(info.value)


def test_app_wide_allowlist_accepts_a_single_string(tmp_path: pathlib.Path) -> None:
    app = hello_app("10.0.0.0/8")
    assert app.test_client().get("/", **addr("10.0.0.1")).status_code == 200
    assert_ip_denied(app.test_client().get("/", **addr("11.0.0.1")))
