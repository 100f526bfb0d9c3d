"""The contract suite against the reference, as mutmut runs it (``nox -s mutants``).

mutmut copies the mutated package into ``mutants/pytest_dualcache/``, where the suite's own
folder (``contracts/``, installed as ``pytest_dualcache.contracts``) is absent; mutmut copies
it beside the package (``also_copy``), and the package's search path takes that folder's
parent, so ``pytest_dualcache.contracts`` imports from the copy, as it does when installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest_dualcache

_ROOT = str(Path(__file__).resolve().parent.parent)
if not (Path(pytest_dualcache.__file__).parent / "contracts").exists():
    pytest_dualcache.__path__.append(_ROOT)
