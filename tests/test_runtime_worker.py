"""A team's Worker project, as Cloudflare's public Python Workers examples are written, run
unmodified under pytest through its wrangler config: the ``dualcache_worker`` fixture, the
env's bindings from the config, the import hook's session, the report and the usage errors."""

from __future__ import annotations

import json
import textwrap

import pytest

from pytest_dualcache.runtime import importer

WRANGLER_TOML = """
    name = "counter-worker"
    main = "src/entry.py"
    compatibility_flags = ["python_workers"]

    [vars]
    GREETING = "hello"

    [[kv_namespaces]]
    binding = "SETTINGS"
    id = "5e771e9b0c5a4a0c9f1d2e3a4b5c6d7e"

    [[durable_objects.bindings]]
    name = "COUNTER"
    class_name = "Counter"

    [[migrations]]
    tag = "v1"
    new_classes = ["Counter"]

    [env.staging.vars]
    GREETING = "hello, staging"

    [[env.staging.durable_objects.bindings]]
    name = "COUNTER"
    class_name = "Counter"
"""

# Shaped as Cloudflare's python-workers-examples (KV, Durable Objects, alarms, cron).
ENTRY = """
    from urllib.parse import urlparse

    from js import Date
    from workers import DurableObject, Response, WorkerEntrypoint

    FLUSH_AFTER_MS = 10_000


    class Counter(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.value = 0
            self.ctx.blockConcurrencyWhile(self.load)

        async def load(self):
            self.value = await self.ctx.storage.get("value") or 0

        async def increment(self, amount):
            self.value += amount
            await self.ctx.storage.put("value", self.value)
            if await self.ctx.storage.getAlarm() is None:
                self.ctx.storage.setAlarm(Date.now() + FLUSH_AFTER_MS)
            return self.value

        async def alarm(self):
            flushes = await self.ctx.storage.get("flushes") or 0
            await self.ctx.storage.put("flushes", flushes + 1)
            await self.env.SETTINGS.put("last-flush", str(Date.now()))


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            url = urlparse(request.url)
            if url.path == "/greeting":
                return Response(self.env.GREETING)
            if url.path == "/setting":
                await self.env.SETTINGS.put("theme", "dark")
                return Response(await self.env.SETTINGS.get("theme"))
            if url.path == "/later":  # work that starts only after the response
                self.ctx.waitUntil(self.remember(url.path))
                return Response("ok")
            counter = self.env.COUNTER.getByName(url.path.strip("/") or "main")
            if request.method == "POST":
                self.ctx.waitUntil(self.env.SETTINGS.put("touched", url.path))
                return Response.json({"value": await counter.increment(1)})
            return Response("not found", status=404)

        async def remember(self, path):
            await self.env.SETTINGS.put("remembered", path)

        async def scheduled(self, controller, env, ctx):
            stub = env.COUNTER.getByName("cron")
            await stub.increment(100)
"""

TESTS = """
    import asyncio
    import time

    def test_kv_binding(dualcache_worker, dualcache_env):
        assert dualcache_worker.fetch("/setting").text == "dark"
        assert dualcache_env.SETTINGS.get("theme") == "dark"

    def test_vars(dualcache_worker):
        assert dualcache_worker.fetch("/greeting").text == "hello"

    def test_rpc_and_storage(dualcache_worker, dualcache_clock):
        assert dualcache_worker.fetch("/a", method="POST").json() == {"value": 1}
        dualcache_clock.advance(1)  # KV takes one write a second to a key
        assert dualcache_worker.fetch("/a", method="POST").json() == {"value": 2}
        assert dualcache_worker.durable_object("COUNTER", "a").value == 2
        stored = dualcache_worker.storage("COUNTER", "a")
        assert stored.get("value") == 2 and "value" in stored and len(stored) == 1
        never = dualcache_worker.storage("COUNTER", "never-used")
        assert never.list() == {} and len(never) == 0 and never.alarm is None

    def test_wait_until_work_is_done_when_fetch_returns(dualcache_worker, dualcache_env):
        dualcache_worker.fetch("/b", method="POST")
        assert dualcache_env.SETTINGS.get("touched") == "/b"

    def test_alarm_on_the_virtual_clock(dualcache_worker, dualcache_clock, dualcache_env):
        dualcache_worker.fetch("/c", method="POST")
        assert dualcache_worker.storage("COUNTER", "c").alarm == int(time.time() * 1000) + 10_000
        dualcache_clock.advance(9.999)
        assert dualcache_worker.storage("COUNTER", "c").get("flushes") is None
        dualcache_clock.advance(0.001)
        assert dualcache_worker.storage("COUNTER", "c").get("flushes") == 1
        assert dualcache_env.SETTINGS.get("last-flush") == str(int(time.time() * 1000))

    def test_restart_keeps_storage_and_block_concurrency_reloads_it(
        dualcache_worker, dualcache_clock
    ):
        dualcache_worker.fetch("/d", method="POST")
        dualcache_clock.advance(1)
        dualcache_worker.restart("COUNTER", "d")
        assert dualcache_worker.durable_object("COUNTER", "d").value == 1
        assert dualcache_worker.fetch("/d", method="POST").json() == {"value": 2}

    def test_scheduled(dualcache_worker):
        dualcache_worker.scheduled(cron="*/5 * * * *")
        assert dualcache_worker.storage("COUNTER", "cron").get("value") == 100

    def test_fetch_async(dualcache_worker):
        response = asyncio.run(dualcache_worker.fetch_async("/e", method="POST"))
        assert response.status == 200 and response.json() == {"value": 1}

    def test_the_clock_is_the_workers(dualcache_worker, dualcache_clock):
        assert time.time() == dualcache_clock.now()
"""


