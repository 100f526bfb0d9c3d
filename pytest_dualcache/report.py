"""The KV report: per-test counts, session totals, the JSON file and the baseline gate.

Everything here is plain data (dicts of ints and strings) so that pytest-xdist workers can
ship it to the controller inside test reports, and so that the same tests give
byte-identical JSON: no timestamps, no durations, sorted keys, call sites relative to the
rootdir.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ledger import OperationRecord

REPORT_VERSION = 1
#: The baseline format ``baseline_of`` writes, and every one ``load_baseline`` reads. Version 1
#: is the only one there has been (since the gate first shipped): to add version N, write it
#: here, keep reading the older ones, and skip (with a note) what an older one lacks.
BASELINE_VERSION = 1
KNOWN_BASELINE_VERSIONS = (1,)
KV_KINDS = {"get": "reads", "put": "writes", "delete": "deletes", "list": "lists"}
GATED_KINDS = ("writes", "deletes", "lists")
DO_KINDS = ("deletes", "errors", "gets", "hits", "lists", "misses", "sets")
TOP_SITES = 10


def call_site_text(record: OperationRecord, rootdir: Path) -> str:
    """``path:line:function`` with the path relative to the rootdir when inside it."""
    site = record.call_site
    path = site.filename
    if os.path.isabs(path):
        try:
            relative = os.path.relpath(path, rootdir)
        except ValueError:  # another drive on Windows
            relative = path
        path = path if relative.startswith("..") else relative
    return f"{path}:{site.lineno}:{site.function}"


def summarize(records: Iterable[OperationRecord], rootdir: Path) -> dict[str, Any]:
    """One test's numbers from its KV and DO operations (in the order they happened).

    An operation the report has no column for (a ledger a test filled by hand) is left out.
    """
    kv = dict.fromkeys(KV_KINDS.values(), 0)
    kv_errors = {"rate_limited": 0, "quota": 0, "other": 0}
    do = dict.fromkeys(DO_KINDS, 0)
    sites: Counter[str] = Counter()
    for record in records:
        if record.store_kind == "kv":
            if not record.ok:
                kv_errors[_error_class(record.error or "")] += 1
            elif record.op in KV_KINDS:
                kv[KV_KINDS[record.op]] += 1
                if record.op == "put":
                    sites[call_site_text(record, rootdir)] += 1
        elif not record.ok:
            do["errors"] += 1
        elif record.op == "get":
            do["gets"] += 1
            do["hits" if record.bytes else "misses"] += 1
        elif f"{record.op}s" in do:
            do[f"{record.op}s"] += 1
    return {
        "kv": kv,
        "kv_errors": kv_errors,
        "do": do,
        "write_sites": dict(sorted(sites.items())),
        "bypasses": {"allowed": [], "rejected": []},
        "over_budget": [],
    }


def _error_class(error: str) -> str:
    if "429 Too Many Requests" in error:
        return "rate_limited"
    if "limit exceeded for the day" in error:
        return "quota"
    return "other"


def bypass_entry(record: OperationRecord, rootdir: Path) -> dict[str, str]:
    """How a bypassing KV write appears in the report."""
    return {"op": record.op, "key": record.key, "caller": call_site_text(record, rootdir)}


@dataclass
class SessionReport:
    """Every test's numbers, merged from this process or from xdist workers."""

    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    crashed_workers: list[str] = field(default_factory=list)
    missing_tests: list[str] = field(default_factory=list)
    #: Why the session did not run every selected test (interrupted, stopped, a crash).
    stopped: list[str] = field(default_factory=list)
    #: Tests collected and then deselected (-k, -m, --lf, --deselect): left out on purpose.
    deselected: int = 0

    def add(self, nodeid: str, data: dict[str, Any]) -> None:
        self.tests[nodeid] = data

    def stop(self, reason: str) -> None:
        """Record why the session is incomplete (a reason given twice counts once)."""
        if reason not in self.stopped:
            self.stopped.append(reason)

    def worker_crashed(self, worker: str, error: object) -> None:
        """Record an xdist worker that died: its running test's counts are lost."""
        self.crashed_workers.append(f"{worker}: {str(error).strip()[:200]}")
        self.stop("an xdist worker crashed")  # which one varies run to run: crashed_workers

    @property
    def incomplete_reasons(self) -> list[str]:
        """Why the session is incomplete, sorted; empty for a complete session."""
        return sorted(self.stopped)

    @property
    def complete(self) -> bool:
        """True when every selected test ran: no interruption, early stop or crashed worker."""
        return not self.stopped

    def totals(self) -> dict[str, Any]:
        """Sums over every test, with the DO hit rate and the route share of writes."""
        kv: Counter[str] = Counter()
        kv_errors: Counter[str] = Counter()
        do: Counter[str] = Counter()
        sites: Counter[str] = Counter()
        bypasses = {"allowed": 0, "rejected": 0}
        for data in self.tests.values():
            kv.update(data["kv"])
            kv_errors.update(data["kv_errors"])
            do.update(data["do"])
            sites.update(data["write_sites"])
            for outcome in bypasses:
                bypasses[outcome] += len(data["bypasses"][outcome])
        writes = do["sets"] + kv["writes"]
        return {
            "kv": {kind: kv[kind] for kind in KV_KINDS.values()},
            "kv_errors": {kind: kv_errors[kind] for kind in ("rate_limited", "quota", "other")},
            "do": {kind: do[kind] for kind in DO_KINDS},
            "do_hit_rate": round(do["hits"] / do["gets"], 6) if do["gets"] else None,
            "route_share": {
                "do": round(do["sets"] / writes, 6) if writes else None,
                "kv": round(kv["writes"] / writes, 6) if writes else None,
            },
            "top_write_sites": [
                {"site": site, "writes": n}
                for site, n in sorted(sites.items(), key=lambda item: (-item[1], item[0]))[
                    :TOP_SITES
                ]
            ],
            "bypasses": bypasses,
            "tests_over_budget": sorted(
                nodeid for nodeid, data in self.tests.items() if data["over_budget"]
            ),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "complete": self.complete,
            "incomplete_reasons": self.incomplete_reasons,
            "deselected": self.deselected,
            "tests": {nodeid: self.tests[nodeid] for nodeid in sorted(self.tests)},
            "totals": self.totals(),
            "crashed_workers": sorted(self.crashed_workers),
            "missing_tests": sorted(self.missing_tests),
        }

    def render(self) -> list[str]:
        """The terminal summary section, a line a figure."""
        totals = self.totals()
        kv, errors, do = totals["kv"], totals["kv_errors"], totals["do"]
        lines = [
            f"KV operations: {kv['reads']} reads, {kv['writes']} writes, {kv['deletes']} "
            f"deletes, {kv['lists']} lists over {len(self.tests)} tests",
            f"KV errors: {errors['rate_limited']} rate-limited (429), {errors['quota']} daily "
            f"quota, {errors['other']} other",
        ]
        rate = totals["do_hit_rate"]
        lines.append(
            f"DO operations: {do['gets']} gets ({do['hits']} hits, {do['misses']} misses; hit "
            f"rate {_percent(rate)}), {do['sets']} sets, {do['deletes']} deletes, "
            f"{do['errors']} errors"
        )
        share = totals["route_share"]
        lines.append(
            f"writes by route: DO {_percent(share['do'])}, KV {_percent(share['kv'])} "
            f"({do['sets']} DO sets, {kv['writes']} KV puts)"
        )
        if totals["top_write_sites"]:
            lines.append("top KV-writing call sites:")
            lines.extend(
                f"  {row['writes']:>6}  {row['site']}" for row in totals["top_write_sites"]
            )
        bypasses = totals["bypasses"]
        lines.append(
            f"KV writes bypassing the cache layer: {bypasses['rejected']} rejected, "
            f"{bypasses['allowed']} allowed"
        )
        rejected = Counter(
            f"{entry['op']} at {entry['caller']}"
            for data in self.tests.values()
            for entry in data["bypasses"]["rejected"]
        )
        for site, count in sorted(rejected.items(), key=lambda item: (-item[1], item[0]))[
            :TOP_SITES
        ]:
            lines.append(f"  rejected: {count:>5} x {site}")
        over = totals["tests_over_budget"]
        lines.append(f"tests over budget: {len(over)}")
        lines.extend(f"  {nodeid}" for nodeid in over)
        for worker in sorted(self.crashed_workers):
            lines.append(f"WORKER CRASHED: {worker}; its running test's counts are missing")
        for nodeid in sorted(self.missing_tests):
            lines.append(f"  missing from the totals: {nodeid}")
        if not self.complete:
            lines.append(
                f"SESSION INCOMPLETE ({'; '.join(self.incomplete_reasons)}): these figures "
                "cover only the tests that ran"
            )
        return lines


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:.1f}%"


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as sorted JSON to ``path``, never leaving a half-written file there.

    A new path or a regular file is replaced through a temporary file and a rename (a
    replaced file keeps its permissions); a symlink writes through to its target; any other
    existing file (a FIFO, a device, ``/dev/stdout``) is written in place, never replaced.
    Missing parent folders are created. Errors are ``OSError``s.
    """
    text = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")
    atomic, target, mode = _destination(path)
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if atomic:
        _replace_atomically(target, text, mode)
    else:
        _write_in_place(target, text)


def _destination(path: Path) -> tuple[bool, Path, int | None]:
    """``(atomically?, the file to write, its st_mode or None)`` for a write to ``path``.

    A new path, a regular file or a directory is named by its real path (symlinks resolved)
    and may be replaced; an existing special file is written in place, and so is anything
    reached through /proc (``/dev/stdout`` -> ``/proc/self/fd/1``): an open file of this
    process, whatever its kind, is never replaced.
    """
    mode = _mode_of(path)  # the kernel follows every link, /proc's included
    if mode is not None and (_through_proc(path) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))):
        return False, path, mode
    return True, Path(os.path.realpath(path)), mode


def _mode_of(path: Path) -> int | None:
    """``path``'s ``st_mode`` (links followed), or None when nothing is there."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the latter: a parent is a file
        return None


