"""The errors of a Workers KV namespace, with Cloudflare's statuses and messages."""

from __future__ import annotations

from .limits import KV_BINDING_MESSAGES, KV_FAILED_PREFIX, KV_MESSAGES


class KVError(Exception):
    """A KV operation Cloudflare would reject; ``status`` and ``message`` are Cloudflare's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class KVValidationError(KVError, ValueError):
    """Bad key, value, metadata, expiration or list option (400, 413 or 414)."""


class KVBindingError(KVValidationError, TypeError):
    """Refused by the Workers binding itself (a JavaScript TypeError): "" or "." keys, or an
    option outside the 32-bit integer range. ``status`` is 400 by our convention."""

    def __init__(self, reason: str, **figures: object) -> None:
        super().__init__(400, KV_BINDING_MESSAGES[reason].format(**figures))


class KVRateLimitError(KVError):
    """More than one write to the same key within a second (429)."""


class KVQuotaError(KVError):
    """A daily operation quota of the plan is used up (resets at 00:00 UTC)."""


def kv_error(cls: type[KVError], op: str, reason: str, **figures: object) -> KVError:
    """A ``cls`` error worded as the binding words ``reason`` (``limits.KV_MESSAGES``)."""
    status, text = KV_MESSAGES[reason]
    prefix = KV_FAILED_PREFIX.format(op=op, status=status)
    return cls(status, prefix + text.format(**figures))