@pytest.fixture
def worker_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", wrangler=textwrap.dedent(WRANGLER_TOML))
    pytester.mkdir("src")
    pytester.path.joinpath("src", "entry.py").write_text(textwrap.dedent(ENTRY))
    return pytester


def test_cloudflares_example_shapes_run_unmodified_each_in_milliseconds(worker_project, capsys):
    worker_project.makepyfile(test_counter_worker=textwrap.dedent(TESTS))
    result = worker_project.runpytest("--durations=0", "--durations-min=0")
    result.assert_outcomes(passed=9)
    durations = [line for line in result.outlines if " call " in line]
    assert len(durations) == 9
    with capsys.disabled():  # shown, never asserted: timings vary with the machine's load
        print("\n" + "\n".join(durations))


def test_a_wrangler_environment_takes_its_own_vars(worker_project):
    worker_project.makeini("[pytest]\ndualcache_wrangler_env = staging\n")
    worker_project.makepyfile(
        """
        def test_staging(dualcache_worker, dualcache_env):
            assert dualcache_worker.fetch("/greeting").text == "hello, staging"
            assert "SETTINGS" not in dualcache_env.bindings  # bindings are not inherited
        """
    )
    worker_project.runpytest().assert_outcomes(passed=1)


def test_jsonc_config_with_comments_and_trailing_commas(pytester):
    pytester.makefile(
        ".jsonc",
        wrangler="""
        // the Worker
        {
          "main": "src/entry.py",
          "vars": {"GREETING": "hi",},  /* trailing commas are fine */
          "kv_namespaces": [{"binding": "SETTINGS", "id": "abc123"},],
          "durable_objects": {"bindings": [{"name": "COUNTER", "class_name": "Counter"}]},
        }
        """,
    )
    pytester.mkdir("src")
    pytester.path.joinpath("src", "entry.py").write_text(textwrap.dedent(ENTRY))
    pytester.makepyfile(
        """
        def test_jsonc(dualcache_worker, cloudflare_api):
            assert dualcache_worker.fetch("/greeting").text == "hi"
            assert cloudflare_api.namespace_id("SETTINGS") == "abc123"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_env_binds_the_configs_namespaces_and_keeps_the_do_cache(worker_project):
    worker_project.makepyfile(
        """
        from pytest_dualcache.runtime.durable_objects import DurableObjectNamespace

        def test_env(dualcache_env):
            assert isinstance(dualcache_env.COUNTER, DurableObjectNamespace)
            assert dualcache_env.COUNTER.storage_backend == "new_classes"
            assert type(dualcache_env.do).__name__ == "DurableObjectCache"
            assert dualcache_env.GREETING == "hello"
            assert dualcache_env.SETTINGS.quota is dualcache_env.kv.quota  # one account
            assert dualcache_env.workers().COUNTER is dualcache_env.COUNTER
        """
    )
    worker_project.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("class Other: pass\n", "durable_objects.bindings?0?.class_name: 'Counter' is not a class"),
        ("import no_such_module\n", "main: importing"),
    ],
)
def test_a_config_naming_a_missing_class_or_module_stops_the_session(pytester, entry, message):
    pytester.makefile(".toml", wrangler=textwrap.dedent(WRANGLER_TOML))
    pytester.mkdir("src")
    pytester.path.joinpath("src", "entry.py").write_text(entry)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--dualcache", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*wrangler.toml: {message}*"])


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("dualcache_wrangler_env = nowhere", "*wrangler.toml: env.nowhere: no such environment*"),
        ("dualcache_wrangler_config = missing.toml", "*ini dualcache_wrangler_config: *missing*"),
        ("dualcache_workers_shim = maybe", "*ini dualcache_workers_shim: 'maybe' is not one of*"),
    ],
)
def test_bad_wrangler_settings_are_usage_errors_naming_their_source(worker_project, ini, message):
    worker_project.makeini(f"[pytest]\n{ini}\n")
    worker_project.makepyfile("def test_nothing(): pass")
    result = worker_project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_config_naming_a_main_that_is_not_python_is_a_usage_error(pytester):
    pytester.makefile(".toml", wrangler='main = "src/index.js"\n')
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--dualcache", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*wrangler.toml: main: *index.js is not a Python module*"])


def test_the_shim_is_on_for_the_session_with_a_config_and_gone_after(worker_project):
    worker_project.makepyfile(
        """
        from pytest_dualcache.runtime import importer

        def test_on():
            import workers
            assert importer.is_installed() and workers.Response
        """
    )
    assert not importer.is_installed()
    worker_project.runpytest().assert_outcomes(passed=1)
    assert not importer.is_installed()


def test_the_shim_can_be_turned_off(pytester):
    pytester.makeini("[pytest]\ndualcache_workers_shim = off\n")
    pytester.makepyfile(
        """
        import pytest

        def test_off():
            with pytest.raises(ModuleNotFoundError):
                import workers  # noqa: F401
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_shim_can_be_turned_on_without_a_config(pytester):
    pytester.makeini("[pytest]\ndualcache_workers_shim = on\n")
    pytester.makepyfile(
        """
        def test_on():
            from pyodide.ffi import to_js
            assert to_js({"a": 1}) == {"a": 1}
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_dualcache_worker_without_a_config_says_what_is_missing(pytester):
    pytester.makepyfile("def test_worker(dualcache_worker): pass")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*dualcache_worker needs a wrangler config*"])


def test_the_report_counts_durable_object_calls_and_storage_operations(worker_project):
    # The Worker writes KV itself, with no cache layer: allowed here, it is not the point.
    worker_project.makeini("[pytest]\ndualcache_kv_allow = *src/entry.py::*\n")
    worker_project.makepyfile(
        """
        def test_calls(dualcache_worker, dualcache_clock):
            dualcache_worker.fetch("/a", method="POST")
            dualcache_clock.advance(1)
            dualcache_worker.fetch("/a", method="POST")
            dualcache_clock.advance(10)
        """
    )
    result = worker_project.runpytest(
        "--dualcache", "-p", "no:randomly", "--dualcache-report=report.json", "-k", "calls"
    )
    result.stdout.fnmatch_lines(["*Durable Object calls: 2 RPC, 0 fetch, 1 alarms*"])
    report = json.loads(worker_project.path.joinpath("report.json").read_text())
    (test,) = (data for nodeid, data in report["tests"].items() if "test_calls" in nodeid)
    assert test["do_calls"] == {"rpc": 2, "fetch": 0, "alarms": 1}
    # Storage: the constructor's get, each call's put, the alarm's get and put.
    assert (test["do"]["sets"], test["do"]["gets"]) == (3, 2)


def test_a_module_level_on_fetch_handler_is_the_worker(pytester):
    # The older shape of Cloudflare's Python examples: handlers as module functions.
    pytester.makefile(".toml", wrangler='main = "worker.py"\nvars = {NAME = "world"}\n')
    pytester.path.joinpath("worker.py").write_text(
        textwrap.dedent(
            """
            from workers import Response

            async def on_fetch(request, env):
                return Response(f"Hello, {env.NAME}!")
            """
        )
    )
    pytester.makepyfile(
        """
        import pytest

        def test_hello(dualcache_worker):
            assert dualcache_worker.fetch("https://hello.example/").text == "Hello, world!"

        def test_no_cron_handler(dualcache_worker):
            with pytest.raises(pytest.fail.Exception, match="no scheduled handler"):
                dualcache_worker.scheduled()
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_the_lists_example_shape_with_a_cron_handler_taking_only_the_controller(pytester):
    # As Cloudflare's Durable Objects and cron examples: JSON text in storage, RPC methods
    # called through idFromName/get, scheduled(self, controller), and a restart in between.
    pytester.makefile(
        ".toml",
        wrangler="""
        main = "src/entry.py"
        durable_objects.bindings = [{name = "LISTS", class_name = "List"}]
        migrations = [{tag = "v1", new_sqlite_classes = ["List"]}]
        """,
    )
    pytester.mkdir("src")
    pytester.path.joinpath("src", "entry.py").write_text(
        textwrap.dedent(
            """
            import json
            from urllib.parse import urlparse

            from workers import DurableObject, Response, WorkerEntrypoint

            class List(DurableObject):
                async def read(self):
                    stored = await self.ctx.storage.get("items")
                    return json.loads(stored) if stored else []

                async def add(self, item):
                    items = await self.read()
                    items.append(item)
                    await self.ctx.storage.put("items", json.dumps(items))

            class Default(WorkerEntrypoint):
                async def scheduled(self, controller):
                    lists = self.env.LISTS
                    await lists.get(lists.idFromName("cron")).add(controller.cron)

                async def fetch(self, request):
                    name, _, item = urlparse(request.url).path.strip("/").partition("/")
                    stub = self.env.LISTS.get(self.env.LISTS.idFromName(name))
                    if item:
                        await stub.add(item)
                    return Response("\\n".join(await stub.read()))
            """
        )
    )
    pytester.makepyfile(
        """
        def test_lists(dualcache_worker):
            dualcache_worker.fetch("/groceries/milk")
            dualcache_worker.restart("LISTS", "groceries")
            assert dualcache_worker.fetch("/groceries/eggs").text == "milk\\neggs"
            dualcache_worker.scheduled(cron="0 * * * *")
            assert dualcache_worker.fetch("/cron").text == "0 * * * *"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_factory_module_that_imports_js_at_its_top_loads(worker_project):
    worker_project.makepyfile(
        worker_dal="""
        from js import JSON  # as Worker code does: the shim must be in before factories load

        from pytest_dualcache.abstraction import CacheAbstraction


        def make_dal(env):
            assert JSON.parse(JSON.stringify({"a": 1})) == {"a": 1}
            return CacheAbstraction(env)
        """,
        test_nothing="def test_nothing(): pass",
    )
    worker_project.syspathinsert()
    result = worker_project.runpytest(
        "--dualcache", "--dualcache-factory=mine=worker_dal:make_dal", "test_nothing.py"
    )
    result.assert_outcomes(passed=1)


def test_each_fetch_is_a_request_of_the_latency_model_until_its_response(worker_project):
    """With ``dualcache_latency`` on, a fetch is timed as ``METHOD /path`` (no query): the KV
    operations its handler makes count; a coroutine it hands to ``waitUntil`` runs after the
    response and does not."""
    worker_project.makeini(
        "[pytest]\ndualcache_latency = seed\ndualcache_kv_allow = *entry.py::*\n"
    )
    worker_project.makepyfile(
        test_fetches="""
        def test_fetches(dualcache_worker, dualcache_clock):
            assert dualcache_worker.fetch("/setting?x=1").text == "dark"
            dualcache_clock.advance(1)  # KV takes one write a second to a key
            assert dualcache_worker.fetch("/setting").text == "dark"
            assert dualcache_worker.fetch("/a", method="post").json() == {"value": 1}
            assert dualcache_worker.fetch("/later").text == "ok"
        """
    )
    result = worker_project.runpytest("--dualcache", "test_fetches.py", "--dualcache-report=r.json")
    result.assert_outcomes(passed=1)
    requests = json.loads((worker_project.path / "r.json").read_text())["latency"]["requests"]
    assert set(requests) == {"GET /setting", "POST /a", "GET /later"}
    setting = requests["GET /setting"]
    # A KV put (the seed's fixed 50 ms) and a KV get (10 to 50 ms) each time.
    assert setting["count"] == 2 and 60 <= setting["p50_ms"] <= setting["max_ms"] <= 100
    # The Durable Object's own storage costs nothing, but the KV put the handler hands to
    # waitUntil was made when called (an emulated binding completes at once): 50 ms.
    assert requests["POST /a"]["max_ms"] == 50.0
    # A coroutine handed to waitUntil runs after the response: its KV put is not in it.
    assert requests["GET /later"]["max_ms"] == 0.0
