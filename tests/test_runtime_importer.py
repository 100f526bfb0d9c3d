"""The import hook: ``workers``, ``pyodide``, ``pyodide.ffi`` and ``js``, only when asked and
only when nothing else on the path provides them."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import textwrap

import pytest

from pytest_dualcache.runtime import entrypoints, ffi, http, importer

SHIMS = ("workers", "pyodide", "pyodide.ffi", "js")


@pytest.fixture(autouse=True)
def no_hook_left_behind():
    """Every test starts and ends without the hook or any module named like a shim."""
    assert not importer.is_installed()
    yield
    importer.uninstall()
    for name in SHIMS:
        sys.modules.pop(name, None)


@pytest.fixture
def hook():
    importer.install()


def test_without_the_hook_there_is_no_workers_module():
    if importlib.util.find_spec("workers") is not None:  # pragma: no cover (a real one)
        pytest.skip("a module named workers is installed here")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("workers")


def test_install_appends_the_finder_last_and_imports_nothing():
    importer.install()
    assert isinstance(sys.meta_path[-1], importer.WorkersShimFinder)
    assert [name for name in SHIMS if name in sys.modules] == []


def test_install_and_uninstall_are_idempotent():
    importer.install()
    importer.install()
    assert sum(isinstance(f, importer.WorkersShimFinder) for f in sys.meta_path) == 1
    importer.uninstall()
    importer.uninstall()
    assert not importer.is_installed()


def test_workers_module_holds_the_runtime_classes(hook):
    import workers

    assert workers.Response is http.Response
    assert workers.Request is http.Request
    assert workers.FetchResponse is http.FetchResponse
    assert workers.fetch is http.fetch
    assert workers.WorkerEntrypoint is entrypoints.WorkerEntrypoint
    assert workers.DurableObject is entrypoints.DurableObject
    assert sorted(workers.__all__) == sorted(importer.SHIM_MODULES["workers"])
    assert getattr(workers, importer.MARKER) is True


def test_pyodide_its_ffi_and_js(hook):
    import js
    import pyodide
    from pyodide.ffi import JsException, JsProxy, to_js

    assert pyodide.__version__ == ffi.PYODIDE_VERSION
    assert to_js is ffi.to_js and JsProxy is ffi.JsProxy and JsException is ffi.JsException
    assert js.Object is ffi.Object and js.JSON is ffi.JSON and js.Date is ffi.Date


def test_a_users_own_workers_module_on_the_path_wins(hook, tmp_path, monkeypatch):
    (tmp_path / "workers.py").write_text("ORIGIN = 'the team'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import workers

    assert workers.ORIGIN == "the team"
    assert not hasattr(workers, importer.MARKER)


def test_a_users_own_pyodide_keeps_its_submodules(hook, tmp_path, monkeypatch):
    (tmp_path / "pyodide").mkdir()
    (tmp_path / "pyodide" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pyodide.ffi")


def test_uninstall_forgets_the_modules_the_hook_made(hook):
    importlib.import_module("pyodide.ffi")
    importer.uninstall()
    assert [name for name in SHIMS if name in sys.modules] == []


def test_uninstall_leaves_a_users_module_alone(hook, tmp_path, monkeypatch):
    (tmp_path / "js.py").write_text("MINE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("js")
    importer.uninstall()
    assert sys.modules["js"].MINE is True


def test_workers_shim_context_restores_the_previous_state():
    with importer.workers_shim():
        assert importer.is_installed()
        with importer.workers_shim():
            pass
        assert importer.is_installed()
    assert not importer.is_installed()


def test_loading_and_installing_the_hook_imports_no_runtime_module():
    script = textwrap.dedent(
        """
        import sys
        from pytest_dualcache.runtime import importer
        importer.install()
        loaded = [m for m in sys.modules if m.startswith("pytest_dualcache.runtime.")]
        shims = [m for m in ("workers", "pyodide", "js") if m in sys.modules]
        print(loaded, shims)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "['pytest_dualcache.runtime.importer'] []"
