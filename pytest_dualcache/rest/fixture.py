"""``CloudflareAPI``, what the ``cloudflare_api`` fixture gives a test, and the fixture's body.

One account (``account_id``) whose KV namespaces are the env's: each binding's namespace is
served under an id (``namespace_id(binding)``) from ini ``dualcache_kv_namespace_ids``, else
from the wrangler config's ``kv_namespaces``, else derived from the binding name. A
service that writes through the REST API and a Worker that writes through its binding share
the data, the limits and the ledger.
"""

from __future__ import annotations

import re
import secrets
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from ..limits import REST_API_BASE_PATH, REST_API_HOST
from .app import KVRestApp
from .auth import Credentials
from .routing import ClientRouting, RequestRefused
from .server import LoopbackServer

if TYPE_CHECKING:
    import pytest

    from ..env import DualCacheEnv
    from ..kv import KVNamespace

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "CloudflareAPI",
    "RequestRefused",
    "cloudflare_api_fixture",
    "derived_namespace_id",
    "parse_namespace_ids",
    "wrangler_namespace_ids",
]

#: The account the emulated API serves unless ini ``dualcache_account_id`` names another.
DEFAULT_ACCOUNT_ID = "d0a1cace5e7a5e0000000000000000a1"
DEFAULT_TOKEN = "dualcache-test-token"
DEFAULT_API_EMAIL = "dualcache@example.com"
DEFAULT_API_KEY = "0" * 32 + "d0a1c"  # a Global API key is 37 hex digits
_ID = re.compile(r"[A-Za-z0-9_\-]+")
_DERIVED_IDS = uuid.UUID("6f1c1f3e-6d0e-4a55-9d64-2b4f8e0c7a11")


def derived_namespace_id(binding: str) -> str:
    """The namespace id of a binding no configuration names: 32 hex digits, stable."""
    return uuid.uuid5(_DERIVED_IDS, binding).hex


def parse_namespace_ids(lines: Iterable[str], source: str) -> dict[str, str]:
    """``{binding: id}`` from ``BINDING=ID`` lines; a ValueError names ``source`` and the line."""
    ids: dict[str, str] = {}
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        binding, equals, namespace_id = (part.strip() for part in text.partition("="))
        if not equals or not binding.isidentifier() or not _ID.fullmatch(namespace_id):
            raise ValueError(
                f"{source}: cannot read {text!r}; write BINDING=ID, one per line "
                "(e.g. CACHE_KV=0f2ac74b498b48028cb68387c421e279)"
            )
        if binding in ids:
            raise ValueError(f"{source}: binding {binding} is given twice")
        ids[binding] = namespace_id
    if len(set(ids.values())) < len(ids):
        raise ValueError(f"{source}: two bindings share one namespace id")
    return ids


def wrangler_namespace_ids(path: str | Path, environment: str | None = None) -> dict[str, str]:
    """``{binding: id}`` of a wrangler config's ``kv_namespaces`` (of ``[env.NAME]`` if given),
    read by the plugin's one wrangler reader (``runtime.wrangler``)."""
    from ..runtime.wrangler import read_config

    return read_config(Path(path), environment).kv_namespace_ids()


