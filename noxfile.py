"""The test matrix: the plugin's tests and the main job on each Python and pytest we declare.

    nox                        every session below
    nox -s tests               Python 3.11, 3.12 and 3.13, each one this machine has
    nox -s pytest_versions     Python 3.11 on the oldest pytest we declare and the newest
    nox -s mutants             mutation testing of the reference against the contract suite

A Python this machine lacks is skipped with a message (``--error-on-missing-interpreters``
makes it a failure). pyenv's builds count as present even when pyenv has not selected them.
"""

from __future__ import annotations

import glob
import os

import nox

PYTHONS = ["3.11", "3.12", "3.13"]
#: Keep in step with ``pytest>=`` in pyproject.toml's dependencies.
OLDEST_PYTEST = "8.0"
PYTEST_VERSIONS = {"oldest": f"pytest=={OLDEST_PYTEST}.*", "newest": "pytest"}
#: The README main job: each example project under --dualcache.
MAIN_JOB_PROJECTS = ("examples/market_dal", "examples/workers_app")

nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["tests", "pytest_versions"]


def _put_pyenv_builds_on_path() -> None:
    """pyenv's shims refuse versions it has not selected; its builds' own bin dirs do not."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    builds = sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin")), reverse=True)
    os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *builds])


_put_pyenv_builds_on_path()


def _run_tests_and_main_job(session: nox.Session) -> None:
    session.run("python", "-m", "pytest", "--version")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2")
    for project in MAIN_JOB_PROJECTS:
        session.run(
            "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--dualcache", project
        )


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The plugin's tests (two workers) and the main job, on the newest pytest."""
    session.install("-e", ".[test]")
    _run_tests_and_main_job(session)


@nox.session(python="3.11")
@nox.parametrize("pytest_version", list(PYTEST_VERSIONS))
def pytest_versions(session: nox.Session, pytest_version: str) -> None:
    """The same on the oldest pytest we declare and on the newest."""
    session.install("-e", ".[test]", PYTEST_VERSIONS[pytest_version])
    _run_tests_and_main_job(session)


@nox.session(python="3.11", default=False)
def mutants(session: nox.Session) -> None:
    """mutmut over the reference CacheAbstraction's modules, killed by the contract suite.

    Its configuration is ``[tool.mutmut]`` in pyproject.toml; about 7 minutes on two cores
    (1.7 mutants a second). ``nox -s mutants -- 'pytest_dualcache.kv_entries*'`` runs a subset.
    """
    session.install("-e", ".", "mutmut>=3.8,<4")
    session.run("mutmut", "run", "--max-children", str(os.cpu_count() or 2), *session.posargs)
    session.run("mutmut", "results")