def _through_proc(path: Path) -> bool:
    """Whether resolving ``path`` goes through /proc (``/dev/stdout``, ``/dev/fd/1``)."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel gives up on longer chains of links too
        parent = os.path.realpath(os.path.dirname(current))
        current = os.path.join(parent, os.path.basename(current))
        if current == "/proc" or current.startswith("/proc/"):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.join(parent, os.readlink(current))
    return False


def _replace_atomically(target: Path, text: bytes, mode: int | None) -> None:
    """Write ``text`` to a temporary file beside ``target``, then rename it over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(text)
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            permissions = 0o666 & ~umask  # as open() would have made it, not mkstemp's 0600
        else:
            permissions = stat.S_IMODE(mode)
        os.chmod(temporary, permissions)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _write_in_place(target: Path, text: bytes) -> None:
    """Append ``text`` to an existing file: no create, no truncate, no rename."""
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOCTTY", 0)
    descriptor = os.open(target, flags)
    try:
        view = memoryview(text)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


def output_problem(path: Path) -> str | None:
    """Why a JSON file cannot be written to ``path``, or None if it can.

    Checks without creating or truncating ``path``: a symlink is judged by its target; a
    directory or a socket is refused; a file written in place must be writable; a file
    replaced needs a folder where a file can be created (a probe file, removed at once),
    the nearest existing one when parent folders are still to be created.
    """
    try:
        atomic, target, mode = _destination(path)
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror}"
    shown = str(path)
    if atomic and target != Path(os.path.abspath(path)):
        shown = f"{path} (-> {target})"
    if mode is not None and stat.S_ISDIR(mode):
        return f"cannot write {shown}: it is a directory"
    if not atomic:
        if mode is not None and stat.S_ISSOCK(mode):
            return f"cannot write {shown}: it is a socket"
        return None if os.access(target, os.W_OK) else f"cannot write {shown}: permission denied"
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"cannot write {shown}: {folder} is not a directory"
    try:
        handle, probe = tempfile.mkstemp(prefix=".dualcache-probe-", dir=folder)
    except OSError as exc:
        return f"cannot write {shown}: cannot create a file in {folder} ({exc.strerror})"
    os.close(handle)
    os.unlink(probe)
    return None


