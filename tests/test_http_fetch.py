"""The one JSON fetch (``flask_authgate._http``) against a real, misbehaving server.

Every hostile answer ends in one :class:`FetchError` with a fixed reason, and
the total deadline holds against a server that drips its answer: the body
below is valid JSON, so only the deadline can turn it into ``timeout``.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import itertools
import json
import socket
import threading
import typing as t

import pytest
from idp_server import RS_CLIENT_ID
from idp_server import RS_CLIENT_SECRET
from idp_server import IdentityProvider
from idp_server import Override
from kit import in_background

from flask_authgate._http import FetchError
from flask_authgate._http import basic_credentials
from flask_authgate._http import fetch_json
from flask_authgate._http import json_depth_ok
from flask_authgate._http import parse_json_object
from flask_authgate._urls import is_http_url


def reason(url: str, **kwargs: t.Any) -> str:
    kwargs.setdefault("timeout", 2)
    with pytest.raises(FetchError) as info:
        fetch_json(url, **kwargs)
    return info.value.reason


def test_a_json_object_is_returned(idp: IdentityProvider) -> None:
    assert fetch_json(idp.jwks_url, timeout=2)["keys"][0]["kid"] == "k1"


@pytest.mark.parametrize("content_type", ["text/plain", "application/jwk-set+json", "application/octet-stream"])
def test_any_content_type_is_accepted(idp: IdentityProvider, content_type: str) -> None:
    idp.override("/x", Override(body=b'{"a": 1}', headers={"Content-Type": content_type}))
    assert fetch_json(idp.base + "/x", timeout=2) == {"a": 1}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(Override(status=500, body=b"{}"), "status_500", id="500"),
        pytest.param(Override(status=404, body=b"{}"), "status_404", id="404"),
        pytest.param(Override(status=204), "not_json", id="204-empty"),
        pytest.param(Override(body=b"<html>nope</html>"), "not_json", id="html"),
        pytest.param(Override(body=b""), "not_json", id="empty"),
        pytest.param(Override(body=b"[1, 2]"), "not_object", id="list"),
        pytest.param(Override(body=b'"keys"'), "not_object", id="string"),
        pytest.param(Override(body=b'{"a": NaN}'), "not_json", id="nan"),
        pytest.param(Override(body=b'{"a": Infinity}'), "not_json", id="infinity"),
        pytest.param(Override(body=b'{"a": ' + b"9" * 5000 + b"}"), "not_json", id="huge-int"),
        pytest.param(Override(body=b'{"a": "\xff\xfe"}'), "not_json", id="bad-utf8"),
        pytest.param(Override(body=b"[" * 40 + b"]" * 40), "too_deep", id="nested-40"),
        pytest.param(Override(body=b'{"a":' * 100_000 + b"1" + b"}" * 100_000), "too_deep", id="nested-100k"),
        pytest.param(Override(body=b'{"k": "' + b"x" * (2 << 20) + b'"}'), "too_large", id="2MiB"),
        pytest.param(
            Override(body=b'{"k": "' + b"x" * (2 << 20) + b'"}', drip=0.0, chunk=65536),
            "too_large",
            id="2MiB-chunked-no-length",
        ),
    ],
)
def test_bad_answers(idp: IdentityProvider, answer: Override, expected: str) -> None:
    idp.override("/x", answer)
    assert reason(idp.base + "/x") == expected


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    body = json.dumps({"a": "[" * 100, "b": '\\"{' * 50}).encode()
    assert json_depth_ok(body, 3)
    assert parse_json_object(body, max_depth=3)["a"] == "[" * 100


def test_a_redirect_is_not_followed(idp: IdentityProvider) -> None:
    idp.override("/x", Override(status=302, headers={"Location": idp.jwks_url}))
    assert reason(idp.base + "/x") == "redirect"
    assert idp.count("/jwks") == 0


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_no_redirect_status_is_followed(idp: IdentityProvider, status: int) -> None:
    idp.override("/x", Override(status=status, headers={"Location": idp.jwks_url}))
    assert reason(idp.base + "/x") == "redirect"


def test_a_slow_server_times_out(idp: IdentityProvider) -> None:
    idp.override("/x", Override(body=b"{}", delay=1.5))
    assert reason(idp.base + "/x", timeout=0.3) == "timeout"


def finishes(work: cabc.Callable[[], t.Any], *, within: float = 20) -> t.Any:
    """Run ``work`` in a thread; fail (instead of hanging the suite) if it never returns."""
    result: list[t.Any] = []

    def run() -> None:
        try:
            result.append(work())
        except Exception as exc:  # checked by the caller
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), "the fetch did not give up: the total deadline is not enforced"
    return result[0]


def test_a_slow_drip_body_hits_the_total_deadline(idp: IdentityProvider) -> None:
    # Each byte comes well within the timeout, and the body never ends: only a total
    # deadline that interrupts the read can stop this fetch.
    idp.override("/x", Override(body=b" ", drip=0.05, forever=True))
    outcome = finishes(lambda: fetch_json(idp.base + "/x", timeout=0.5))
    assert isinstance(outcome, FetchError)
    assert outcome.reason == "timeout"


def test_a_slow_drip_json_body_is_refused_not_waited_for(idp: IdentityProvider) -> None:
    body = json.dumps({"keys": []}).encode()
    idp.override("/x", Override(body=body, drip=0.1))
    assert reason(idp.base + "/x", timeout=0.5) == "timeout"
    # The same answer, given the time, is fine: the deadline is what refused it.
    assert fetch_json(idp.base + "/x", timeout=10) == {"keys": []}


@pytest.fixture
def slowloris() -> cabc.Iterator[str]:
    """A raw TCP server that sends its *status line and headers* one byte at a time."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: "
                # The status line, then one header that never ends.
                for byte in itertools.chain(head, itertools.repeat(ord("a"))):
                    if stop.wait(0.05):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

    def shut() -> None:
        stop.set()
        server.close()

    with in_background(serve, shut):
        yield f"http://127.0.0.1:{server.getsockname()[1]}/x"


