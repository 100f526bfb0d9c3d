"""What the plugin's own tests share: how deep their hypothesis runs go.

The README's test command stays quick; CI's ``--dualcache -n 2`` step runs the same tests with
``--hypothesis-profile=dualcache-deep``, and runs each example project's suite itself at the
suite's default depth (see ``.ci/run``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# pytest sessions our tests start in a subprocess share this session's hypothesis storage, as
# in-process ones do: its caches (the constants of every local module, unicode tables) are
# made once, not by the first property test of each subprocess (about 1.5 s each).
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(__file__).resolve().parent.parent / ".hypothesis")
)

#: The model-based (stateful) tests take ``max_examples`` from the loaded profile.
settings.register_profile("dualcache-quick", max_examples=15)
settings.register_profile("dualcache-deep", max_examples=50)
settings.load_profile("dualcache-quick")  # --hypothesis-profile, when given, is loaded after


@pytest.fixture
def quick_suite_examples() -> str:
    """The option a test passes when it runs a whole example project's contract suite."""
    return "--dualcache-examples=5"