# --- the baseline gate ------------------------------------------------------------------------


def baseline_of(report: SessionReport) -> dict[str, Any]:
    """What a baseline keeps: per-test and total KV writes, deletes, lists and write sites."""
    tests = {
        nodeid: {
            **{kind: data["kv"][kind] for kind in GATED_KINDS},
            "write_sites": sorted(data["write_sites"]),
        }
        for nodeid, data in sorted(report.tests.items())
    }
    totals = {kind: sum(test[kind] for test in tests.values()) for kind in GATED_KINDS}
    return {"version": BASELINE_VERSION, "tests": tests, "totals": totals}


class BaselineError(ValueError):
    """The baseline file is missing or not one of ours."""


class _SchemaError(Exception):
    """A baseline field that is not what its version says: where it is, and what is wrong."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


def load_baseline(path: Path) -> dict[str, Any]:
    """A saved baseline, its whole schema checked; else a BaselineError naming the bad field.

    Any known version loads; a section an older one lacks is skipped by ``compare``.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"baseline {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"baseline {path} is not readable JSON: {exc}") from None
    try:
        version = _check_version(data)
        if version not in KNOWN_BASELINE_VERSIONS:
            known = ", ".join(map(str, KNOWN_BASELINE_VERSIONS))
            newer = " (a newer pytest-dualcache wrote it)" if version > BASELINE_VERSION else ""
            raise BaselineError(
                f"baseline {path} has version {version}{newer}; this pytest-dualcache reads "
                f"version {known}: save the baseline again with this one"
            )
        _check_body(data)
    except _SchemaError as exc:
        raise BaselineError(
            f"baseline {path} is not a dualcache baseline (save one with "
            f"--dualcache-save-baseline): {exc}"
        ) from None
    return data