def test_slow_drip_headers_hit_the_total_deadline(slowloris: str) -> None:
    outcome = finishes(lambda: fetch_json(slowloris, timeout=0.5))
    assert isinstance(outcome, FetchError)
    assert outcome.reason == "timeout"


def test_connection_refused() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    assert reason(f"http://127.0.0.1:{port}/jwks") == "connect"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/jwks",
        "file:///etc/passwd",
        "http://user:pass@127.0.0.1/jwks",
        "http:///jwks",
        "http://127.0.0.1/jwks#frag",
        "http://127.0.0.1/a b",
        "http://127.0.0.1/a\r\nX: y",
        "http://127.0.0.1/jwks\n",  # a final newline: urlsplit would drop it, a `$` pattern would let it by
        "http://127.0.0.1:99999/jwks",
        "//127.0.0.1/jwks",
        "",
    ],
)
def test_urls_that_are_never_fetched(url: str) -> None:
    assert not is_http_url(url)
    assert reason(url) == "bad_url"


def test_https_and_query_urls_are_valid() -> None:
    assert is_http_url("https://login.example.com/tenant/v2.0/.well-known/openid-configuration?appid=1")
    assert not is_http_url(42)


def test_form_post_with_basic_client_credentials(idp: IdentityProvider) -> None:
    token = idp.opaque_token(sub="alice")
    answer = fetch_json(
        idp.introspection_url,
        timeout=2,
        method="POST",
        form={"token": token, "token_type_hint": "access_token"},
        basic_auth=(RS_CLIENT_ID, RS_CLIENT_SECRET),
    )
    assert answer["active"] is True
    assert answer["sub"] == "alice"


def test_wrong_client_credentials_are_a_status_error(idp: IdentityProvider) -> None:
    got = reason(idp.introspection_url, method="POST", form={"token": "x"}, basic_auth=(RS_CLIENT_ID, "wrong"))
    assert got == "status_401"


def test_basic_credentials_form_encode_each_part() -> None:
    # RFC 6749 §2.3.1: a ":" in the client id must not split it.
    value = basic_credentials("my:client", "s e/cr+t")
    assert value.startswith("Basic ")
    assert base64.b64decode(value[6:]).decode() == "my%3Aclient:s+e%2Fcr%2Bt"
