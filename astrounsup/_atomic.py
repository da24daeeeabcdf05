"""Write files so that a reader never sees a half-written one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from astrounsup._h5write import no_space_error
from astrounsup._locks import output_lock, remove_stale_partials


def default_mode(directory):
    """Permissions a plain ``open()``/``mkdir()`` would give under the current umask;
    ``mkstemp``/``mkdtemp`` create owner-only files, which must not leak into outputs."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; move it onto ``path`` only on success.

    The temporary file lives in the same directory, so the final rename is atomic on POSIX
    file systems. If the body raises, the temporary file is removed and ``path`` is left as
    it was; a write that failed for lack of space becomes one
    :class:`~astrounsup._h5write.OutOfSpaceError` naming ``path``. The lock of ``path``
    (:func:`astrounsup._locks.output_lock`) is held throughout, and temporary files that
    interrupted writes of ``path`` left are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(path):
        remove_stale_partials(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp)
        with _replacing(path, tmp):
            yield tmp


@contextlib.contextmanager
def _replacing(path, tmp):
    try:
        yield tmp
        os.chmod(tmp, default_mode(directory=False))
        os.replace(tmp, path)
    except OSError as err:
        raise _named(path, err) from None
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a temporary directory beside ``path``; it replaces ``path`` only on success.

    Like :func:`atomic_path`, it holds the lock of ``path`` and first removes what
    interrupted writes of ``path`` left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(path):
        remove_stale_partials(path)
        old = path.with_name(f".{path.name}.old")
        if old.is_dir() and not path.exists():  # killed between the two renames below
            os.replace(old, path)
        shutil.rmtree(old, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
        with _replacing_directory(path, tmp):
            yield tmp


@contextlib.contextmanager
def _replacing_directory(path, tmp):
    try:
        yield tmp
        os.chmod(tmp, default_mode(directory=True))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except OSError as err:
        raise _named(path, err) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def raise_named(path):
    """Within the block, a write that fails for lack of space raises one
    :class:`~astrounsup._h5write.OutOfSpaceError` naming ``path``."""
    try:
        yield
    except OSError as err:
        raise _named(path, err) from None


def _named(path, err):
    """``err``, or for lack of space an :class:`OutOfSpaceError` naming ``path`` (not the
    temporary file)."""

    return no_space_error(path, err) or err
