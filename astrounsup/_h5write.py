"""Write HDF5 files so that a failed write (a full disk, a file-size limit) surfaces as one
error and never leaves a damaged file that reads as a good one.

HDF5 reports write errors late and badly: a full disk during ``close`` is swallowed, and a
file whose writes failed crashes the interpreter when it is finally released. Files opened
here go through :class:`GuardedFile`, a Python file object that HDF5 writes through
(h5py's ``fileobj`` driver):

* bytes beyond the last consistent state are written at once; bytes inside it are held back
  until HDF5 flushes, and written then, so that until a flush the file on disk is the last
  flushed state plus a tail HDF5 does not read;
* the first failed write is remembered (raising it inside HDF5 would not stop HDF5); every
  later write is dropped and the file is cut back to the last flushed state, so closing
  cannot fail again, and the caller gets one :class:`OutOfSpaceError` naming the file from
  :func:`raise_if_failed` or when the block of :func:`open_h5_for_writing` ends.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import h5py

__all__ = [
    "GuardedFile",
    "OutOfSpaceError",
    "no_space_error",
    "open_h5_for_writing",
    "raise_if_failed",
]

#: errno values that mean "the file system, a quota or a limit has no room for this file".
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class OutOfSpaceError(OSError):
    """A file could not be written completely: no space left (disk, quota or size limit)."""

    def __str__(self):
        return self.strerror


def no_space_error(path, err, *, kept="nothing was replaced"):
    """An :class:`OutOfSpaceError` naming ``path`` for ``err``, or ``None`` when ``err`` is not
    about space; ``kept`` says what state the failed write left."""
    if not isinstance(err, OSError) or err.errno not in _NO_SPACE:
        return None
    return OutOfSpaceError(
        err.errno,
        f"{path}: no space left to write it ({os.strerror(err.errno)}); {kept}: free some "
        "space (or choose another location) and run the same command again",
    )


class GuardedFile:
    """A binary file that HDF5 writes through; see the module's description.

    Parameters
    ----------
    path : str or pathlib.Path
        An existing file (opened for update) or a new one (``create=True``).
    create : bool, optional
        Create or empty the file.
    """

    def __init__(self, path, *, create=False):
        self.path = Path(path)
        flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0)
        self._fd = os.open(self.path, flags, 0o666)
        self._pos = 0
        self._committed = os.fstat(self._fd).st_size
        self._held = {}  # offset -> bytes: writes inside the consistent state, in order
        self._truncate_to = None
        self.error = None
        self.name, self.kept = self.path, "nothing was replaced"

    # The file-object interface HDF5's fileobj driver uses.
    def seek(self, offset, whence=os.SEEK_SET):
        if whence == os.SEEK_SET:
            self._pos = offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size() + offset
        return self._pos

    def tell(self):
        return self._pos

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        n = len(view)
        data = os.pread(self._fd, n, self._pos)
        view[: len(data)] = data
        got = len(data)
        end = self._pos + n
        for off, held in self._held.items():
            lo, hi = max(off, self._pos), min(off + len(held), end)
            if lo < hi:
                view[lo - self._pos : hi - self._pos] = held[lo - off : hi - off]
                got = max(got, hi - self._pos)
        self._pos += got
        return got

    def read(self, n=-1):
        if n is None or n < 0:
            n = max(self._size() - self._pos, 0)
        buffer = bytearray(n)
        got = self.readinto(buffer)
        return bytes(buffer[:got])

    def write(self, data):
        data = memoryview(data).cast("B")
        n = len(data)
        if self.error is not None:
            self._pos += n
            return n
        pos = self._pos
        split = min(max(self._committed - pos, 0), n)
        if split:
            self._hold(pos, bytes(data[:split]))
        if split < n:
            self._write_through(pos + split, data[split:])
        self._pos = pos + n
        return n

    def truncate(self, size=None):
        size = self._pos if size is None else size
        if self.error is not None:
            return size
        if size >= self._committed:
            self._guard(os.ftruncate, self._fd, size)
        else:
            self._truncate_to = size
        return size

    def flush(self):
        """Write the held bytes: the file on disk becomes HDF5's current state."""
        if self.error is not None:
            return
        for off, held in self._held.items():
            self._write_through(off, held)
        self._held.clear()
        if self._truncate_to is not None:
            self._guard(os.ftruncate, self._fd, self._truncate_to)
            self._truncate_to = None
        self._committed = os.fstat(self._fd).st_size

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def fileno(self):
        return self._fd

    @property
    def closed(self):
        return self._fd is None

    # Helpers.
    def _size(self):
        return os.fstat(self._fd).st_size

    def _hold(self, offset, data):
        # A write over exactly the bytes of an earlier one replaces it; others are kept
        # in order, so that later writes win when they are applied.
        old = self._held.pop(offset, None)
        if old is not None and len(old) > len(data):
            data = data + old[len(data) :]
        self._held[offset] = data

    def _write_through(self, offset, data):
        view = memoryview(data)
        while view:
            written = self._guard(os.pwrite, self._fd, view, offset)
            view, offset = view[written:], offset + written

    def _guard(self, call, *args):
        # HDF5 goes on writing after a failed write (and h5py then fails on the pending
        # Python error), so the failure is remembered, not raised, and later writes dropped.
        try:
            return call(*args)
        except OSError as err:
            self._fail(err)
            return len(args[1]) if call is os.pwrite else None

    def _fail(self, err):
        self.error = err
        self._held.clear()
        with contextlib.suppress(OSError):  # shrinking frees space; it is best effort
            os.ftruncate(self._fd, self._committed)


