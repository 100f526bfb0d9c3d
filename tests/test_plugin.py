"""The plugin as a user sees it: option, ini keys, fixtures and header, driven through pytester."""

from __future__ import annotations

import ast

# pytester restores sys.modules after each in-process run: preloading what hypothesis's
# terminal summary imports keeps every run from re-importing hypothesis (about 1 s each).
import hypothesis.internal.observability  # noqa: F401
import pytest

ALL_FIXTURES_TEST = """
    def test_all_fixtures(dualcache_clock, dualcache_env, kv_namespace, do_cache,
                          dualcache_flag, dualcache_workers_env):
        assert kv_namespace is dualcache_env.kv
        assert do_cache is dualcache_env.do
        assert dualcache_flag is dualcache_env.flag
        assert dualcache_workers_env.dualcache_env is dualcache_env
        assert dualcache_env.clock is dualcache_clock
"""


# --- registration and help ------------------------------------------------------------------


def test_plugin_is_registered_under_the_name_dualcache(pytester):
    pytester.makepyfile(
        """
        def test_registered(pytestconfig):
            plugin = pytestconfig.pluginmanager.get_plugin("dualcache")
            assert plugin is not None
            assert plugin.__name__ == "pytest_dualcache.plugin"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_trace_config_lists_the_dualcache_plugin(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--trace-config")
    result.stdout.fnmatch_lines(["*dualcache*: *pytest_dualcache*plugin.py"])
    assert result.ret == 0


def test_help_shows_the_dualcache_option(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*two-tier cache*", "*--dualcache*run the dualcache*"])


def test_help_shows_every_ini_key(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*dualcache_do_binding (string)*",
            "*dualcache_kv_binding (string)*",
            "*dualcache_flag_var (string)*",
            "*dualcache_kv_plan (string)*",
            "*dualcache_do_engine (string)*",
        ],
        consecutive=False,
    )


# --- fixtures -------------------------------------------------------------------------------


def test_all_six_fixtures_work_without_the_dualcache_flag(pytester):
    pytester.makepyfile(ALL_FIXTURES_TEST)
    pytester.runpytest().assert_outcomes(passed=1)


def test_all_six_fixtures_work_with_the_dualcache_flag(pytester):
    pytester.makepyfile(ALL_FIXTURES_TEST)
    result = pytester.runpytest("--dualcache", "-k", "not TestDualCacheContract")
    result.assert_outcomes(passed=1)


def test_fixture_env_has_default_bindings_and_flag(pytester):
    pytester.makepyfile(
        """
        from pytest_dualcache import DualCacheEnv, is_do_cache_enabled

        def test_defaults(dualcache_env, dualcache_workers_env):
            assert isinstance(dualcache_env, DualCacheEnv)
            assert dualcache_env.CACHE_KV is dualcache_env.kv
            assert dualcache_env.CACHE_DO is dualcache_env.do
            assert dualcache_env.FEATURE_FLAG_DO_CACHE == "true"
            assert dualcache_env.kv.plan == "free"
            assert is_do_cache_enabled(dualcache_workers_env)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_each_test_gets_a_fresh_env(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("run", [1, 2])
        def test_write_same_key(kv_namespace, do_cache, run):
            assert kv_namespace.get("shared") is None
            assert do_cache.get("shared") is None
            kv_namespace.put("shared", str(run))
            do_cache.set("shared", run, ttl=60)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_each_test_gets_a_fresh_clock(pytester):
    pytester.makepyfile(
        """
        import pytest
        from pytest_dualcache.clock import DEFAULT_START

        @pytest.mark.parametrize("run", [1, 2])
        def test_advance(dualcache_clock, run):
            assert dualcache_clock.now() == DEFAULT_START
            dualcache_clock.advance(3600)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_dualcache_clock_is_the_env_clock(pytester):
    pytester.makepyfile(
        """
        def test_clock(dualcache_clock, dualcache_env, kv_namespace, do_cache):
            assert dualcache_env.clock is dualcache_clock
            kv_namespace.put("k", "v", expiration_ttl=60)
            do_cache.set("k", "v", ttl=60)
            dualcache_clock.advance(60)
            assert kv_namespace.get("k") is None
            assert do_cache.get("k") is None
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_dualcache_flag_fixture_controls_the_env_var(pytester):
    pytester.makepyfile(
        """
        from pytest_dualcache import is_do_cache_enabled

        def test_flag(dualcache_flag, dualcache_env):
            dualcache_flag.disable()
            assert dualcache_env.FEATURE_FLAG_DO_CACHE == "false"
            assert not is_do_cache_enabled(dualcache_env)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_env_is_closed_after_the_test(pytester):
    pytester.makepyfile(
        """
        import pytest

        seen = []

        def test_write(dualcache_env):
            dualcache_env.do.set("k", "v", ttl=60)
            seen.append(dualcache_env)

        def test_closed():
            (env,) = seen
            assert len(env.do.engine) == 0
        """
    )
    # The order is the scenario: test_closed looks at what test_write left behind.
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


# --- ini keys -------------------------------------------------------------------------------


def test_ini_renames_the_bindings_and_the_flag_var(pytester):
    pytester.makeini(
        """
        [pytest]
        dualcache_kv_binding = MARKET_ANALYSIS_CACHE
        dualcache_do_binding = MARKET_DO
        dualcache_flag_var = USE_DO_CACHE
        """
    )
    pytester.makepyfile(
        """
        import pytest
        from pytest_dualcache import is_do_cache_enabled

        def test_names(dualcache_env, dualcache_workers_env):
            assert dualcache_env.MARKET_ANALYSIS_CACHE is dualcache_env.kv
            assert dualcache_env.MARKET_DO is dualcache_env.do
            assert dualcache_env.USE_DO_CACHE == "true"
            assert dualcache_workers_env.USE_DO_CACHE == "true"
            assert is_do_cache_enabled(dualcache_workers_env)
            with pytest.raises(AttributeError):
                dualcache_env.CACHE_KV
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_pyproject_ini_options_are_read(pytester):
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        dualcache_kv_binding = "MARKET_ANALYSIS_CACHE"
        """
    )
    pytester.makepyfile(
        """
        def test_names(dualcache_env):
            assert dualcache_env.MARKET_ANALYSIS_CACHE is dualcache_env.kv
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_ini_values_are_stripped(pytester):
    pytester.makeini(
        """
        [pytest]
        dualcache_kv_plan =   paid
        """
    )
    pytester.makepyfile("def test_plan(kv_namespace): assert kv_namespace.plan == 'paid'")
    pytester.runpytest().assert_outcomes(passed=1)


WRITE_1001_KEYS = """
    def test_writes(kv_namespace):
        for i in range(1001):
            kv_namespace.put(f"key-{i}", "v")
"""


def test_paid_plan_lifts_the_daily_write_quota(pytester):
    pytester.makeini("[pytest]\ndualcache_kv_plan = paid\n")
    pytester.makepyfile(WRITE_1001_KEYS)
    pytester.runpytest().assert_outcomes(passed=1)


def test_free_plan_fails_the_1001st_write_of_the_day(pytester):
    pytester.makeini("[pytest]\ndualcache_kv_plan = free\n")
    pytester.makepyfile(WRITE_1001_KEYS)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*KVQuotaError: KV put() limit exceeded for the day.*"])


def test_override_ini_beats_the_ini_file(pytester):
    pytester.makeini("[pytest]\ndualcache_kv_plan = free\n")
    pytester.makepyfile("def test_plan(kv_namespace): assert kv_namespace.plan == 'unlimited'")
    pytester.runpytest("-o", "dualcache_kv_plan=unlimited").assert_outcomes(passed=1)


def test_bad_kv_plan_errors_naming_the_ini_key(pytester):
    pytester.makeini("[pytest]\ndualcache_kv_plan = gold\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: ini dualcache_kv_plan: 'gold' is not one of free, paid, unlimited"]
    )


def test_bad_do_engine_errors_naming_the_ini_key(pytester):
    pytester.makeini("[pytest]\ndualcache_do_engine = mongo\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: ini dualcache_do_engine: 'mongo' is not one of memory, redis"]
    )


@pytest.mark.parametrize(
    "key", ["dualcache_kv_binding", "dualcache_do_binding", "dualcache_flag_var"]
)
def test_bad_binding_name_errors_naming_the_ini_key(pytester, key):
    pytester.makeini(f"[pytest]\n{key} = not-an-identifier\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: ini {key}: 'not-an-identifier' is not a valid binding name*"]
    )


def test_duplicate_binding_names_error_naming_the_ini_keys(pytester):
    pytester.makeini(
        """
        [pytest]
        dualcache_kv_binding = CACHE
        dualcache_do_binding = CACHE
        """
    )
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: ini dualcache_do_binding, dualcache_kv_binding and dualcache_flag_var must "
            "be three different names, got CACHE, CACHE, FEATURE_FLAG_DO_CACHE"
        ]
    )


