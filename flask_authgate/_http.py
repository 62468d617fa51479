"""One hardened JSON fetch for everything an identity provider serves.

JWK Sets, discovery documents and introspection answers come from a server
that may be down, slow, hostile or simply wrong. :func:`fetch_json` is the only
place the extension talks HTTP, and it never lets such a server hurt the app:

* only ``http`` and ``https`` URLs, without user information;
* redirects are never followed (a 3xx is a failure, RFC 8414 §3 / OIDC
  Discovery §4 documents live at one fixed URL);
* one *total* deadline covers connecting, sending, the headers and the body,
  so a server that drips one byte a second cannot hold a worker past it (a
  watchdog shuts the socket down when the deadline passes);
* the body is capped (``max_bytes``), decoded as JSON (RFC 8259), must be an
  object, and its nesting depth is bounded before it is parsed;
* any ``Content-Type`` is accepted (providers serve ``application/json``,
  ``application/jwk-set+json``, ``text/plain`` ...): the body must parse;
* every failure is one :class:`FetchError` whose ``reason`` is a short,
  fixed string — never the server's text, which callers must not log or send.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
import typing as t
import urllib.parse

from ._urls import is_http_url

#: Default cap of a response body.
MAX_BYTES = 1 << 20
#: Default bound of JSON nesting (a JWK Set needs 3, a discovery document 4 or 5).
MAX_DEPTH = 32
_CHUNK = 65536
_USER_AGENT = "flask-authgate"
log = logging.getLogger("flask_authgate")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class FetchError(Exception):
    """A fetch failed; :attr:`reason` says how, in a few fixed words.

    Reasons: ``bad_url``, ``connect``, ``timeout``, ``redirect``,
    ``status_<code>``, ``too_large``, ``not_json``, ``too_deep``,
    ``not_object``, ``http_error``, ``unexpected``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        #: Short machine text, safe to log.
        self.reason = reason


def json_depth_ok(body: bytes, max_depth: int) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects at most ``max_depth`` deep.

    Strings are removed first, so brackets inside them do not count. This runs
    before :func:`json.loads`, which would otherwise recurse once per level.
    """
    depth = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b'""', body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return False
        else:
            depth -= 1
    return True


def _reject_constant(name: str) -> t.NoReturn:
    # RFC 8259 §6: NaN and Infinity are not JSON.
    raise ValueError(name)


def parse_json_object(body: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, t.Any]:
    """Parse ``body`` as one JSON object, or raise :class:`FetchError`."""
    if not json_depth_ok(body, max_depth):
        raise FetchError("too_deep")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeError, RecursionError):
        raise FetchError("not_json") from None
    if not isinstance(data, dict):
        raise FetchError("not_object")
    return data


def basic_credentials(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` value for client credentials (RFC 6749 §2.3.1).

    Both parts are form-encoded *before* they are joined and base64-encoded,
    as §2.3.1 requires (a ``:`` in a client id must not split it).
    """
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


class _Watchdog:
    """Shut a connection's socket down when the total deadline passes."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.fired = False
        # The socket itself, not the connection: http.client hands it over to the response
        # (and forgets it) as soon as the headers say "Connection: close".
        self._sock = sock
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        try:
            # The plain socket's shutdown, also for an SSLSocket: a blocked recv returns at once.
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()


def fetch_json(
    url: str,
    *,
    timeout: float,
    method: t.Literal["GET", "POST"] = "GET",
    form: cabc.Mapping[str, str] | None = None,
    basic_auth: tuple[str, str] | None = None,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    ssl_context: ssl.SSLContext | None = None,
    clock: cabc.Callable[[], float] = time.monotonic,
) -> dict[str, t.Any]:
    """Fetch ``url`` and return its body as a JSON object.

    :param url: An ``http``/``https`` URL (see :func:`is_http_url`).
    :param timeout: Total seconds for the whole exchange, from connecting to the
        last byte of the body.
    :param method: ``GET``, or ``POST`` to send ``form``.
    :param form: Fields sent as ``application/x-www-form-urlencoded`` (POST only).
    :param basic_auth: ``(client_id, client_secret)`` sent with HTTP Basic.
    :param max_bytes: Longest body accepted.
    :param max_depth: Deepest nesting of arrays and objects accepted.
    :param ssl_context: TLS settings for ``https`` (default: the system's trust store,
        hostname checked).
    :param clock: Monotonic clock of the deadline.
    :raises FetchError: For any failure; nothing else escapes.
    """
    try:
        return _fetch(url, timeout, method, form, basic_auth, max_bytes, max_depth, ssl_context, clock)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError("timeout") from None
    except (ConnectionError, socket.gaierror, ssl.SSLError):
        raise FetchError("connect") from None
    except (OSError, http.client.HTTPException, ValueError, UnicodeError):
        raise FetchError("http_error") from None
    except Exception as exc:
        # The edge of the network: whatever else goes wrong fails closed (503), with its type logged.
        log.warning("authgate: unexpected %s while fetching from an identity provider", type(exc).__name__)
        raise FetchError("unexpected") from None


def _fetch(
    url: str,
    timeout: float,
    method: str,
    form: cabc.Mapping[str, str] | None,
    basic_auth: tuple[str, str] | None,
    max_bytes: int,
    max_depth: int,
    ssl_context: ssl.SSLContext | None,
    clock: cabc.Callable[[], float],
) -> dict[str, t.Any]:
    if not is_http_url(url):
        raise FetchError("bad_url")
    deadline = clock() + timeout
    parts = urllib.parse.urlsplit(url)
    host = t.cast(str, parts.hostname)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl_context if ssl_context is not None else ssl.create_default_context()
        conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    headers = {"Accept": "application/json", "User-Agent": _USER_AGENT, "Connection": "close"}
    body: bytes | None = None
    if method == "POST":
        body = urllib.parse.urlencode(dict(form or {})).encode("ascii")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if basic_auth is not None:
        headers["Authorization"] = basic_credentials(*basic_auth)
    try:
        conn.connect()  # bounded by the socket timeout
    except BaseException:
        conn.close()
        raise
    remaining = deadline - clock()
    if remaining <= 0:
        conn.close()
        raise FetchError("timeout")
    sock = t.cast(socket.socket, conn.sock)
    sock.settimeout(remaining)
    watchdog = _Watchdog(sock, remaining)
    response: http.client.HTTPResponse | None = None
    try:
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            status = response.status
            if 300 <= status < 400:
                raise FetchError("redirect")  # never followed
            if not 200 <= status < 300:
                raise FetchError(f"status_{status}")
            length = response.getheader("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > max_bytes:
                raise FetchError("too_large")
            chunks: list[bytes] = []
            size = 0
            while True:
                if clock() >= deadline:
                    raise FetchError("timeout")
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError("too_large")
                chunks.append(chunk)
        except FetchError:
            raise
        except (OSError, http.client.HTTPException):
            if watchdog.fired or clock() >= deadline:
                raise FetchError("timeout") from None
            raise
        if watchdog.fired:
            raise FetchError("timeout")
    finally:
        watchdog.cancel()
        if response is not None:
            response.close()
        conn.close()
    return parse_json_object(b"".join(chunks), max_depth=max_depth)
