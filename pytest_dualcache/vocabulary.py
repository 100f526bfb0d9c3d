"""The vocabulary: each dualcache option and ini key, its default and its help, written once.

``settings.py`` resolves them (command line > environment variable > ini > default) into
``DualCacheSettings``; ``plugin.py`` registers them with pytest. The option and ini names
are public API.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

KV_PLAN_CHOICES = ("free", "paid", "unlimited")
DO_ENGINE_CHOICES = ("memory", "redis")
SHIM_CHOICES = ("on", "off")
REDIS_URL_VARIABLE = "DUALCACHE_REDIS_URL"


def positive_int(text: str) -> int:
    """``text`` as a positive integer; argparse's type for ``--dualcache-examples``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting: its public names, default and help, shared by options, ini and resolver."""

    help: str
    default: Any = None
    option: str | None = None
    env: str | None = None
    ini: str | None = None
    ini_type: Literal["string", "linelist"] = "string"
    #: argparse details of the option: its action ("store_true", "append") and metavar.
    action: str | None = None
    metavar: str | None = None
    #: argparse type of the option: converts its text, or says why it cannot.
    parse: Callable[[str], Any] | None = None

    @property
    def dest(self) -> str:
        """The option's attribute name for ``config.getoption``."""
        assert self.option is not None
        return self.option.lstrip("-").replace("-", "_")

    def help_text(self) -> str:
        """The help line, ending with what applies when the setting is not given."""
        fallbacks = [f"${self.env}"] if self.env else []
        if self.default not in (None, "", (), False):
            fallbacks.append(str(self.default))
        return f"{self.help} (default: {', else '.join(fallbacks)})" if fallbacks else self.help