def test_flag_var_equal_to_a_binding_name_is_a_duplicate(pytester):
    pytester.makeini("[pytest]\ndualcache_flag_var = CACHE_KV\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini dualcache_do_binding, *three different names*"])


def test_redis_do_engine_works(pytester):
    pytester.makeini("[pytest]\ndualcache_do_engine = redis\n")
    pytester.makepyfile(
        """
        from pytest_dualcache import RedisEngine

        def test_redis(do_cache, dualcache_clock):
            assert isinstance(do_cache.engine, RedisEngine)
            do_cache.set("quote", {"price": 189.5}, ttl=60)
            assert do_cache.get("quote") == {"price": 189.5}
            dualcache_clock.advance(60)
            assert do_cache.get("quote") is None
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


# --- report header --------------------------------------------------------------------------


def test_report_header_appears_with_dualcache(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--dualcache", "-k", "test_nothing")
    result.stdout.fnmatch_lines(
        [
            "dualcache: KV plan free, DO engine memory, bindings CACHE_DO/CACHE_KV, "
            "flag FEATURE_FLAG_DO_CACHE; contract suite against: reference"
        ]
    )
    result.assert_outcomes(passed=1)


def test_report_header_shows_ini_settings(pytester):
    pytester.makeini(
        """
        [pytest]
        dualcache_kv_plan = paid
        dualcache_do_engine = redis
        dualcache_kv_binding = MARKET_ANALYSIS_CACHE
        """
    )
    pytester.makepyfile(test_nothing="def test_nothing(): pass")
    result = pytester.runpytest("--dualcache", "test_nothing.py")  # a file: no suite added
    result.stdout.fnmatch_lines(
        ["dualcache: KV plan paid, DO engine redis, bindings CACHE_DO/MARKET_ANALYSIS_CACHE, *"]
    )


def test_report_header_is_absent_without_dualcache(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    result.stdout.no_fnmatch_line("dualcache: KV plan*")
    result.assert_outcomes(passed=1)


# --- cost and opting out --------------------------------------------------------------------


def test_session_without_the_fixtures_passes(pytester):
    pytester.makepyfile("def test_plain(): assert 1 + 1 == 2")
    pytester.runpytest().assert_outcomes(passed=1)


def test_session_without_the_fixtures_imports_no_backend(pytester):
    pytester.makepyfile(
        """
        import sys

        def test_plain():
            loaded = sorted(m for m in sys.modules if m.startswith("pytest_dualcache"))
            print("DUALCACHE_MODULES", loaded)
            print("FAKEREDIS_LOADED", "fakeredis" in sys.modules)
        """
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1)
    (modules_line,) = (line for line in result.outlines if "DUALCACHE_MODULES" in line)
    loaded = ast.literal_eval(modules_line.split("DUALCACHE_MODULES ", 1)[1])
    assert loaded == [
        "pytest_dualcache",
        "pytest_dualcache.hookspecs",
        "pytest_dualcache.plugin",
        "pytest_dualcache.recorder",  # standard library only: each session records on its own
        "pytest_dualcache.settings",
        "pytest_dualcache.vocabulary",
    ]
    assert "FAKEREDIS_LOADED False" in result.outlines


def test_no_dualcache_disables_the_plugin(pytester):
    pytester.makepyfile(
        """
        def test_plugin_off(pytestconfig):
            assert not pytestconfig.pluginmanager.has_plugin("dualcache")

        def test_uses_env(dualcache_env):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:dualcache")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'dualcache_env' not found*"])