def _check_version(data: object) -> int:
    """The version of a baseline ``data`` (an object with an integer version)."""
    if not isinstance(data, dict):
        raise _SchemaError(
            "the top level", f'expected an object with "version" and "tests", got {_shown(data)}'
        )
    if "version" not in data:
        raise _SchemaError("version", "missing")
    if not _is_int(data["version"]):
        raise _SchemaError("version", f"expected an integer, got {_shown(data['version'])}")
    return int(data["version"])


def _check_body(data: dict[str, Any]) -> None:
    """Raise a _SchemaError at the first field of a version 1 baseline that is wrong."""
    if "tests" not in data:
        raise _SchemaError("tests", "missing (expected an object of test node ids)")
    tests = data["tests"]
    if not isinstance(tests, dict):
        raise _SchemaError("tests", f"expected an object of test node ids, got {_shown(tests)}")
    for nodeid, entry in tests.items():
        where = f"tests[{json.dumps(nodeid)}]"
        if not isinstance(entry, dict):
            raise _SchemaError(
                where,
                'expected an object with "writes", "deletes", "lists" and "write_sites", '
                f"got {_shown(entry)}",
            )
        _check_counts(entry, where)
        sites = entry.get("write_sites", [])
        if not isinstance(sites, list):
            raise _SchemaError(
                f"{where}.write_sites", f"expected a list of call sites, got {_shown(sites)}"
            )
        for index, site in enumerate(sites):
            if not isinstance(site, str):
                raise _SchemaError(
                    f"{where}.write_sites[{index}]",
                    f"expected a call site string (path:line:function), got {_shown(site)}",
                )
    if "totals" in data:
        totals = data["totals"]
        if not isinstance(totals, dict):
            raise _SchemaError(
                "totals",
                f'expected an object with "writes", "deletes" and "lists", got {_shown(totals)}',
            )
        _check_counts(totals, "totals")


def _check_counts(entry: dict[str, Any], where: str) -> None:
    """Each gated count ``entry`` has is an integer >= 0 (a missing one is skipped)."""
    for kind in GATED_KINDS:
        if kind in entry and not (_is_int(entry[kind]) and entry[kind] >= 0):
            raise _SchemaError(
                f"{where}.{kind}", f"expected an integer >= 0, got {_shown(entry[kind])}"
            )