_GUARDS = {}  # id(h5py.File) -> its GuardedFile, while open


@contextlib.contextmanager
def open_h5_for_writing(path, mode, *, name=None, kept="nothing was replaced"):
    """An :class:`h5py.File` written through a :class:`GuardedFile`.

    Parameters
    ----------
    path : str or pathlib.Path
    mode : {"w", "a"}
        ``"w"`` creates or empties the file; ``"a"`` updates an existing one.
    name : str or pathlib.Path, optional
        The file to name in errors (default ``path``; e.g. the destination of a temporary
        file).
    kept : str, optional
        What a failed write leaves, for the error message.

    Yields
    ------
    h5py.File
        Flushed when the block ends without an error.

    Raises
    ------
    OutOfSpaceError
        A write failed for lack of space; the file holds the state of its last flush.
    """
    if mode not in ("w", "a"):
        msg = f"mode must be 'w' or 'a'; got {mode!r}"
        raise ValueError(msg)
    guarded = GuardedFile(path, create=mode == "w")
    guarded.name, guarded.kept = (path if name is None else name), kept
    try:
        # The newer file format (HDF5 >= 1.10) checksums every metadata block, so a damaged
        # file is refused by HDF5 instead of misread, or read in an endless loop.
        # A chunk cache of a few whole chunks: appending batches never reads a chunk back.
        f = h5py.File(
            guarded, "w" if mode == "w" else "r+", locking=False, libver=("v110", "latest"),
            rdcc_nbytes=32 * 2**20,
        )  # fmt: skip
    except Exception:
        guarded.close()
        raise
    _GUARDS[id(f)] = guarded
    try:
        done = False
        try:
            yield f
            f.flush()
            done = True
        finally:
            try:
                f.close()
            except Exception:
                if done and guarded.error is None:
                    raise
                # else the error already raised (or the failed write) is the one to report
    except Exception as err:
        if guarded.error is not None:
            raise _space_error(guarded) from err
        raise
    finally:
        _GUARDS.pop(id(f), None)
        guarded.close()
    if guarded.error is not None:  # a write that failed while HDF5 swallowed the error
        raise _space_error(guarded)


def raise_if_failed(f):
    """Flush ``f`` (opened by :func:`open_h5_for_writing`) and raise :class:`OutOfSpaceError`
    if any of its writes failed; a long writer calls it at each progress mark."""
    f.flush()
    guarded = _GUARDS.get(id(f))
    if guarded is not None and guarded.error is not None:
        raise _space_error(guarded)


def _space_error(guarded):
    err = guarded.error
    return no_space_error(guarded.name, err, kept=guarded.kept) or OSError(
        err.errno, f"{guarded.name}: could not write: {err.strerror or err}"
    )
