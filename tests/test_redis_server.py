"""The DO cache's redis engine on a real Redis server (``--dualcache-redis-url``).

CI starts ``redis-server`` on loopback and sets ``DUALCACHE_REDIS_URL``; without it the
server tests skip and only the option handling is checked. The lost-server tests start (and
kill) a ``redis-server`` of their own when one is on PATH, and use fakeredis otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import redis

from pytest_dualcache import DualCacheEnv, RedisEngine, VirtualClock
from pytest_dualcache.abstraction import CacheAbstraction
from pytest_dualcache.durable import (
    DurableObjectCache,
    DurableObjectError,
    close_server_clients,
    forget_lost_servers,
    lost_servers,
)
from pytest_dualcache.report import summarize
from pytest_dualcache.settings import DualCacheSettings

REDIS_URL = os.environ.get("DUALCACHE_REDIS_URL")
needs_server = pytest.mark.skipif(not REDIS_URL, reason="no Redis server: DUALCACHE_REDIS_URL")
REDIS_SERVER = shutil.which("redis-server")
SERVER_START_TIMEOUT_S = 30.0


def test_a_url_that_is_not_redis_is_a_usage_error(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--dualcache-redis-url=http://localhost:6379")
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        ["ERROR: --dualcache-redis-url: 'http://localhost:6379' is not a redis://*"]
    )


def test_an_unreachable_server_is_a_usage_error_naming_the_variable(pytester, monkeypatch):
    monkeypatch.setenv("DUALCACHE_REDIS_URL", "redis://127.0.0.1:1/0")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--dualcache", "-k", "test_nothing")
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        ["ERROR: $DUALCACHE_REDIS_URL: cannot reach Redis at redis://127.0.0.1:1/0: *"]
    )


@needs_server
def test_each_env_gets_its_own_prefix_and_cleans_up_on_close():
    settings = DualCacheSettings(do_engine="redis", redis_url=REDIS_URL)
    first = DualCacheEnv.from_settings(settings, VirtualClock())
    second = DualCacheEnv.from_settings(settings, VirtualClock())
    first.do.set("k", "first", ttl=60)
    second.do.set("k", "second", ttl=60)
    assert (first.do.get("k"), second.do.get("k")) == ("first", "second")
    engine = first.do.engine
    assert isinstance(engine, RedisEngine) and engine.prefix != second.do.engine.prefix
    name = engine.prefix + "k"
    assert 0 < engine.client.ttl(name) <= engine.cleanup_after_s  # cleanup only
    first.close()
    assert engine.client.exists(name) == 0
    assert second.do.get("k") == "second"
    second.close()


@needs_server
def test_expiry_follows_the_virtual_clock_not_the_servers():
    env = DualCacheEnv.from_settings(
        DualCacheSettings(do_engine="redis", redis_url=REDIS_URL), VirtualClock()
    )
    env.do.set("k", "v", ttl=3600)
    env.clock.advance(3599.999)
    assert env.do.get("k") == "v"
    env.clock.advance(0.001)
    assert env.do.get("k") is None
    env.close()


@needs_server
def test_the_fixture_env_runs_on_the_server(pytester):
    pytester.makepyfile(
        """
        def test_on_server(do_cache):
            do_cache.set("k", 1, ttl=60)
            assert do_cache.engine.client.connection_pool.connection_kwargs["port"] > 0
            assert do_cache.engine.prefix.startswith("dualcache:")
        """
    )
    pytester.runpytest(f"--dualcache-redis-url={REDIS_URL}").assert_outcomes(passed=1)


def test_the_variable_never_stops_a_session_without_dualcache(pytester, monkeypatch):
    monkeypatch.setenv("DUALCACHE_REDIS_URL", "redis://127.0.0.1:1/0")
    pytester.makepyfile("def test_nothing(): pass")
    pytester.runpytest().assert_outcomes(passed=1)


# --- a server lost mid-run ----------------------------------------------------------------


@pytest.fixture
def no_lost_servers() -> Iterator[None]:
    """Start and end with an empty ``lost_servers()`` record (it is process-wide)."""
    forget_lost_servers()
    yield
    forget_lost_servers()


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A ``redis-server`` of this test's own on loopback, password ``s3cret``, and its port."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH")
    port = free_loopback_port()
    command = [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    command += ["--appendonly", "no", "--dir", str(tmp_path), "--requirepass", "s3cret"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        # Its log says when it listens: read it (a blocking read; the timer ends a server that
        # never gets there, which ends the read).
        timer = threading.Timer(SERVER_START_TIMEOUT_S, process.kill)
        timer.start()
        try:
            ready = any("Ready to accept connections" in line for line in process.stdout)
        finally:
            timer.cancel()
        assert ready, f"redis-server did not start on port {port}"
        yield process, port
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def lost_error_of(call: object) -> DurableObjectError:
    """The DurableObjectError ``call()`` raises (and nothing else)."""
    with pytest.raises(DurableObjectError) as raised:
        call()  # type: ignore[operator]
    return raised.value


def test_a_killed_server_is_a_do_error_in_the_ledger_and_the_dal_falls_back_to_kv(
    own_redis_server: tuple[subprocess.Popen[str], int], no_lost_servers: None
) -> None:
    process, port = own_redis_server
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    env = DualCacheEnv.from_settings(DualCacheSettings(redis_url=url), VirtualClock())
    dal = CacheAbstraction(env)
    try:
        assert dal.put("before", 1).route == "do"
        process.send_signal(signal.SIGKILL)
        process.wait()
        error = lost_error_of(lambda: env.do.get("before"))
        message = str(error)
        assert message.startswith(
            f"Redis server redis://:***@127.0.0.1:{port}/0 stopped answering: "
        )
        assert "s3cret" not in message
        assert isinstance(error.__cause__, redis.exceptions.ConnectionError)
        last = env.do.ledger.records[-1]
        assert (last.op, last.key, last.ok, last.error) == ("get", "before", False, message)
        assert dal.get("before") is None, "FB-4: the DAL's get falls back to KV, never raises"
        written = dal.put("after", 2)
        assert (written.success, written.route) == (True, "kv"), "a fallback copy in KV"
        assert dal.get("after") == 2
        assert lost_servers() == [message], "one message per server: its first error"
        failed = sum(env.do.ledger.counts(ok=False).values())
        assert summarize(env.do.ledger.records, Path.cwd())["do"]["errors"] == failed >= 3
    finally:
        with pytest.warns(RuntimeWarning, match="stopped answering"):
            env.close()
        close_server_clients()


def test_a_lost_fakeredis_server_fails_every_operation_as_a_recorded_do_error(
    no_lost_servers: None,
) -> None:
    server = fakeredis.FakeServer()
    url = "redis://admin:hunter2@cache.example:6380/2?password=hunter2&db=2"
    engine = RedisEngine(fakeredis.FakeRedis(server=server), url=url)
    cache = DurableObjectCache(VirtualClock(), engine=engine)
    cache.set("k", "v", ttl=60)
    server.connected = False
    errors = [
        lost_error_of(lambda: cache.get("k")),
        lost_error_of(lambda: cache.set("k", "w", ttl=60)),
        lost_error_of(lambda: cache.delete("k")),
        lost_error_of(lambda: cache.list("k")),
    ]
    named = "Redis server redis://admin:***@cache.example:6380/2?password=***&db=2"
    for error in errors:
        assert type(error) is DurableObjectError
        assert str(error).startswith(f"{named} stopped answering: "), str(error)
        assert "hunter2" not in str(error)
    assert [(r.op, r.key, r.ok, r.error) for r in cache.ledger.records[1:]] == [
        (op, "k", False, str(error))
        for op, error in zip(("get", "set", "delete", "list"), errors, strict=True)
    ]
    assert cache.ledger.counts(ok=False) == Counter(get=1, set=1, delete=1, list=1)
    assert lost_error_of(cache.stats) is not None, "stats cannot count a lost server's keys"
    assert len(cache.ledger) == 5, "stats is not an operation: no ledger row"
    assert lost_servers() == [str(errors[0])], "one message per server: its first error"
    server.connected = True
    assert cache.get("k") == "v", "nothing changed while the server was gone"
    forget_lost_servers()
    assert lost_servers() == []


def test_an_engine_without_a_url_names_its_server_but_is_not_a_lost_server(
    no_lost_servers: None,
) -> None:
    server = fakeredis.FakeServer()
    cache = DurableObjectCache(
        VirtualClock(), engine=RedisEngine(fakeredis.FakeRedis(server=server))
    )
    server.connected = False
    error = lost_error_of(lambda: cache.get("k"))
    assert str(error).startswith("Redis server (in-process fakeredis) stopped answering: ")
    assert lost_servers() == [], "a fakeredis outage a test makes on purpose stops nothing"


def test_a_lost_server_falls_back_to_kv_through_the_dal(no_lost_servers: None) -> None:
    server = fakeredis.FakeServer()
    engine = RedisEngine(fakeredis.FakeRedis(server=server), url="redis://127.0.0.1:1/0")
    env = DualCacheEnv(VirtualClock(), do_engine=engine)
    dal = CacheAbstraction(env)
    assert dal.put("k", {"n": 1}).route == "do"
    server.connected = False
    assert dal.get("k") is None, "FB-4: get falls back to KV (which holds no copy) and never raises"
    assert dal.put("k", {"n": 2}).success, "FB-3: the put succeeds via KV"
    assert dal.get("k") == {"n": 2}
    assert env.do.ledger.counts(ok=False)["get"] >= 1


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://user:p%40ss@h:1/0?socket_timeout=1", "redis://user:***@h:1/0?socket_timeout=1"),
        ("unix:///tmp/redis.sock?db=1&password=s3cret", "unix:///tmp/redis.sock?db=1&password=***"),
        ("rediss://cache.example:6380", "rediss://cache.example:6380"),
    ],
)
def test_a_server_is_named_by_its_url_without_the_password(url: str, shown: str) -> None:
    engine = RedisEngine(fakeredis.FakeRedis(server=fakeredis.FakeServer()), url=url)
    assert (engine.url, engine.server) == (url, shown)


def test_a_server_lost_mid_run_stops_the_session_after_that_test_naming_it(
    pytester: pytest.Pytester,
    own_redis_server: tuple[subprocess.Popen[str], int],
    no_lost_servers: None,
) -> None:
    process, port = own_redis_server
    pytester.makepyfile(
        f"""
        import os, signal, time

        from pytest_dualcache.durable import DurableObjectError

        def test_server_dies(do_cache):
            do_cache.set("k", "v", ttl=60)
            os.kill({process.pid}, signal.SIGKILL)
            # The signal lands a moment later: read until the server is gone (bounded).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    do_cache.get("k")
                except DurableObjectError:
                    break
            else:
                raise AssertionError("the killed server kept answering")

        def test_never_runs(do_cache):
            do_cache.set("k", "v", ttl=60)
        """
    )
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    # The order is the scenario: the server dies in the first test.
    result = pytester.runpytest("-p", "no:randomly", f"--dualcache-redis-url={url}")
    process.wait()
    result.assert_outcomes(passed=1)
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [f"*dualcache: Redis server redis://:***@127.0.0.1:{port}/0 stopped answering*stopping*"]
    )
    assert "s3cret" not in result.stdout.str()
