"""A ``DualCacheEnv`` built from a wrangler config: the user's Durable Object namespaces and KV
namespaces bound, one account-wide KV quota, the contract harness reaching the user's class
(faults by RPC method, operations counted, a flip restarting instances), and the hint an
async DAL gets when it is handed the sync env."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_dualcache.contracts.harness import ContractHarness

from pytest_dualcache import DualCacheEnv
from pytest_dualcache.kv_errors import KVQuotaError
from pytest_dualcache.limits import KV_DAILY_QUOTAS
from pytest_dualcache.runtime import importer
from pytest_dualcache.runtime.durable_objects import DurableObjectRuntimeError
from pytest_dualcache.runtime.wrangler import WranglerConfig, WranglerConfigError, read_config
from pytest_dualcache.settings import DualCacheSettings

ENTRY = """
    from workers import DurableObject

    class Box(DurableObject):
        async def set(self, key, value, ttl):
            await self.ctx.storage.put(key, value)

        async def get(self, key):
            return await self.ctx.storage.get(key)

        async def delete(self, key):
            return await self.ctx.storage.delete(key)
"""


@pytest.fixture
def config(tmp_path: Path) -> Iterator[WranglerConfig]:
    (tmp_path / "box_entry.py").write_text(textwrap.dedent(ENTRY))
    (tmp_path / "wrangler.toml").write_text(
        textwrap.dedent(
            """
            main = "box_entry.py"
            kv_namespaces = [{binding = "CACHE_KV", id = "a1"}, {binding = "AUDIT", id = "b2"}]
            durable_objects.bindings = [{name = "CACHE_DO", class_name = "Box"}]
            vars = {FEATURE_FLAG_DO_CACHE = "false"}
            """
        )
    )
    with importer.workers_shim(), pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(tmp_path))
        yield read_config(tmp_path / "wrangler.toml")
    sys.modules.pop("box_entry", None)  # each test's Worker module is its own


def test_the_configs_bindings_win_and_the_do_cache_stays_reachable(config):
    env = DualCacheEnv(wrangler=config)
    assert env.do_binding is env.CACHE_DO is env.durable_objects["CACHE_DO"]
    assert env.do is not env.CACHE_DO and env.do.ledger in env.ledgers()
    assert env.CACHE_DO.ledger in env.ledgers() and env.AUDIT.ledger in env.ledgers()
    assert env.flag.enabled is False  # the config's var
    assert config.kv_namespace_ids() == {"CACHE_KV": "a1", "AUDIT": "b2"}


def test_every_kv_namespace_of_an_env_shares_one_daily_quota(config):
    env = DualCacheEnv(wrangler=config)
    writes = KV_DAILY_QUOTAS["free"]["write"]  # type: ignore[index]
    for n in range(writes // 2):
        env.kv.put(f"k{n}", "v")
        env.AUDIT.put(f"k{n}", "v")
    with pytest.raises(KVQuotaError):
        env.AUDIT.put("one-more", "v")
    assert env.kv.used_today()["write"] == writes


def test_faults_act_on_the_stubs_by_method_and_flips_restart_instances(config):
    harness = ContractHarness(lambda env: None, DualCacheSettings(wrangler=config))
    namespace = harness.env.CACHE_DO
    assert harness.do is namespace
    stub = namespace.getByName("cache")
    harness.use_route("do")
    mark = harness.mark()
    harness.do.fail(ops="set")
    with pytest.raises(DurableObjectRuntimeError):
        harness.run(stub.set("k", 1, 60))
    harness.do.recover()
    harness.run(stub.set("k", 1, 60))
    assert harness.run(stub.get("k")) == 1
    ops = [record.op for record in harness.ops_since(mark, store="do", ok=None)]
    assert ops == ["rpc", "put", "rpc", "get", "rpc"]
    live = namespace.instance("cache")
    harness.use_route("kv")  # a flip is a redeploy: a new instance, the same storage
    assert namespace.instance("cache") is not live
    assert harness.run(stub.get("k")) == 1
    harness.close()


def test_an_async_dal_handed_the_sync_env_is_told_to_use_the_workers_face():
    class AsyncDAL:
        def __init__(self, env):
            self.env = env

        async def get(self, key):
            return await self.env.CACHE_KV.get(key)

    harness = ContractHarness(AsyncDAL)
    dal = harness.start("kv")
    with pytest.raises(TypeError, match=r"build it on env\.workers\(\)"):
        dal.get("k")
    harness.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kv_namespaces = [{binding = 'no good'}]", "kv_namespaces[0].binding: 'no good' is not"),
        ("kv_namespaces = 'x'", "kv_namespaces: expected a list of tables"),
        ("durable_objects.bindings = [{name = 'A'}]", "durable_objects.bindings[0].class_name"),
        (
            "durable_objects.bindings = [{name = 'A', class_name = 'B', script_name = 'other'}]",
            "durable_objects.bindings[0].script_name: a Durable Object of another Worker",
        ),
        ("migrations = [{tag = 'v1', new_classes = 'A'}]", "migrations[0].new_classes"),
        ("main = [", "cannot read it"),
    ],
)
def test_a_config_that_cannot_be_used_names_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "wrangler.toml"
    path.write_text(text + "\n")
    with pytest.raises(WranglerConfigError) as raised:
        read_config(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)
