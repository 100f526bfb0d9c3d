"""Where the collected suite appears: its node id (importable without the emulators)."""

#: The node id the collected suite carries: its module's path inside the package.
SUITE_NODEID = "pytest_dualcache/contracts/test_registered.py"
