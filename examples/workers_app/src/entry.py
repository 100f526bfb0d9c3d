"""The Worker: a JSON cache over HTTP, on the ``DualCacheDO`` with KV as the fallback.

``PUT /cache/<key>?ttl=60`` stores the request's JSON body, ``GET /cache/<key>`` reads it
(404 when absent), ``DELETE /cache/<key>`` removes it, ``GET /stats`` gives the cache
object's counters.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from cache_dal import CACHE_OBJECT, CacheDAL
from dual_cache_do import DualCacheDO
from workers import Response, WorkerEntrypoint

__all__ = ["Default", "DualCacheDO"]  # wrangler.toml binds CACHE_DO to DualCacheDO


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        if url.path == "/stats":
            cache = self.env.CACHE_DO.get(self.env.CACHE_DO.idFromName(CACHE_OBJECT))
            return Response.json(await cache.stats())
        if not url.path.startswith("/cache/") or url.path == "/cache/":
            return Response("not found", status=404)
        key = url.path.removeprefix("/cache/")
        dal = CacheDAL(self.env)
        if request.method == "PUT":
            ttl = int(parse_qs(url.query).get("ttl", ["3600"])[0])
            result = await dal.put(key, await request.json(), ttl=ttl)
            status = 200 if result.success else 503
            return Response.json({"success": result.success, "route": result.route}, status)
        if request.method == "DELETE":
            await dal.delete(key)
            return Response(None, status=204)
        value = await dal.get(key)
        if value is None:
            return Response("not found", status=404)
        return Response.json(value)
