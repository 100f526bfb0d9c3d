"""Where dualcache leans on pytest behaviour that no public API offers, in one place.

Everything else in the plugin uses documented hooks and objects. These four do not:

1. ``suite_module``: the shipped suite must be imported by its package name,
   ``pytest_dualcache.contracts.test_registered``. Importing it by path (pytest's
   ``Module``) in an editable install, where the file sits in a ``contracts/`` folder
   mapped onto the package, gives a second copy named ``contracts.test_registered`` with
   its own fixtures and keys. No hook chooses the module object of a collector, so the
   public ``Module.obj`` setter is given the imported module before anything reads it;
   the getter's reading of the module's ``pytestmark`` is redone with ``add_marker``.
2. ``take_suite_node_ids``: a suite node id pasted from a report names no file under the
   rootdir, and pytest would stop with "file or directory not found". No hook sees the
   arguments before pytest resolves them, so ``pytest_configure`` takes those ids out of
   ``config.args`` (public, but not documented as writable); the plugin selects with them.
3. ``collect_report``: ``--lf`` skips every test file outside the paths of last run's
   failures, through a plugin it registers as ``lfplugin-collskip`` once it has collected a
   failure; the suite's file is never among those paths (its node id names no file under
   the rootdir), so its last failures would never rerun. The suite's module is collected
   through ``pytest_make_collect_report`` without that one plugin (``--lf`` still filters
   the suite's items, as it does everyone's, in ``pytest_collection_modifyitems``).
4. ``count_in_summary_line``: the final line ("148 passed, 1 KV gate failed") counts each
   key of ``TerminalReporter.stats`` (public), printing unknown keys in yellow. The reporter
   caches the keys it knows and refreshes them only after the last test; the cache is
   refreshed through ``_set_main_color`` (private), so a session that stopped early still
   prints ours.

``tests/test_pytest_versions.py`` covers each, and CI runs it on the oldest supported
pytest (8.0) as well as the newest.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

#: The name pytest's cacheprovider registers its --lf file-skipping plugin under.
LF_SKIP_PLUGIN = "lfplugin-collskip"


class SummaryCount:
    """One count of a dualcache key in the final summary line (not a test report)."""

    count_towards_summary = True


def count_in_summary_line(config: pytest.Config, key: str, count: int) -> None:
    """Make the final summary line say ``"{count} {key}"`` (nothing when count is 0)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or count <= 0:
        return
    reporter.stats.setdefault(key, []).extend(SummaryCount() for _ in range(count))
    refresh = getattr(reporter, "_set_main_color", None)
    if callable(refresh):
        refresh()


def suite_module(
    session: pytest.Session, path: Path, nodeid: str, module: ModuleType
) -> pytest.Module:
    """A ``pytest.Module`` collector for the already imported ``module`` (not re-imported)."""
    node = pytest.Module.from_parent(session, path=path, nodeid=nodeid)
    node.obj = module
    marks = getattr(module, "pytestmark", [])
    for mark in marks if isinstance(marks, list) else [marks]:
        node.add_marker(mark)
    return node


def collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    """``pytest_make_collect_report`` for ``collector``, untouched by ``--lf`` file skipping."""
    pluginmanager = collector.config.pluginmanager
    skipper = pluginmanager.get_plugin(LF_SKIP_PLUGIN)
    if skipper is None or not isinstance(collector, pytest.File):
        return collector.ihook.pytest_make_collect_report(collector=collector)
    hook = pluginmanager.subset_hook_caller("pytest_make_collect_report", [skipper])
    return hook(collector=collector)


def take_suite_node_ids(config: pytest.Config, suite_nodeid: str) -> list[str]:
    """Remove from ``config.args`` the suite node ids given there; return them as the suite's."""
    named = [(arg, _suite_node_id(config, arg, suite_nodeid)) for arg in config.args]
    chosen = [node for _, node in named if node is not None]
    if chosen:
        config.args[:] = [arg for arg, node in named if node is None]
    return chosen


def _suite_node_id(config: pytest.Config, arg: str, suite_nodeid: str) -> str | None:
    """The suite node id ``arg`` names, or None if it names none.

    Reports show the suite's node ids relative to the current directory, which is not always
    the rootdir the ids are relative to (``pytest -c sub/pytest.ini`` from above ``sub``):
    both forms name it.
    """
    path, separator, rest = arg.partition("::")
    if path != suite_nodeid:
        try:
            shown_from = config.invocation_params.dir
            path = (shown_from / path).resolve().relative_to(config.rootpath.resolve()).as_posix()
        except (ValueError, OSError, RuntimeError):  # outside the rootdir, or unresolvable
            return None
    return suite_nodeid + separator + rest if path == suite_nodeid else None
