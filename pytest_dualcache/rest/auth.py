"""Who may call the emulated API, and how often: credentials and the API's own rate limit.

The API takes an API token (``Authorization: Bearer ...``) or a Global API key with its
account email (``X-Auth-Key`` and ``X-Auth-Email``). A request without them, with a header
in the wrong shape, or with credentials the account does not know gets the API's own answer
(``limits.REST_ERRORS``). Each credential may make ``REST_RATE_LIMIT_REQUESTS`` requests per
``REST_RATE_LIMIT_WINDOW_S`` of the virtual clock; past that every request is refused with a
429 until the window that follows has passed, as Cloudflare documents.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque

from ..clock import VirtualClock
from ..limits import (
    REST_ERRORS,
    REST_HEADER_FORMAT_CODES,
    REST_RATE_LIMIT_REQUESTS,
    REST_RATE_LIMIT_WINDOW_S,
)
from .wire import Request, Response, error_response, named_error

#: RFC 7235 token68, the shape the API accepts after "Bearer " (else error 6111).
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: A Global API key: the legacy 37 hex digits, or the newer ``cfk_`` form (else error 6103).
_GLOBAL_KEY = re.compile(r"[0-9a-fA-F]{37}|cfk_[A-Za-z0-9_\-]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class Credentials:
    """The tokens and global keys the emulated account accepts, and each one's request rate."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.tokens: set[str] = set()
        #: Global API keys by account email.
        self.keys: dict[str, str] = {}
        self._recent: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def add_token(self, token: str) -> str:
        """Accept ``token`` as an API token; returns it."""
        if not isinstance(token, str) or not _TOKEN68.fullmatch(token):
            raise ValueError(f"an API token is token68 text (letters, digits, -._~+/): {token!r}")
        self.tokens.add(token)
        return token

    def add_key(self, email: str, key: str) -> None:
        """Accept ``key`` as the Global API key of ``email``."""
        if not _EMAIL.fullmatch(email):
            raise ValueError(f"an account email looks like name@host, got {email!r}")
        if not _GLOBAL_KEY.fullmatch(key):
            raise ValueError(f"a Global API key is 37 hex digits or cfk_..., got {key!r}")
        self.keys[email] = key

    def authenticate(self, request: Request) -> tuple[str, Response | None]:
        """Who sent ``request`` ("token:..." or "key:EMAIL"), or the API's refusal."""
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not _TOKEN68.fullmatch(token):
                return "", _malformed("Authorization")
            if token not in self.tokens:
                return "", named_error("auth_error")
            return f"token:{token}", None
        email = request.headers.get("x-auth-email")
        key = request.headers.get("x-auth-key")
        if email is None or key is None:
            return "", named_error("auth_missing")
        if not _GLOBAL_KEY.fullmatch(key):
            return "", _malformed("X-Auth-Key")
        if not _EMAIL.fullmatch(email):
            return "", _malformed("X-Auth-Email")
        if self.keys.get(email) != key:
            return "", named_error("auth_key_unknown")
        return f"key:{email}", None

    def admit(self, identity: str) -> Response | None:
        """Count one request of ``identity``; the API's 429 once it is over the rate limit."""
        now = self.clock.now()
        with self._lock:
            blocked_until = self._blocked_until.get(identity, -math.inf)
            if now < blocked_until:
                return _rate_limited(blocked_until - now)
            recent = self._recent.setdefault(identity, deque())
            while recent and recent[0] <= now - REST_RATE_LIMIT_WINDOW_S:
                recent.popleft()
            if len(recent) >= REST_RATE_LIMIT_REQUESTS:
                # Documented: past the limit, all calls are blocked for the next five minutes.
                self._blocked_until[identity] = now + REST_RATE_LIMIT_WINDOW_S
                recent.clear()
                return _rate_limited(REST_RATE_LIMIT_WINDOW_S)
            recent.append(now)
            return None


def _malformed(header: str) -> Response:
    """400 "Invalid request headers", naming the malformed header in ``error_chain``."""
    code = REST_HEADER_FORMAT_CODES[header]
    chain = [{"code": code, "message": f"Invalid format for {header} header"}]
    return error_response(REST_ERRORS["headers_invalid"], chain=chain)


def _rate_limited(wait_s: float) -> Response:
    """The API's 429, with the documented ``retry-after`` (seconds, rounded up)."""
    return error_response(
        REST_ERRORS["rate_limited"], headers=[("Retry-After", str(math.ceil(wait_s)))]
    )