def _is_int(value: object) -> bool:
    """An integer, and not a bool (JSON's true is no count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: object) -> str:
    """``value`` as JSON, cut short for an error message."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Growth:
    """An allowance for growth: an absolute count, or a percentage of the baseline."""

    amount: float
    percent: bool

    @classmethod
    def parse(cls, text: str) -> Growth:
        raw = text.strip()
        percent = raw.endswith("%")
        try:
            amount = float(raw[:-1] if percent else raw)
        except ValueError:
            amount = -1.0
        if not math.isfinite(amount) or amount < 0 or (not percent and not amount.is_integer()):
            raise ValueError(
                f"expected a count (e.g. 5) or a percentage (e.g. 10%) >= 0, got {text!r}"
            )
        return cls(amount, percent)

    def allows(self, before: int, after: int) -> bool:
        allowance = before * self.amount / 100 if self.percent else self.amount
        return after - before <= allowance

    def __str__(self) -> str:
        return f"{self.amount:g}%" if self.percent else f"{self.amount:g}"


@dataclass
class GateResult:
    """What grew beyond the allowance, and which tests the baseline does not know."""

    grew: list[dict[str, Any]]
    new_tests: list[str]
    #: What the baseline lacked, so that part of the gate was skipped.
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.grew)

    def render(self, growth: Growth) -> list[str]:
        lines = []
        if self.grew:
            lines.append(f"KV writes grew beyond the baseline (allowed growth: {growth}):")
            width = max(len(row["name"]) for row in self.grew)
            lines.append(f"  {'test':<{width}}  baseline    now  growth")
            for row in self.grew:
                lines.append(
                    f"  {row['name']:<{width}}  {row['before']:>8}  {row['after']:>5}  "
                    f"{row['after'] - row['before']:+6}"
                )
                lines.extend(f"      new call site: {site}" for site in row["new_sites"])
        else:
            lines.append(f"KV writes within the baseline (allowed growth: {growth})")
        if self.new_tests:
            lines.append(f"tests not in the baseline (not gated): {len(self.new_tests)}")
            lines.extend(f"  {nodeid}" for nodeid in self.new_tests)
        lines.extend(f"note: {note}" for note in self.notes)
        return lines


def compare(baseline: dict[str, Any], current: dict[str, Any], growth: Growth) -> GateResult:
    """Tests (and the total) whose KV writes grew beyond ``growth`` over ``baseline``.

    A baseline test without a write count is not gated, and one without write sites lists
    no new call sites: ``notes`` says so.
    """
    grew = []
    uncounted: list[str] = []
    unsited: list[str] = []
    shared = []
    for nodeid, now in current["tests"].items():
        before = baseline["tests"].get(nodeid)
        if before is None:
            continue
        if "writes" not in before:
            uncounted.append(nodeid)
            continue
        shared.append(nodeid)
        if not growth.allows(before["writes"], now["writes"]):
            if "write_sites" not in before:
                unsited.append(nodeid)
            known = set(before.get("write_sites", now["write_sites"]))
            grew.append(
                {
                    "name": nodeid,
                    "before": before["writes"],
                    "after": now["writes"],
                    "new_sites": [site for site in now["write_sites"] if site not in known],
                }
            )
    # The total covers the tests both runs know: a new test is listed, not held against it,
    # and a subset run (-k, --lf) is not compared with the whole baseline.
    total_before = sum(baseline["tests"][nodeid]["writes"] for nodeid in shared)
    total_after = sum(current["tests"][nodeid]["writes"] for nodeid in shared)
    if not growth.allows(total_before, total_after):
        grew.append(
            {"name": "TOTAL", "before": total_before, "after": total_after, "new_sites": []}
        )
    new_tests = sorted(set(current["tests"]) - set(baseline["tests"]))
    notes = []
    if uncounted:
        notes.append(
            f"the baseline has no KV write count for {len(uncounted)} of these tests: they "
            "are not gated (save the baseline again to gate them)"
        )
    if unsited:
        notes.append(
            f"the baseline lists no write sites for {len(unsited)} grown tests: their new "
            "call sites are not shown"
        )
    return GateResult(grew, new_tests, notes)
