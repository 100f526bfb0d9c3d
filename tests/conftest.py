"""What the plugin's own tests share: how deep their hypothesis runs go, a broken DAL, and
copies of the example projects.

The README's test command stays quick; CI's ``--dualcache -n 2`` step runs the same tests with
``--hypothesis-profile=dualcache-deep``, and runs each example project's suite itself at the
suite's default depth (see ``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
# pytest sessions our tests start in a subprocess share this session's hypothesis storage, as
# in-process ones do: its caches (the constants of every local module, unicode tables) are
# made once, not by the first property test of each subprocess (about 1.5 s each).
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(ROOT / ".hypothesis"))
# Each of those subprocesses (pytester runs, the xdist workers they start, and this session's
# own workers) imports hypothesis's pytest plugin, whose modules pytest rewrites on import:
# about 0.9 s a process unless the rewritten bytecode is cached. A machine that sets
# PYTHONDONTWRITEBYTECODE (CI's does) forbids that cache, so our subprocesses keep their
# bytecode in .pytest_cache/pycache instead: nothing is written beside the sources or into
# site-packages, and the test command takes about half as long there.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(ROOT / ".pytest_cache" / "pycache"))

#: The model-based (stateful) tests take ``max_examples`` from the loaded profile.
settings.register_profile("dualcache-quick", max_examples=15)
settings.register_profile("dualcache-deep", max_examples=50)
settings.load_profile("dualcache-quick")  # --hypothesis-profile, when given, is loaded after


@pytest.fixture
def quick_suite_examples() -> str:
    """The option a test passes when it runs the contract suite: what a test checks of a
    run (a clause caught, an example wired right) shows at 5 examples as at the default 25."""
    return "--dualcache-examples=5"


#: A DAL that keeps KV values forever, the ttl ignored on the KV route: it breaks TTL-1.
IGNORES_TTL_ON_KV = """
    import json


    class IgnoresTTLOnKV:
        def __init__(self, env):
            self.env = env

        def put(self, key, value, ttl=3600):
            if self.env.flag.enabled:
                self.env.do.set(key, value, ttl=ttl)
            else:
                self.env.kv.put(key, json.dumps(value))

        def get(self, key):
            if self.env.flag.enabled:
                return self.env.do.get(key)
            text = self.env.kv.get(key)
            return None if text is None else json.loads(text)

        def delete(self, key):
            if self.env.flag.enabled:
                self.env.do.delete(key)
            else:
                self.env.kv.delete(key)
"""


@pytest.fixture
def broken_dal(pytester: pytest.Pytester) -> str:
    """Write ``dal_broken.py`` (class ``IgnoresTTLOnKV``, breaking TTL-1) where the run
    imports it; returns the factory spec ``dal_broken:IgnoresTTLOnKV``."""
    pytester.makepyfile(dal_broken=IGNORES_TTL_ON_KV)
    pytester.syspathinsert()
    return "dal_broken:IgnoresTTLOnKV"


#: The examples' folder; each example is a project a test copies and runs with pytester.
EXAMPLES = ROOT / "examples"


#: Set in a process that ``coverage run`` measures (``patch = ["subprocess"]``): the config
#: that makes its subprocesses measured too.
COVERAGE_SUBPROCESS_VARIABLES = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


@pytest.fixture
def copy_example(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., pytest.Pytester]:
    """``copy_example(name, *also_ignore)``: the example project ``examples/<name>`` (its ini
    file included) copied into the pytester directory, without caches left by earlier runs.

    The example's own runs in a subprocess are not measured by coverage: they are end-to-end
    checks of the examples, and every line and branch of ``pytest_dualcache`` they reach is
    reached by the other tests too (measured apart on 2026-12-01: the three example runs
    added 9 lines, which tests now reach directly), while measuring them cost 2.4 times
    their run time. In-process runs (``runpytest_inprocess``) are measured as usual.
    """
    for variable in COVERAGE_SUBPROCESS_VARIABLES:
        monkeypatch.delenv(variable, raising=False)

    def copy(name: str, *also_ignore: str) -> pytest.Pytester:
        ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".hypothesis", *also_ignore)
        shutil.copytree(EXAMPLES / name, pytester.path, dirs_exist_ok=True, ignore=ignore)
        return pytester

    return copy