#: The vocabulary, by ``DualCacheSettings`` field. Option and ini names are public API.
SETTINGS: dict[str, Setting] = {
    "enabled": Setting(
        "run the dualcache contract suite against the registered DAL factories (the fixtures "
        "work without it)",
        default=False,
        option="--dualcache",
        action="store_true",
    ),
    "factories": Setting(
        "DAL factories make_dal(env) for the contract suite, one [NAME=]MODULE:CALLABLE each "
        "(the option is repeatable and replaces the ini list)",
        default=(),
        option="--dualcache-factory",
        ini="dualcache_factory",
        ini_type="linelist",
        action="append",
        metavar="[NAME=]MODULE:CALLABLE",
    ),
    "suite": Setting(
        "add the contract suite even when the command line names only files or node ids "
        "(without a path, or with a directory, it is added anyway)",
        default=False,
        option="--dualcache-suite",
        action="store_true",
    ),
    "waive": Setting(
        "contract clauses a factory knowingly does not meet, one NAME:CLAUSE=REASON per line: "
        "they run as non-strict xfail with the reason",
        default=(),
        ini="dualcache_waive",
        ini_type="linelist",
    ),
    "examples": Setting(
        "hypothesis examples per property and state-machine test",
        default=25,
        option="--dualcache-examples",
        metavar="N",
        parse=positive_int,
    ),
    "redis_url": Setting(
        "run the DO cache's redis engine on this server instead of an in-process fakeredis; "
        "each env gets its own key prefix and cleans up",
        option="--dualcache-redis-url",
        env=REDIS_URL_VARIABLE,
        metavar="URL",
    ),
    "report_path": Setting(
        "write the KV report (per test and totals) as JSON to PATH",
        option="--dualcache-report",
        metavar="PATH",
    ),
    "html_path": Setting(
        "write the report as one self-contained HTML page to PATH",
        option="--dualcache-html",
        metavar="PATH",
    ),
    "md_path": Setting(
        "write the report's Markdown summary (gates, baseline, bill, top call sites) to PATH; "
        "under --dualcache it is also appended to $GITHUB_STEP_SUMMARY when that is set",
        option="--dualcache-md",
        metavar="PATH",
    ),
    "shard": Setting(
        "mark the JSON report as shard I of N of a split suite, for python -m pytest_dualcache "
        "merge",
        option="--dualcache-shard",
        metavar="I/N",
    ),
    "save_baseline": Setting(
        "save per-test and total KV writes as a baseline to commit on the main branch",
        option="--dualcache-save-baseline",
        metavar="PATH",
    ),
    "baseline": Setting(
        "fail the session when KV writes grew beyond the baseline at PATH",
        option="--dualcache-baseline",
        metavar="PATH",
    ),
    "max_growth": Setting(
        "KV writes a test (or the total) may grow by over the baseline: a count or a percentage",
        default="0",
        option="--dualcache-max-growth",
        metavar="N|P%",
    ),
    "max_cost_growth": Setting(
        "fail the session when the projected month of the declared workloads got dearer than "
        "the baseline's by more than this: dollars (4.10) or a percentage (10%); needs "
        "--dualcache-baseline",
        option="--dualcache-max-cost-growth",
        metavar="AMOUNT|P%",
    ),
    "kv_budget": Setting(
        "default KV budget of every test under --dualcache, e.g. writes=50/day",
        default="",
        ini="dualcache_kv_budget",
    ),
    "slo": Setting(
        "SLO gates over your tests under --dualcache, e.g. kv_errors=0", ini="dualcache_slo"
    ),
    "latency": Setting(
        "simulated latency of every KV and DO cache operation of your tests' dualcache_env: "
        "off, seed (the seed's table: KV writes 50 ms, reads 10-50 ms, the DO under 1 ms) or "
        "a PATH.toml relative to the rootdir; never in the contract suite",
        default="off",
        ini="dualcache_latency",
    ),
    "dal_modules": Setting(
        "modules (and their submodules) whose KV writes count as via the cache layer",
        default=(),
        ini="dualcache_dal_modules",
        ini_type="linelist",
    ),
    "kv_allow": Setting(
        "callers allowed to write KV directly: globs on path::function, one per line",
        default=(),
        ini="dualcache_kv_allow",
        ini_type="linelist",
    ),
    "do_binding": Setting(
        "binding name of the Durable Object cache", default="CACHE_DO", ini="dualcache_do_binding"
    ),
    "kv_binding": Setting(
        "binding name of the Workers KV namespace", default="CACHE_KV", ini="dualcache_kv_binding"
    ),
    "flag_var": Setting(
        'string var that routes cache traffic to the DO when it equals "true"',
        default="FEATURE_FLAG_DO_CACHE",
        ini="dualcache_flag_var",
    ),
    "kv_plan": Setting(
        "KV limits to enforce: free, paid or unlimited", default="free", ini="dualcache_kv_plan"
    ),
    "do_engine": Setting(
        "storage engine behind the DO cache: memory or redis",
        default="memory",
        ini="dualcache_do_engine",
    ),
    # Read by the cloudflare_api fixture (rest/fixture.py), through ``given``.
    "rest_account_id": Setting(
        "account id of the cloudflare_api fixture's emulated REST API (a fixed test id if unset)",
        ini="dualcache_account_id",
    ),
    "kv_namespace_ids": Setting(
        "KV namespace id of each binding for the cloudflare_api fixture, one BINDING=ID per line",
        default=(),
        ini="dualcache_kv_namespace_ids",
        ini_type="linelist",
    ),
    "wrangler_config": Setting(
        "the Worker's wrangler config (bindings, vars, Durable Object classes), relative to the "
        "rootdir (default: the first of wrangler.toml, wrangler.jsonc, wrangler.json there)",
        ini="dualcache_wrangler_config",
    ),
    "wrangler_env": Setting(
        "the [env.NAME] section of the wrangler config to use (default: the top level)",
        ini="dualcache_wrangler_env",
    ),
    "workers_shim": Setting(
        "on: the workers, pyodide and js modules of Python Workers are importable; off: never "
        "(default: on when a wrangler config is found)",
        ini="dualcache_workers_shim",
    ),
}


#: Each setting's default, by name (written once, in ``SETTINGS``).
DEFAULTS: Mapping[str, Any] = {name: setting.default for name, setting in SETTINGS.items()}