def test_no_dualcache_ignores_bad_ini_values(pytester):
    pytester.makeini("[pytest]\ndualcache_kv_plan = gold\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-p", "no:dualcache")
    result.assert_outcomes(passed=1)


# --- works with ordinary pytest options -----------------------------------------------------


def test_works_with_exitfirst(pytester):
    pytester.makepyfile(ALL_FIXTURES_TEST)
    pytester.runpytest("-x").assert_outcomes(passed=1)


def test_works_with_keyword_selection(pytester):
    pytester.makepyfile(
        """
        def test_kv(kv_namespace):
            kv_namespace.put("k", "v")
            assert kv_namespace.get("k") == "v"

        def test_do(do_cache):
            raise AssertionError("deselected by -k")
        """
    )
    result = pytester.runpytest("-k", "kv")
    result.assert_outcomes(passed=1, deselected=1)


def test_works_with_last_failed(pytester):
    pytester.makepyfile(
        test_lf="""
        def test_kv(kv_namespace):
            kv_namespace.put("k", "v")

        def test_do(do_cache):
            assert do_cache.get("k") == "v"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1, failed=1)
    pytester.makepyfile(
        test_lf="""
        def test_kv(kv_namespace):
            kv_namespace.put("k", "v")

        def test_do(do_cache):
            do_cache.set("k", "v", ttl=60)
            assert do_cache.get("k") == "v"
        """
    )
    result = pytester.runpytest("--lf")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*rerun previous 1 failure*"])
