"""Guarded HDF5 writes: a failed write is one error, and the file keeps its last flushed
state."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from astrounsup._h5write import GuardedFile, OutOfSpaceError, no_space_error, open_h5_for_writing

# Appends 16 rows per flushed step to /y of an existing file under a file-size limit; prints
# the steps that reported success and the error that ended it.
_APPEND = textwrap.dedent(
    """
    import json, resource, signal, sys
    import numpy as np
    from astrounsup._h5write import open_h5_for_writing, raise_if_failed
    path, limit = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    done, error = [], None
    try:
        with open_h5_for_writing(path, "a") as f:
            for k in range(1, 3000):
                n = f["y"].shape[0]
                f["y"].resize((n + 16,))
                f["y"][n:] = k
                f.attrs["steps"] = k
                raise_if_failed(f)
                done.append(k)
    except OSError as err:
        error = [type(err).__name__, str(err)]
    print(json.dumps({"done": done, "error": error}))
    """
)


@pytest.mark.parametrize("limit", [40_000, 60_000, 90_000, 150_000])
def test_a_failed_append_leaves_the_last_flushed_state(limit, tmp_path):
    path = tmp_path / "t.h5"
    with open_h5_for_writing(path, "w") as f:
        f.create_dataset("x", data=np.arange(6000, dtype="f4"))
        f.create_dataset("y", shape=(16,), maxshape=(None,), chunks=(16,), dtype="i8")
        f.attrs["steps"] = 0
    size = path.stat().st_size
    assert size < limit
    proc = subprocess.run([sys.executable, "-c", _APPEND, str(path), str(limit)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""  # nothing printed by HDF5 or h5py on the way
    result = json.loads(proc.stdout)
    assert result["error"][0] == "OutOfSpaceError"
    assert str(path) in result["error"][1]
    assert "no space left" in result["error"][1]
    last = result["done"][-1] if result["done"] else 0
    with h5py.File(path, "r") as f:  # opens, and holds exactly the last flushed step
        assert int(f.attrs["steps"]) == last
        np.testing.assert_array_equal(f["y"][...], np.repeat(np.arange(last + 1), 16))
        np.testing.assert_array_equal(f["x"][...], np.arange(6000, dtype="f4"))
    assert path.stat().st_size <= limit


def test_reads_see_held_writes_and_a_flush_writes_them(tmp_path):
    path = tmp_path / "raw.bin"
    path.write_bytes(b"0123456789")
    g = GuardedFile(path)
    g.seek(2)
    g.write(b"ab")  # inside the flushed state: held
    g.seek(12)
    g.write(b"XY")  # beyond it: written now
    assert path.read_bytes() == b"0123456789\0\0XY"
    g.seek(0)
    assert g.read(14) == b"01ab456789\0\0XY"
    g.flush()
    g.close()
    assert path.read_bytes() == b"01ab456789\0\0XY"


def test_no_space_error_names_the_file_and_leaves_other_errors():
    err = no_space_error("out/latents.h5", OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(err, OutOfSpaceError)
    assert str(err).startswith("out/latents.h5: no space left to write it")
    assert no_space_error("x", OSError(errno.EACCES, "Permission denied")) is None


def test_the_mode_is_checked(tmp_path):
    with (
        pytest.raises(ValueError, match="mode must be 'w' or 'a'; got 'r'"),
        open_h5_for_writing(tmp_path / "x.h5", "r"),
    ):
        pass
