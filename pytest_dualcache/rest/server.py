"""The emulated API on a real loopback socket, for clients in other languages or processes.

``wsgiref`` from the standard library, one thread per request: the app's work is in memory
and the namespaces are thread-safe. It listens on 127.0.0.1 only, on a port the OS picks.
"""

from __future__ import annotations

import socketserver
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..limits import REST_API_BASE_PATH


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """``WSGIServer`` answering each connection on its own (daemon) thread."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """A request handler that leaves stderr to the tests (no access log)."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""


class LoopbackServer:
    """``app`` served on ``127.0.0.1`` from a background thread until ``close()``."""

    def __init__(self, app: Any) -> None:
        self._server = make_server(
            "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="dualcache-cloudflare-api",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The API's base URL on this server (``http://127.0.0.1:PORT/client/v4``)."""
        return f"http://127.0.0.1:{self.port}{REST_API_BASE_PATH}"

    def close(self) -> None:
        """Stop serving and release the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
