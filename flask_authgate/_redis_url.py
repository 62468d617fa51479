"""Parse and validate the Redis URL forms of ``AUTHGATE_REVOCATION_STORE``.

A leaf module (it imports nothing but :mod:`.errors`), so ``config.py`` can
call :func:`parse_store_url` at ``init_app`` without importing ``redis``.

Forms (DESIGN.md, "Scale: revocation across many machines"):

* ``redis://[[user]:password@]host[:port][/db][?options]``, ``rediss://…`` (TLS),
  ``unix://[[user]:password@]/path/to/redis.sock[?db=N]``;
* ``redis+sentinel://[[user]:password@]host:port[,host:port…]/service_name[/db]``;
* ``redis+cluster://[[user]:password@]host:port[,host:port…]``.

The password is the data nodes'. With Sentinel, the sentinels are sent it
too, but only when they ask for one (``NOAUTH``). Error messages never repeat
the URL: it may hold a password.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t
import urllib.parse

from .errors import ConfigError

KEY = "AUTHGATE_REVOCATION_STORE"
_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")
_HOST_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$")
_SERVICE_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclasses.dataclass(frozen=True, slots=True)
class StoreURL:
    """A validated Redis location."""

    #: ``"redis"`` (one server: redis://, rediss://, unix://), ``"sentinel"`` or ``"cluster"``.
    kind: t.Literal["redis", "sentinel", "cluster"]
    #: The URL itself, for ``redis-py``'s ``from_url`` (``kind == "redis"`` only).
    url: str = dataclasses.field(repr=False)
    #: Sentinels (``sentinel``) or startup nodes (``cluster``).
    hosts: tuple[tuple[str, int], ...] = ()
    #: The Sentinel service (master) name.
    service: str | None = None
    db: int = 0
    username: str | None = dataclasses.field(default=None, repr=False)
    password: str | None = dataclasses.field(default=None, repr=False)


def _fail(problem: str) -> t.NoReturn:
    raise ConfigError(f"{KEY} {problem}")


def _port(text: str, default: int | None) -> int:
    if not text:
        if default is None:
            _fail("needs host:port for every host")
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        _fail("has a port that is not a number from 1 to 65535")
    return int(text)


def _hosts(netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts = []
    for item in netloc.split(","):
        if item.startswith("["):
            host, bracket, rest = item.partition("]")
            if not bracket:
                _fail("has a malformed IPv6 host (use [::1]:6379)")
            host += "]"
            if rest and not rest.startswith(":"):
                _fail("has a malformed IPv6 host (use [::1]:6379)")
            port_text = rest[1:]
        else:
            host, _, port_text = item.partition(":")
        if not host or not _HOST_RE.match(host):
            _fail("has an empty or malformed host name")
        hosts.append((host.strip("[]"), _port(port_text, default_port)))
    return tuple(hosts)


def _db(text: str) -> int:
    if not text.isdigit() or int(text) > 10_000:
        _fail("has a database number that is not a small non-negative integer")
    return int(text)


def _userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return None, None, netloc
    user, colon, password = userinfo.partition(":")
    return (urllib.parse.unquote(user) or None), (urllib.parse.unquote(password) if colon else None), hosts


def parse_store_url(value: str) -> StoreURL:
    """Validate one ``AUTHGATE_REVOCATION_STORE`` URL.

    :raises ConfigError: The URL is malformed; the message names
        ``AUTHGATE_REVOCATION_STORE`` and never repeats the URL.
    """
    if not isinstance(value, str) or not value:
        _fail("must be 'memory', a Redis URL or a RevocationStore object")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value) or not value.isascii():
        _fail("must be printable ASCII without spaces (percent-encode the password)")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in _SCHEMES:
        _fail(
            "must start with redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// "
            "(see docs/revocation.md)"
        )
    if scheme in ("redis", "rediss", "unix"):
        try:
            parts = urllib.parse.urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError when malformed
        except ValueError:
            _fail("has a malformed host or port")
        if scheme == "unix":
            if not parts.path or parts.path == "/":
                _fail("needs a socket path: unix:///run/redis/redis.sock")
        else:
            if not parts.hostname:
                _fail("needs a host: redis://host:6379/0")
            path = parts.path.strip("/")
            if path:
                _db(path)
        return StoreURL("redis", value)

    netloc, _, path = rest.partition("/")
    if "?" in rest or "#" in rest:
        _fail("takes no query string or fragment in its redis+sentinel:// or redis+cluster:// form")
    username, password, hostlist = _userinfo(netloc)
    if not hostlist:
        _fail("needs at least one host:port")
    if scheme == "redis+sentinel":
        hosts = _hosts(hostlist, 26379)
        segments = path.split("/") if path else []
        if not segments or not _SERVICE_RE.match(segments[0]):
            _fail("needs the Sentinel service name: redis+sentinel://host:26379/mymaster[/db]")
        if len(segments) > 2:
            _fail("has too many path segments: redis+sentinel://host:26379/mymaster[/db]")
        db = _db(segments[1]) if len(segments) == 2 else 0
        return StoreURL("sentinel", value, hosts, segments[0], db, username, password)
    if path:
        _fail("takes no path in its redis+cluster:// form (a cluster has only database 0)")
    hosts = _hosts(hostlist, 6379)
    return StoreURL("cluster", value, hosts, None, 0, username, password)
