"""Output locks (one writer per output) and the clean-up of interrupted writes."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from astrounsup._atomic import atomic_directory, atomic_path
from astrounsup._locks import OutputBusyError, output_lock, remove_stale_partials

# Holds the lock of argv[1] until stdin closes.
_HOLDER = textwrap.dedent(
    """
    import sys
    from astrounsup._locks import output_lock
    with output_lock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()
    """
)


@pytest.fixture
def held(tmp_path):
    """A process holding the lock of ``tmp_path / "out.h5"``."""
    target = tmp_path / "out.h5"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(target)], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    yield target, proc
    proc.stdin.close()
    proc.wait(timeout=30)
    proc.stdout.close()


def test_a_second_writer_is_refused_naming_the_output(held):
    target, _ = held
    busy = r"out\.h5: another process is writing it now"
    with pytest.raises(OutputBusyError, match=busy), output_lock(target):
        pass
    with pytest.raises(OutputBusyError, match=busy), atomic_path(target):
        pass
    assert not target.exists()


def test_the_lock_goes_with_its_process_however_it_ends(held):
    target, proc = held
    proc.kill()  # SIGKILL: no clean-up of its own
    proc.wait(timeout=30)
    assert (target.parent / ".out.h5.lock").exists()  # left by the killed holder
    with output_lock(target):  # yet free
        pass
    assert not (target.parent / ".out.h5.lock").exists()


def test_locks_are_reentrant_within_a_process(tmp_path):
    target = tmp_path / "out"
    with output_lock(target), output_lock(target), atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("a")
    assert (target / "a.txt").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_partial_files_are_removed_by_the_next_writer(tmp_path):
    target = tmp_path / "cat.ecsv"
    (tmp_path / ".cat.ecsv.abc123.partial").write_text("half")
    (tmp_path / ".cat.ecsv.dir9.partial").mkdir()
    (tmp_path / ".other.ecsv.x.partial").write_text("not ours")
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.ecsv.x.partial", "cat.ecsv"]
    assert remove_stale_partials(tmp_path / "missing" / "x") == 0


def test_a_folder_moved_aside_by_a_killed_replacement_comes_back(tmp_path):
    target = tmp_path / "report"
    (tmp_path / ".report.old").mkdir()
    (tmp_path / ".report.old" / "index.html").write_text("old")
    with pytest.raises(RuntimeError, match="fails"), atomic_directory(target):
        raise RuntimeError("fails before replacing")
    assert (target / "index.html").read_text() == "old"


def test_a_write_without_space_names_the_destination_and_leaves_it(tmp_path):
    target = tmp_path / "cat.ecsv"
    target.write_text("before")

    def full(tmp):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    no_space = r"cat\.ecsv: no space left to write it"
    with pytest.raises(OSError, match=no_space), atomic_path(target) as tmp:
        full(tmp)
    assert target.read_text() == "before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.ecsv"]
