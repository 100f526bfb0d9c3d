"""Writing the report, baseline and rendered files: atomically where it is safe, in place where not.

A regular file is replaced through a temporary file and a rename, so a reader never sees half
a report; a symlink writes through to its target; a device, FIFO or ``/dev/stdout`` is
written in place and never replaced. ``output_problem`` checks a path before any test runs.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as sorted JSON to ``path``, never leaving a half-written file there.

    A new path or a regular file is replaced through a temporary file and a rename (a
    replaced file keeps its permissions); a symlink writes through to its target; any other
    existing file (a FIFO, a device, ``/dev/stdout``) is written in place, never replaced.
    Missing parent folders are created. Errors are ``OSError``s.
    """
    write_text_atomically(path, json_text(data))


def json_text(data: dict[str, Any]) -> str:
    """``data`` as the plugin's JSON files hold it: sorted keys, indented, a final newline."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` as ``write_json_atomically`` writes its JSON: a
    regular file replaced by a rename, a special file written in place."""
    data = text.encode("utf-8")
    atomic, target, mode = _destination(path)
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if atomic:
        _replace_atomically(target, data, mode)
    else:
        _write_in_place(target, data)


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
