"""What counts as JSON data here: the values both cache tiers store and give back unchanged.

Strict JSON, as Workers code would see it after ``JSON.parse``: None, bool, int, finite
float, str, list, and dict with str keys. Tuples, sets, bytes, NaN and infinities are refused
because they would not come back as they went in.
"""

from __future__ import annotations

import json
import math

#: Compact separators: the JSON text both tiers store and measure.
COMPACT = (",", ":")


class NotJSONData(ValueError):
    """A value that is not storable JSON data; the message says why and where."""


def strict_json_text(value: object) -> str:
    """``value`` as compact JSON text (non-ASCII kept as is), or NotJSONData saying why not.

    Serialising and reading back is the complete check (tuples and non-str keys serialise
    but come back changed), done in C; the slower walk that names the problem runs only when
    it fails.
    """
    try:
        text = json.dumps(value, separators=COMPACT, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:  # ValueError: NaN, cycles, huge ints
        raise NotJSONData(json_problem(value) or str(exc)) from None
    if json.loads(text) != value:
        raise NotJSONData(json_problem(value) or "value does not come back equal from JSON")
    return text


def json_problem(value: object, path: str = "value", ancestors: tuple[int, ...] = ()) -> str | None:
    """Why ``value`` is not storable JSON data, naming where, or None if no reason is found."""
    if id(value) in ancestors:
        return f"{path} refers back to a container holding it: JSON cannot represent cycles"
    if len(ancestors) > 500:
        return f"{path} is nested too deeply to serialize as JSON"
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return f"{path} is {value!r}: NaN and ±inf are not JSON and cannot be stored"
    if isinstance(value, tuple):
        return (
            f"{path} is a tuple: tuples are not allowed because they would come back as "
            "lists; pass a list"
        )
    inside = (*ancestors, id(value))
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = json_problem(item, f"{path}[{index}]", inside)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                return f"{path} has the {type(k).__name__} key {k!r}: JSON object keys must be str"
            problem = json_problem(item, f"{path}[{k!r}]", inside)
            if problem:
                return problem
        return None
    return (
        f"{path} is of type {type(value).__name__} ({value!r:.60}), which is not JSON; store None, "
        "bool, int, float, str, list or dict with str keys"
    )