class CloudflareAPI:
    """Cloudflare's KV REST API for ``env``'s namespaces, and the routing that reaches it.

    While active (``start()`` ... ``close()``, or ``with``), httpx, requests and aiohttp send
    requests for ``https://api.cloudflare.com/client/v4`` to it in this process, and refuse
    every other host except loopback. ``url`` serves the same API on a loopback socket.
    """

    base_url = f"https://{REST_API_HOST}{REST_API_BASE_PATH}"

    def __init__(
        self,
        env: DualCacheEnv,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        namespace_ids: Mapping[str, str] | None = None,
        token: str = DEFAULT_TOKEN,
    ) -> None:
        if not _ID.fullmatch(account_id):
            raise ValueError(f"an account id is letters, digits, - and _, got {account_id!r}")
        self.env = env
        self.account_id = account_id
        self._configured_ids = dict(namespace_ids or {})
        self.credentials = Credentials(env.clock)
        self.token = self.credentials.add_token(token)
        self.api_email, self.api_key = DEFAULT_API_EMAIL, DEFAULT_API_KEY
        self.credentials.add_key(self.api_email, self.api_key)
        self.app = KVRestApp(account_id, self._namespaces, self.credentials)
        self._routing = ClientRouting(self.app.handle)
        self._server: LoopbackServer | None = None

    # --- what a test reads ------------------------------------------------------------------

    def namespace_id(self, binding: str | None = None) -> str:
        """The id the API serves ``binding``'s namespace under (default: the env's KV binding)."""
        name = self.env.kv.name if binding is None else binding
        return self._configured_ids.get(name) or derived_namespace_id(name)

    @property
    def kv_namespace(self) -> KVNamespace:
        """The namespace of the default binding (the test's ``kv_namespace``)."""
        return self.env.kv

    def add_token(self, token: str | None = None) -> str:
        """Accept another API token (a fresh random one if none is given); returns it."""
        return self.credentials.add_token(token or secrets.token_urlsafe(30))

    def add_key(self, email: str, key: str) -> None:
        """Accept ``key`` as the Global API key of ``email`` (``X-Auth-Email``/``X-Auth-Key``)."""
        self.credentials.add_key(email, key)

    @property
    def url(self) -> str:
        """This API's base URL on a loopback HTTP server, started on first use."""
        if self._server is None:
            self._server = LoopbackServer(self.app)
        return self._server.url

    @property
    def refused(self) -> list[str]:
        """URLs of requests refused while active (never sent)."""
        return self._routing.refused

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """Every request answered, in or out of process: (method, path, status)."""
        return self.app.log

    # --- lifetime ---------------------------------------------------------------------------

    def start(self) -> CloudflareAPI:
        """Route httpx, requests and aiohttp to the API from now on."""
        self._routing.start()
        return self

    def close(self) -> None:
        """Stop routing and stop the loopback server, if one was started."""
        self._routing.stop()
        if self._server is not None:
            self._server.close()
            self._server = None

    def __enter__(self) -> CloudflareAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _namespaces(self) -> dict[str, KVNamespace]:
        """The env's namespaces by id, read per request (bindings added later are served)."""
        return {self.namespace_id(ns.name): ns for ns in self.env.kv_namespaces}

    def __repr__(self) -> str:
        return f"<CloudflareAPI account={self.account_id} namespaces={sorted(self._namespaces())}>"


def cloudflare_api_fixture(
    request: pytest.FixtureRequest,
    env: DualCacheEnv,
    *,
    wrangler_ids: Mapping[str, str] | None = None,
) -> Iterator[CloudflareAPI]:
    """The ``cloudflare_api`` fixture's body: the API for ``env``, routed for the test.

    Namespace ids: ini ``dualcache_kv_namespace_ids`` first, then ``wrangler_ids`` (the
    selected wrangler environment's ``kv_namespaces``, when the plugin read that config).
    A refusal a client swallowed (the SDK wraps it in ``APIConnectionError``) is repeated as
    a warning when the test ends.
    """
    import pytest

    account_id, ids = _ini_settings(request.config)
    try:
        api = CloudflareAPI(
            env, account_id=account_id, namespace_ids={**(wrangler_ids or {}), **ids}
        )
    except ValueError as exc:
        raise pytest.UsageError(f"ini dualcache_account_id: {exc}") from None
    with api:
        yield api
    if api.refused:
        warnings.warn(
            pytest.PytestWarning(
                "cloudflare_api refused requests to other hosts: " + ", ".join(api.refused)
            ),
            stacklevel=2,
        )


def _ini_settings(config: pytest.Config) -> tuple[str, dict[str, str]]:
    """``dualcache_account_id`` and ``dualcache_kv_namespace_ids``, read through
    ``settings.given`` (one precedence for every dualcache setting)."""
    import pytest

    from ..settings import given

    found = given(config, "rest_account_id")
    account_id = found[0] if found else DEFAULT_ACCOUNT_ID
    found = given(config, "kv_namespace_ids")
    if not found:
        return account_id, {}
    try:
        return account_id, parse_namespace_ids(found[0], found[1])
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
