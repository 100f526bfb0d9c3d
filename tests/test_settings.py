"""The settings resolver: one precedence for every setting, and errors that name the source.

Driven through a stand-in config (options, ini values, the factories hook), so that each
rule is checked on its own without a pytest session.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_dualcache import settings as settings_module
from pytest_dualcache.settings import (
    SETTINGS,
    BindingNames,
    DualCacheSettings,
    resolve_settings,
)
from pytest_dualcache.vocabulary import Setting, positive_int


class StandInConfig:
    """What the resolver reads of a ``pytest.Config``: options, ini values and the hook."""

    def __init__(
        self,
        options: dict[str, Any] | None = None,
        ini: dict[str, Any] | None = None,
        hooked: list[dict[str, Any]] | None = None,
    ) -> None:
        self.options = options or {}
        self.ini = ini or {}
        self.rootpath = Path(__file__).parent / "no-wrangler-config-here"
        hooked_factories = hooked or []

        class Hook:
            @staticmethod
            def pytest_dualcache_factories(config: object) -> list[dict[str, Any]]:
                return hooked_factories

        self.hook = Hook()

    def getoption(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    def getini(self, name: str) -> Any:
        ini_type = next(s.ini_type for s in SETTINGS.values() if s.ini == name)
        return self.ini.get(name, [] if ini_type == "linelist" else "")


def resolve(**kwargs: Any) -> DualCacheSettings:
    return resolve_settings(StandInConfig(**kwargs))  # type: ignore[arg-type]


def usage_error(**kwargs: Any) -> str:
    with pytest.raises(pytest.UsageError) as excinfo:
        resolve(**kwargs)
    return str(excinfo.value)


# --- one precedence: option > environment variable > ini > default --------------------------


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> str:
    """A setting with all four sources, resolved by the same rule as every real one."""
    monkeypatch.setitem(
        SETTINGS,
        "probe",
        Setting("a setting every source can give", "default", "--probe", "PROBE", "probe"),
    )
    monkeypatch.delenv("PROBE", raising=False)
    return "probe"


@pytest.mark.parametrize(
    ("option", "env", "ini", "expected", "source"),
    [
        ("cli", "env", "ini", "cli", "--probe"),
        (None, "env", "ini", "env", "$PROBE"),
        (None, None, "ini", "ini", "ini probe"),
        (None, None, None, "default", "the default"),
        ("  ", " ", "ini", "ini", "ini probe"),  # blank counts as not given
    ],
)
def test_option_beats_env_var_beats_ini_beats_default(
    probe, monkeypatch, option, env, ini, expected, source
):
    if env is not None:
        monkeypatch.setenv("PROBE", env)
    config = StandInConfig(options={"probe": option}, ini={"probe": ini or ""})
    assert settings_module._value(config, probe) == (expected, source)  # type: ignore[arg-type]


def test_the_redis_url_option_beats_the_env_var(monkeypatch):
    monkeypatch.setenv("DUALCACHE_REDIS_URL", "http://from-the-environment")
    error = usage_error(options={"dualcache_redis_url": "http://from-the-command-line"})
    assert error.startswith("--dualcache-redis-url: 'http://from-the-command-line'")


def test_the_factory_option_beats_the_ini_list():
    error = usage_error(
        options={"dualcache": True, "dualcache_factory": ["cli-spec"]},
        ini={"dualcache_factory": ["ini-spec"]},
    )
    assert error.startswith("--dualcache-factory: 'cli-spec' is not a factory spec")


def test_hook_factories_join_the_ini_ones():
    def make_dal(env: object) -> object:
        return env

    settings = resolve(
        options={"dualcache": True},
        ini={"dualcache_factory": ["pytest_dualcache.abstraction:CacheAbstraction"]},
        hooked=[{"hooked": make_dal}],
    )
    assert list(settings.factories) == ["pytest_dualcache.abstraction:CacheAbstraction", "hooked"]
    assert settings.dal_modules == ("pytest_dualcache.abstraction", __name__)


def test_ini_beats_the_default():
    settings = resolve(ini={"dualcache_kv_plan": " paid ", "dualcache_kv_binding": "KV"})
    assert settings.kv_plan == "paid"
    assert settings.names == BindingNames(kv="KV")


def test_unset_everything_gives_the_defaults(monkeypatch):
    monkeypatch.delenv("DUALCACHE_REDIS_URL", raising=False)
    assert resolve() == DualCacheSettings()


# --- each default is written once -------------------------------------------------------------


def test_the_dataclass_defaults_are_the_vocabulary_defaults():
    defaults = DualCacheSettings()
    as_given = ["enabled", "kv_plan", "do_engine", "examples", "redis_url", "dal_modules"]
    for name in [*as_given, "kv_allow"]:
        assert getattr(defaults, name) == SETTINGS[name].default, name
    assert defaults.kv_budget_spec == SETTINGS["kv_budget"].default
    names = BindingNames()
    assert (names.do, names.kv, names.flag) == tuple(
        SETTINGS[key].default for key in ("do_binding", "kv_binding", "flag_var")
    )


def test_the_public_option_and_ini_names_are_kept():
    options = {s.option for s in SETTINGS.values() if s.option}
    inis = {s.ini for s in SETTINGS.values() if s.ini}
    assert options == {
        "--dualcache",
        "--dualcache-factory",
        "--dualcache-suite",
        "--dualcache-examples",
        "--dualcache-redis-url",
        "--dualcache-report",
        "--dualcache-html",
        "--dualcache-md",
        "--dualcache-shard",
        "--dualcache-save-baseline",
        "--dualcache-baseline",
        "--dualcache-max-growth",
        "--dualcache-max-cost-growth",
    }
    assert inis == {
        "dualcache_factory",
        "dualcache_waive",
        "dualcache_kv_budget",
        "dualcache_slo",
        "dualcache_latency",
        "dualcache_dal_modules",
        "dualcache_kv_allow",
        "dualcache_do_binding",
        "dualcache_kv_binding",
        "dualcache_flag_var",
        "dualcache_kv_plan",
        "dualcache_do_engine",
        "dualcache_account_id",
        "dualcache_kv_namespace_ids",
        "dualcache_wrangler_config",
        "dualcache_wrangler_env",
        "dualcache_workers_shim",
    }


def test_help_states_the_default_once_from_the_vocabulary():
    assert SETTINGS["kv_plan"].help_text().endswith("(default: free)")
    assert SETTINGS["examples"].help_text().endswith("(default: 25)")
    assert SETTINGS["redis_url"].help_text().endswith("(default: $DUALCACHE_REDIS_URL)")
    assert "default" not in SETTINGS["report_path"].help_text()


# --- each validator names its source ----------------------------------------------------------


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        (
            {"dualcache_kv_plan": "gold"},
            "ini dualcache_kv_plan: 'gold' is not one of free, paid, unlimited",
        ),
        (
            {"dualcache_do_engine": "mongo"},
            "ini dualcache_do_engine: 'mongo' is not one of memory, redis",
        ),
        (
            {"dualcache_flag_var": "not-a-name"},
            "ini dualcache_flag_var: 'not-a-name' is not a valid binding name (it must be a "
            "Python identifier, since bindings are read as attributes of env)",
        ),
        (
            {"dualcache_latency": "fast"},
            "ini dualcache_latency: expected off, seed or a PATH.toml, got 'fast'",
        ),
        (
            {"dualcache_kv_binding": "CACHE_DO"},
            "ini dualcache_do_binding, dualcache_kv_binding and dualcache_flag_var must be "
            "three different names, got CACHE_DO, CACHE_DO, FEATURE_FLAG_DO_CACHE",
        ),
    ],
)
def test_a_bad_ini_value_names_its_key(ini, message):
    assert usage_error(ini=ini) == message


def test_a_bad_redis_url_from_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("DUALCACHE_REDIS_URL", "http://nowhere")
    assert resolve().redis_url == "http://nowhere"  # not checked without --dualcache
    assert usage_error(options={"dualcache": True}) == (
        "$DUALCACHE_REDIS_URL: 'http://nowhere' is not a redis://, rediss:// or unix:// URL"
    )


def test_dualcache_examples_is_checked_by_its_option_parser():
    assert positive_int("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive integer, got '0'"):
        positive_int("0")
    assert SETTINGS["examples"].parse is positive_int


@pytest.mark.parametrize("option", ["dualcache_report", "dualcache_max_growth"])
def test_gate_options_without_dualcache_name_the_option(option):
    flag = "--" + option.replace("_", "-")
    assert usage_error(options={option: "x"}) == f"{flag} only work together with --dualcache"


DUALCACHE = {"dualcache": True}


@pytest.mark.parametrize(
    ("options", "ini", "message"),
    [
        ({}, {"dualcache_factory": ["nocolon"]}, "ini dualcache_factory: 'nocolon' is not a"),
        (
            {},
            {"dualcache_kv_budget": "writes=lots"},
            "ini dualcache_kv_budget: cannot read 'writes=lots'",
        ),
        (
            {"dualcache_max_growth": "lots"},
            {},
            "--dualcache-max-growth: expected a count (e.g. 5) or a percentage",
        ),
    ],
)
def test_a_bad_session_setting_names_its_source(options, ini, message):
    assert usage_error(options={**DUALCACHE, **options}, ini=ini).startswith(message)


def test_a_bad_baseline_names_its_option(tmp_path: Path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"version": 99}))
    error = usage_error(options={**DUALCACHE, "dualcache_baseline": str(baseline)})
    assert error.startswith("--dualcache-baseline: ")


def test_an_unwritable_report_names_its_option(tmp_path: Path):
    error = usage_error(options={**DUALCACHE, "dualcache_report": str(tmp_path)})
    assert error == f"--dualcache-report: cannot write {tmp_path}: it is a directory"


def test_session_settings_are_resolved_under_dualcache(tmp_path: Path):
    settings = resolve(
        options={
            **DUALCACHE,
            "dualcache_report": str(tmp_path / "r.json"),
            "dualcache_max_growth": "10%",
        },
        ini={"dualcache_kv_budget": "writes=5/day", "dualcache_kv_allow": ["tests/*::*"]},
    )
    assert settings.report_path == tmp_path / "r.json"
    assert str(settings.max_growth) == "10%"
    assert settings.kv_budget is not None
    assert settings.kv_allow == ("tests/*::*",)
    assert list(settings.factories) == ["reference"]


# --- the latency model (dualcache_latency) -----------------------------------------------------


def test_the_latency_model_is_off_by_default_and_resolved_without_dualcache(tmp_path: Path):
    from pytest_dualcache.latency import SEED_TABLE

    assert resolve().latency is None
    assert resolve(ini={"dualcache_latency": " off "}).latency is None
    seed = resolve(ini={"dualcache_latency": "seed"}).latency
    assert seed is not None and seed.table is SEED_TABLE and seed.source == "seed"
    toml = tmp_path / "latency.toml"
    toml.write_text("seed = 3\n[kv]\nput = 20\n", encoding="utf-8")
    model = resolve(ini={"dualcache_latency": str(toml)}).latency
    assert model is not None and (model.seed, model.source) == (3, str(toml))
    assert model.latency_us("kv", "put") == 20_000


def test_an_unreadable_or_invalid_latency_file_is_a_usage_error_naming_the_key(tmp_path: Path):
    missing = tmp_path / "nope.toml"
    assert usage_error(ini={"dualcache_latency": str(missing)}).startswith(
        f"ini dualcache_latency: cannot read {missing}: "
    )
    broken = tmp_path / "broken.toml"
    broken.write_text("[kv]\nput = 'slow'\n", encoding="utf-8")
    assert usage_error(ini={"dualcache_latency": str(broken)}) == (
        f"ini dualcache_latency: {broken}: [kv].put: expected milliseconds (a number >= 0), "
        "got 'slow'"
    )


def test_a_p95_gate_needs_the_latency_model():
    gate = {"dualcache_slo": "p95_ms<=5"}
    assert usage_error(options=DUALCACHE, ini=gate).startswith(
        "ini dualcache_slo: p95_ms needs the simulated latency model, which is off"
    )
    settings = resolve(options=DUALCACHE, ini={**gate, "dualcache_latency": "seed"})
    assert settings.slo is not None and str(settings.slo) == "p95_ms <= 5"
