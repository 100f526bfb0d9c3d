"""``RedisEngine``: Durable Object entries on any redis-protocol server, and lost servers.

A server that stops answering (refused, reset, timed out) makes the operation raise
``DurableObjectError`` naming it, recorded as a failed DO operation; engines that know the
server's URL also add it to ``lost_servers()``, which the plugin reports at the session's
end. redis and fakeredis are imported only when an engine needs them.
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, TypeVar

from pytest_dualcache.do_entries import DurableObjectError, Entry, utf8

if TYPE_CHECKING:
    import redis

__all__ = ["RedisEngine", "close_server_clients", "forget_lost_servers", "lost_servers"]

F = TypeVar("F", bound=Callable[..., Any])

_LOST_SERVERS: dict[str, str] = {}


def lost_servers() -> list[str]:
    """One message per Redis server lost in this process (URL redacted, first error)."""
    return list(_LOST_SERVERS.values())


def forget_lost_servers() -> None:
    """Empty the ``lost_servers()`` record (a new session, or a test that lost one on purpose)."""
    _LOST_SERVERS.clear()


@functools.cache
def _connection_errors() -> tuple[type[BaseException], ...]:
    """What redis-py raises when the server is gone: refused, reset, timed out (imported late)."""
    from redis.exceptions import ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, OSError)


def _answering(method: F) -> F:
    """``method`` of a RedisEngine, with a server that stopped answering as a DurableObjectError."""

    @functools.wraps(method)
    def call(self: RedisEngine, *args: Any) -> Any:
        try:
            return method(self, *args)
        except _connection_errors() as exc:  # evaluated only once something was raised
            message = f"Redis server {self.server} stopped answering: {exc}"
            if self.url is not None:
                _LOST_SERVERS.setdefault(self.server, message)
            raise DurableObjectError(message) from exc

    return call  # type: ignore[return-value]


class RedisEngine:
    """Entries as redis strings under ``prefix``, one per key, via any ``redis.Redis`` client.

    Expiry is decided by the DurableObjectCache against the virtual clock, never by the
    server's clock, so this engine and MemoryEngine agree exactly. The server's clock only
    cleans up: every key carries a real-time TTL of ``cleanup_after_s`` (a day by default),
    far beyond any test, so a run that crashed before ``clear()`` leaves nothing behind for
    long. ``clear()`` deletes only keys under ``prefix`` (SCAN, never FLUSHDB). Needs redis
    >= 6.2 (``SET ... GET``, ``GETDEL``); the default client is a private in-process fakeredis.

    A server that stops answering (refused, reset, timed out) makes every call raise
    ``DurableObjectError`` naming it; given its ``url`` (``on_server`` does), the engine also
    adds it to ``lost_servers()``.
    """

    __slots__ = ("_key_prefix", "cleanup_after_s", "client", "prefix", "server", "url")

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        prefix: str = "dualcache:do:",
        cleanup_after_s: int = 86_400,
        url: str | None = None,
    ) -> None:
        if client is None:
            import fakeredis  # lazily: importing this module must not import redis

            client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        self.client = client
        self.prefix = prefix
        self.cleanup_after_s = cleanup_after_s
        #: The server's URL as given (None: not known), and as errors name it (no password).
        self.url = url
        self.server = _server_name(client) if url is None else _redact_url(url)
        self._key_prefix = utf8(prefix)

    @classmethod
    def on_server(cls, url: str) -> RedisEngine:
        """An engine on the server at ``url`` under a fresh prefix of its own.

        Engines on one URL share one connection pool; distinct prefixes keep tests, and
        pytest-xdist workers, from seeing each other's keys.
        """
        client = _SERVER_CLIENTS.get(url)
        if client is None:
            import redis as redis_module

            client = _SERVER_CLIENTS[url] = redis_module.Redis.from_url(url)
        return cls(client, prefix=f"dualcache:{uuid.uuid4().hex}:", url=url)

    @_answering
    def get(self, key: str, /) -> Entry | None:
        """The entry stored under ``key``, or None."""
        return _decode_entry(self.client.get(self._key_prefix + utf8(key)))

    @_answering
    def set(self, key: str, entry: Entry, /) -> Entry | None:
        """Store ``entry`` under ``key`` and return the entry it replaced, or None."""
        raw = self.client.set(
            self._key_prefix + utf8(key), _encode_entry(entry), ex=self.cleanup_after_s, get=True
        )
        return _decode_entry(raw)

    @_answering
    def delete(self, key: str, /) -> Entry | None:
        """Remove ``key`` and return the entry it held, or None."""
        return _decode_entry(self.client.getdel(self._key_prefix + utf8(key)))

    @_answering
    def items(self, prefix: str = "", /) -> Iterator[tuple[str, float]]:
        """``(key, expires_at)`` of every stored key starting with ``prefix``."""
        cut = len(self._key_prefix)
        names = list(self._scan(self._key_prefix + utf8(prefix)))
        if not names:
            return iter(())
        raws = self.client.mget(names)
        return (
            (name[cut:].decode("utf-8", "surrogatepass"), float(raw.split(b"|", 2)[1]))
            for name, raw in zip(names, raws, strict=True)
            if raw is not None
        )

    @_answering
    def clear(self) -> None:
        """Delete every key under this engine's prefix, and nothing else."""
        names = list(self._scan(self._key_prefix))
        for start in range(0, len(names), 500):
            self.client.delete(*names[start : start + 500])

    def _scan(self, prefix: bytes) -> Iterator[bytes]:
        return self.client.scan_iter(match=_glob_escape(prefix) + b"*", count=500)

    def __repr__(self) -> str:
        return f"RedisEngine({self.client!r}, prefix={self.prefix!r})"


_SERVER_CLIENTS: dict[str, Any] = {}
_URL_PASSWORD: Final = re.compile(r"(?i)(?<=[?&;])(password=)[^&;#]*")


def _redact_url(url: str) -> str:
    """``url`` with any password (``user:PASSWORD@`` or ``?password=``) shown as ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        url = url.replace(parts.netloc, f"{parts.username or ''}:***@{host}", 1)
    return _URL_PASSWORD.sub(r"\1***", url)


def _server_name(client: Any) -> str:
    """How errors name the server of a client whose URL is not known."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if "server" in kwargs:
        return "(in-process fakeredis)"
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def close_server_clients() -> None:
    """Close the connection pools ``RedisEngine.on_server`` opened (at the session's end)."""
    while _SERVER_CLIENTS:
        _, client = _SERVER_CLIENTS.popitem()
        client.close()


def _glob_escape(raw: bytes) -> bytes:
    return b"".join(b"\\" + bytes([c]) if c in b"*?[]\\" else bytes([c]) for c in raw)


def _encode_entry(entry: Entry) -> bytes:
    data, is_json, expires_at, nbytes = entry
    if is_json:
        flag, text = b"j", data
    else:
        flag, text = b"v", json.dumps(data, ensure_ascii=False)
    # repr round-trips a float exactly.
    return b"%s|%s|%d|%s" % (flag, repr(expires_at).encode(), nbytes, utf8(text))


def _decode_entry(raw: bytes | None) -> Entry | None:
    if raw is None:
        return None
    flag, expires_at, nbytes, text = raw.split(b"|", 3)
    data = text.decode("utf-8", "surrogatepass")
    if flag == b"j":
        return (data, True, float(expires_at), int(nbytes))
    return (json.loads(data), False, float(expires_at), int(nbytes))
