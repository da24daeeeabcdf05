"""One writer per output: an exclusive lock held for the whole write, and the clean-up of
what killed writers left.

An output ``dir/name`` (a file or a folder) is locked through ``dir/.name.lock``, a file
locked with ``flock``; the lock goes when the process ends, however it ends, so a killed
writer never blocks the next one. Locks are re-entrant within a process: a command that
holds its outputs for its whole run can call library writers that lock them again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path

__all__ = ["OutputBusyError", "being_written", "output_lock", "remove_stale_partials"]

_HELD = {}  # resolved output path -> [fd, depth]


class OutputBusyError(OSError):
    """Another process is writing the same output."""


def _lock_file(path):
    path = Path(os.path.abspath(path))
    return path, path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def output_lock(path):
    """Hold the exclusive lock of output ``path`` (a file or folder) for the block.

    Raises
    ------
    OutputBusyError
        Another process holds it; the message names ``path``.
    """
    given = path
    path, lock = _lock_file(path)
    held = _HELD.get(path)
    if held is not None:
        held[1] += 1
        try:
            yield path
        finally:
            held[1] -= 1
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(given, lock)
    _HELD[path] = [fd, 1]
    try:
        yield path
    finally:
        del _HELD[path]
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()  # while still locked, so no one else holds this file
        os.close(fd)


def _acquire(path, lock):
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            msg = (
                f"{path}: another process is writing it now (it holds {lock.name}); wait "
                "for it to finish, or stop it, and run again"
            )
            raise OutputBusyError(msg) from None
        # The holder before us may have removed the lock file after we opened it: only
        # the file still at that path counts.
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def being_written(path):
    """Whether another process holds the lock of output ``path`` now (it is writing it).

    Only looks: it neither creates nor removes the lock file.
    """
    path, lock = _lock_file(path)
    if path in _HELD:
        return False  # this process is the writer
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def remove_stale_partials(path):
    """Remove the temporary files and folders (``.name.*.partial``) that interrupted writes
    of ``path`` left beside it; call it while holding :func:`output_lock` of ``path``, which
    makes every one of them stale. Returns how many were removed."""
    path = Path(os.path.abspath(path))
    if not path.parent.is_dir():
        return 0
    n = 0
    for stale in path.parent.glob(f".{_glob_escape(path.name)}.*.partial"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        n += 1
    return n


def _glob_escape(name):
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
