"""Cloudflare's Workers KV REST API, emulated over the env's ``KVNamespace`` objects.

``CloudflareAPI`` (``fixture``) is what the ``cloudflare_api`` fixture gives a test: the app
(``app``, WSGI), the routing of ``httpx``, ``requests`` and
``aiohttp`` to it (``routing``, ``aiohttp_routing``), and a
loopback server (``server``). Imported only when the fixture is used.
"""

from __future__ import annotations

from .app import KVRestApp
from .fixture import (
    DEFAULT_ACCOUNT_ID,
    CloudflareAPI,
    cloudflare_api_fixture,
    derived_namespace_id,
    parse_namespace_ids,
    wrangler_namespace_ids,
)
from .routing import RequestRefused

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "CloudflareAPI",
    "KVRestApp",
    "RequestRefused",
    "cloudflare_api_fixture",
    "derived_namespace_id",
    "parse_namespace_ids",
    "wrangler_namespace_ids",
]
