"""A Worker module written as Cloudflare's Python Workers examples are (``from workers import
...``, a Durable Object with RPC methods, storage, an alarm and ``blockConcurrencyWhile``)
runs unmodified on the runtime: imported through the hook, bound with ``build_namespaces``."""

from __future__ import annotations

import asyncio
import importlib
import sys
import textwrap
import types
from typing import Any

import pytest

from pytest_dualcache.clock import DEFAULT_START, VirtualClock
from pytest_dualcache.runtime import importer
from pytest_dualcache.runtime.durable_objects import build_namespaces
from pytest_dualcache.runtime.entrypoints import ExecutionContext
from pytest_dualcache.runtime.http import Request

WORKER = """
from urllib.parse import urlparse

from js import Date, Object
from pyodide.ffi import to_js
from workers import DurableObject, FetchResponse, Request, Response, WorkerEntrypoint

FLUSH_AFTER_MS = 10_000


class Counter(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.storage = ctx.storage
        self.value = 0

        async def load():
            self.value = await self.storage.get("value") or 0

        # No request reaches the object before its state is loaded.
        self.ctx.blockConcurrencyWhile(load)

    async def increment(self, amount=1):
        self.value += amount
        await self.storage.put("value", self.value)
        if await self.storage.getAlarm() is None:
            self.storage.setAlarm(Date.now() + FLUSH_AFTER_MS)
        return self.value

    async def get_counter_value(self):
        return self.value

    async def save_profile(self, name, tags):
        profile = to_js({"name": name, "tags": tags}, dict_converter=Object.fromEntries)
        await self.storage.put("profile", profile)
        stored = await self.storage.get("profile")
        return stored.to_py()

    async def fetch(self, request):
        assert isinstance(request, Request)
        if request.method == "GET":
            return Response.json({"value": self.value, "path": urlparse(request.url).path})
        return Response("method not allowed", status=405)

    async def alarm(self, alarm_info):
        flushes = await self.storage.get("flushes") or 0
        await self.storage.put({"flushes": flushes + 1, "flushed_at": Date.now()})


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        stub = self.env.COUNTER.get(self.env.COUNTER.idFromName(url.path))
        if request.method == "POST":
            value = await stub.increment(int(await request.text() or 1))
            return Response(f"count={value}")
        response = await stub.fetch(request.url, method=request.method)
        assert isinstance(response, FetchResponse)
        return response
"""


@pytest.fixture
def worker(tmp_path, monkeypatch) -> types.ModuleType:
    """The Worker module, imported as a user's would be: from its folder, through the hook."""
    (tmp_path / "counter_worker.py").write_text(textwrap.dedent(WORKER))
    monkeypatch.syspath_prepend(str(tmp_path))
    importer.install()
    try:
        yield importlib.import_module("counter_worker")
    finally:
        importer.uninstall()
        sys.modules.pop("counter_worker", None)


class App:
    """The Worker on an env with its Durable Object binding, as phase 2's fixture will wire it."""

    def __init__(self, module: types.ModuleType) -> None:
        self.clock = VirtualClock()
        self.env = types.SimpleNamespace()
        self.namespaces = build_namespaces(
            {"COUNTER": (module.Counter, "new_sqlite_classes")}, env=self.env, clock=self.clock
        )
        self.env.COUNTER = self.namespaces["COUNTER"]
        self.module = module

    async def fetch(self, url: str, **init: Any) -> tuple[int, str]:
        ctx = ExecutionContext()
        response = await self.module.Default(ctx, self.env).fetch(Request(url, **init))
        await ctx.settle()
        return response.status, await response.text()


def test_the_worker_counts_through_its_durable_object(worker):
    app = App(worker)

    async def requests() -> list[tuple[int, str]]:
        return [
            await app.fetch("https://app.example/apples", method="POST", body="2"),
            await app.fetch("https://app.example/apples", method="POST"),
            await app.fetch("https://app.example/pears", method="POST"),
            await app.fetch("https://app.example/apples"),
            await app.fetch("https://app.example/plums"),
            await app.fetch("https://app.example/apples", method="DELETE"),
        ]

    assert asyncio.run(requests()) == [
        (200, "count=2"),
        (200, "count=3"),
        (200, "count=1"),
        (200, '{"value": 3, "path": "/apples"}'),
        (200, '{"value": 0, "path": "/plums"}'),
        (405, "method not allowed"),
    ]


def test_rpc_storage_alarm_and_restart(worker):
    app = App(worker)
    counter = app.env.COUNTER.getByName("/apples")

    async def scenario() -> dict[str, Any]:
        await counter.increment(5)
        profile = await counter.save_profile("apples", ["red", "green"])
        app.namespaces["COUNTER"].restart("/apples")  # a deploy: the instance goes, storage stays
        after_restart = await counter.get_counter_value()
        await app.clock.advance_async(10)
        return {"profile": profile, "after_restart": after_restart}

    outcome = asyncio.run(scenario())
    assert outcome == {"profile": {"name": "apples", "tags": ["red", "green"]}, "after_restart": 5}
    assert app.namespaces["COUNTER"].contents("/apples") == {
        "flushed_at": int((DEFAULT_START + 10) * 1000),
        "flushes": 1,
        "profile": {"name": "apples", "tags": ["red", "green"]},
        "value": 5,
    }
    ops = [(row.op, row.call_site.function) for row in app.namespaces["COUNTER"].ledger.records]
    assert ops[:4] == [
        ("get", "load"),
        ("put", "increment"),
        ("getAlarm", "increment"),
        ("setAlarm", "increment"),
    ]
    assert ("rpc", "scenario") in ops and ("alarm", "scenario") in ops
