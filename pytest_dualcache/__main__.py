"""``python -m pytest_dualcache``: the report commands of ``cli.py``."""

from pytest_dualcache.cli import main

raise SystemExit(main())
