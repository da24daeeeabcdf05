import functools
import itertools
import json
import operator
import os
import shutil

import h5py
import numpy as np
import pytest
import torch
from astropy.table import Table

from astrounsup.cli import main
from astrounsup.io import (
    CutoutDataset,
    StoreError,
    ingest,
    is_sharded,
    read_store,
    shard_paths,
    source_kind,
    store_info,
    verify_store,
    write_manifest,
    write_store,
)


def _store(path, survey, rows, **kw):
    s = survey
    return write_store(
        path, s.images[rows], s.table[rows], bands=s.bands, pixel_scale=s.pixel_scale, **kw
    )


@pytest.fixture
def split(small_survey, tmp_path):
    """The small survey as one store and as three shards (20, 25, 15 cutouts) with a
    manifest."""
    whole = _store(tmp_path / "whole.h5", small_survey, slice(None))
    folder = tmp_path / "shards"
    folder.mkdir()
    bounds = [0, 20, 45, 60]
    paths = [
        _store(folder / f"part{k}.h5", small_survey, slice(lo, hi))
        for k, (lo, hi) in enumerate(itertools.pairwise(bounds))
    ]
    write_manifest(folder, paths)
    return whole, folder, paths


class TestReading:
    def test_shards_read_as_the_one_store(self, split):
        whole, folder, _ = split
        a, b = CutoutDataset(whole), CutoutDataset(folder)
        assert b.shape == a.shape
        assert b.bands == a.bands
        assert b.pixel_scale == a.pixel_scale
        assert list(b.table["object_id"]) == list(a.table["object_id"])
        rows = np.random.default_rng(0).permutation(60)
        for idx in (rows[:17], np.arange(15, 50), np.arange(21, 30), rows):
            xa, ma, _ = a[idx]
            xb, mb, _ = b[idx]
            assert torch.equal(xa, xb)
            assert torch.equal(ma, mb)
        assert int(a[np.arange(60)][1].sum()) > 0  # the survey has bad pixels to repair

    def test_the_manifest_folder_file_and_list_are_the_same_survey(self, split):
        whole, folder, paths = split
        ids = list(CutoutDataset(whole).table["object_id"])
        for source in (folder, folder / "shards.json", paths, [str(p) for p in paths]):
            assert source_kind(source) == "shards"
            assert list(CutoutDataset(source).table["object_id"]) == ids
        (folder / "shards.json").unlink()  # a folder of stores is not one survey
        assert source_kind(folder) == "fits"
        with pytest.raises(StoreError, match=r"a folder of shards needs shards.json"):
            store_info(folder)

    def test_normalised_batches_match(self, split):
        from astrounsup.io import AsinhNormalizer

        whole, folder, _ = split
        a = CutoutDataset(whole)
        norm = AsinhNormalizer().fit(a[np.arange(60)][0])
        xa = a.with_normalizer(norm)[np.arange(60)][0]
        xb = CutoutDataset(folder, normalizer=norm)[np.arange(60)][0]
        torch.testing.assert_close(xa, xb, rtol=0, atol=0)

    def test_read_store_info_and_verify(self, split):
        whole, folder, _ = split
        ia, ta, _ = read_store(whole)
        ib, tb, attrs = read_store(folder)
        np.testing.assert_array_equal(ia, ib)
        assert list(ta["object_id"]) == list(tb["object_id"])
        assert attrs["n_cutouts"] == 60
        info = store_info(folder)
        assert info["shape"] == (60, 3, 64, 64)
        assert len(info["shards"]) == 3
        assert verify_store(folder).tolist() == []

    def test_damage_in_a_later_shard_is_named_by_row_of_the_whole(self, split, capsys):
        _, folder, paths = split
        with h5py.File(paths[1], "r+") as f:
            f["images"][3, 0, 10, 10] += 1.0  # row 20 + 3 of the whole
        assert verify_store(folder).tolist() == [23]
        oid = CutoutDataset(folder).table["object_id"][23]
        assert main(["info", str(folder), "--verify"]) == 1
        out = capsys.readouterr().out
        assert f"1 of 60 cutouts DAMAGED: {oid}" in out
        with pytest.raises(StoreError, match=f"part1.h5: 1 cutout damaged .object_id {oid}"):
            CutoutDataset(folder)[[22, 23]]

    def test_info_describes_the_whole(self, split, capsys):
        _, folder, _ = split
        assert main(["info", str(folder)]) == 0
        out = capsys.readouterr().out
        assert "astrounsup.shards v1: 3 stores" in out
        assert "15 to 25 cutouts each: part0.h5, part1.h5, part2.h5" in out
        assert "60 of 3 bands x 64 x 64 px" in out


class TestBadShards:
    def test_different_bands(self, small_survey, tmp_path):
        s = small_survey
        _store(tmp_path / "a.h5", s, slice(0, 5))
        write_store(tmp_path / "b.h5", s.images[5:10, :2], s.table[5:10], bands=("g", "r"),
                    pixel_scale=s.pixel_scale)  # fmt: skip
        with pytest.raises(StoreError, match=r"b.h5: bands \(g, r\) differ from .*a.h5's \(g, "):
            CutoutDataset([tmp_path / "a.h5", tmp_path / "b.h5"])

    def test_different_cutout_sizes(self, small_survey, tmp_path):
        s = small_survey
        _store(tmp_path / "a.h5", s, slice(0, 5))
        write_store(tmp_path / "b.h5", s.images[5:10, :, :32, :32], s.table[5:10],
                    bands=s.bands, pixel_scale=s.pixel_scale)  # fmt: skip
        with pytest.raises(StoreError, match=r"b.h5: cutout shape .* \(3, 32, 32\) differ"):
            CutoutDataset([tmp_path / "a.h5", tmp_path / "b.h5"])

    def test_different_pixel_scales(self, small_survey, tmp_path):
        s = small_survey
        _store(tmp_path / "a.h5", s, slice(0, 5))
        write_store(tmp_path / "b.h5", s.images[5:10], s.table[5:10], bands=s.bands,
                    pixel_scale=0.2)  # fmt: skip
        with pytest.raises(StoreError, match=r"b.h5: pixel scale 0.2 arcsec differs"):
            CutoutDataset([tmp_path / "a.h5", tmp_path / "b.h5"])

    def test_an_object_in_two_shards(self, small_survey, tmp_path):
        _store(tmp_path / "a.h5", small_survey, slice(0, 5))
        _store(tmp_path / "b.h5", small_survey, slice(4, 9))
        oid = small_survey.table["object_id"][4]
        with pytest.raises(StoreError, match=f"b.h5: object_id {oid} is also in .*a.h5"):
            CutoutDataset([tmp_path / "a.h5", tmp_path / "b.h5"])
        with pytest.raises(StoreError, match="ids are unique across shards"):
            write_manifest(tmp_path, [tmp_path / "a.h5", tmp_path / "b.h5"])

    def test_a_missing_shard(self, split):
        _, folder, paths = split
        paths[1].unlink()
        with pytest.raises(StoreError, match=r"shards.json: shard .*part1.h5 is missing"):
            CutoutDataset(folder)
        assert main(["info", str(folder)]) == 2

    def test_a_shard_replaced_after_the_manifest(self, small_survey, split):
        _, folder, paths = split
        _store(paths[2], small_survey, slice(45, 50))
        with pytest.raises(StoreError, match=r"part2.h5: holds 5 cutouts where the manifest"):
            CutoutDataset(folder)

    def test_manifests_that_cannot_be_read(self, tmp_path):
        bad = tmp_path / "m.json"
        bad.write_text("{not json")
        with pytest.raises(StoreError, match=r"m.json: not a readable manifest of shards"):
            CutoutDataset(bad)
        bad.write_text(json.dumps({"shards": "a.h5"}))
        with pytest.raises(StoreError, match="needs a list 'shards' of store paths"):
            CutoutDataset(bad)
        bad.write_text(json.dumps({"shards": []}))
        with pytest.raises(StoreError, match=r"m.json: names no shard"):
            CutoutDataset(bad)
        with pytest.raises(StoreError, match=r"none.json: no such manifest of shards"):
            CutoutDataset(tmp_path / "none.json")

    def test_a_folder_of_fits_is_not_shards(self, cube_files):
        assert not is_sharded(cube_files[0].parent)
        assert source_kind(cube_files[0].parent) == "fits"


class TestIngestShards:
    def test_every_object_in_exactly_one_shard(self, messy_dir, tmp_path):
        one = ingest(messy_dir, tmp_path / "one.h5", progress=False)
        rep = ingest(messy_dir, tmp_path / "sh", shard_size=4, workers=2, progress=False)
        assert [p.name for p in rep.shards] == ["shard-00000.h5", "shard-00001.h5"]
        assert (rep.n_written, rep.n_rejected) == (one.n_written, one.n_rejected) == (6, 5)
        # 11 entries: 4 good, 2 good + 2 bad, and 3 bad (no store, only its rejects)
        assert not (tmp_path / "sh" / "shard-00002.h5").exists()
        assert (tmp_path / "sh" / "shard-00002.rejects.ecsv").exists()
        ia, ta, _ = read_store(tmp_path / "one.h5")
        ib, tb, _ = read_store(tmp_path / "sh")
        np.testing.assert_array_equal(ia, ib)
        assert list(ta["object_id"]) == list(tb["object_id"])
        ids = [list(read_store(p)[1]["object_id"]) for p in rep.shards]
        assert sorted(functools.reduce(operator.iadd, ids, [])) == sorted(ta["object_id"])
        assert Table.read(one.rejects).pformat() == Table.read(rep.rejects).pformat()
        manifest = json.loads((tmp_path / "sh" / "shards.json").read_text())
        assert [s["n_cutouts"] for s in manifest["shards"]] == [4, 2]
        assert manifest["n_cutouts"] == 6
        assert manifest["bands"] == ["g", "r", "i"]

    def test_a_repeated_id_in_a_later_shard_is_rejected(self, cube_files, tmp_path):
        names = [p.name for p in cube_files]
        cat = Table({"file": names + names[:1], "object_id": [*range(6), 0]})
        cat.write(tmp_path / "cat.csv")
        rep = ingest(cube_files[0].parent, tmp_path / "sh", catalog=tmp_path / "cat.csv",
                     shard_size=3, progress=False)  # fmt: skip
        assert (rep.n_written, rep.n_rejected) == (6, 1)
        reason = Table.read(rep.rejects)["reason"][0]
        assert "object 0: duplicate object_id (first ingested from entry 0)" in reason

    def test_a_killed_ingest_redoes_only_the_unfinished_shard(self, messy_dir, tmp_path):
        import subprocess
        import sys

        ingest(messy_dir, tmp_path / "whole", shard_size=4, progress=False)
        killer = KILL_IN_SHARD.format(src=messy_dir, dest=tmp_path / "part")
        run = subprocess.run([sys.executable, "-c", killer], capture_output=True, text=True)
        assert run.returncode == -9, run.stderr
        first = tmp_path / "part" / "shard-00000.h5"
        assert store_info(first)["complete"]
        assert not (tmp_path / "part" / "shards.json").exists()
        before = os.stat(first).st_mtime_ns
        with pytest.raises(StoreError, match=r"not a complete|incomplete"):
            CutoutDataset(tmp_path / "part" / "shard-00001.h5")
        rep = ingest(messy_dir, tmp_path / "part", shard_size=4, progress=False)
        assert rep.resumed_from == 4 + 2  # shard 0 whole, and one batch of 2 of shard 1
        assert os.stat(first).st_mtime_ns == before
        for name in ("shard-00000.h5", "shard-00001.h5"):
            a, b = read_store(tmp_path / "whole" / name), read_store(tmp_path / "part" / name)
            np.testing.assert_array_equal(a[0], b[0])
            assert list(a[1]["object_id"]) == list(b[1]["object_id"])
        again = ingest(messy_dir, tmp_path / "part", shard_size=4, progress=False)
        assert (again.n_written, again.n_rejected, again.resumed_from) == (6, 5, 11)

    def test_cli(self, messy_dir, tmp_path, capsys):
        dest = tmp_path / "sh"
        assert main(["ingest", str(messy_dir), str(dest), "--shard-size", "5", "--quiet"]) == 0
        out = capsys.readouterr().out
        assert "6 cutouts written in 2 shards, 5 rejected" in out
        assert main(["info", str(dest)]) == 0
        assert f"rejects: 5 in {dest / 'rejects.ecsv'}" in capsys.readouterr().out

    def test_bad_options(self, messy_dir, tmp_path, capsys):
        with pytest.raises(ValueError, match="shard_size must be a positive integer; got 0"):
            ingest(messy_dir, tmp_path / "sh", shard_size=0)
        with pytest.raises(ValueError, match=r"dest: with shard_size, the folder .* got the file"):
            ingest(messy_dir, tmp_path / "s.h5", shard_size=4)
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "notes.txt").write_text("mine")
        with pytest.raises(FileExistsError, match="other: a folder holding other files"):
            ingest(messy_dir, tmp_path / "other", shard_size=4)
        ingest(messy_dir, tmp_path / "sh", shard_size=4, progress=False)
        with pytest.raises(FileExistsError, match="sh: shards of another ingest"):
            ingest(messy_dir, tmp_path / "sh", shard_size=5, progress=False)
        rep = ingest(messy_dir, tmp_path / "sh", shard_size=5, overwrite=True, progress=False)
        assert len(rep.shards) == 2
        assert not (tmp_path / "sh" / "shard-00002.h5").exists()
        assert main(["ingest", str(messy_dir), str(tmp_path / "x.h5"), "--shard-size", "3"]) == 2
        err = capsys.readouterr().err
        assert "with shard_size, the folder" in err
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1

    def test_nothing_ingestable(self, tmp_path):
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "a.fits").write_bytes(b"")
        with pytest.raises(ValueError, match="nothing could be ingested from 1 entries"):
            ingest(tmp_path / "src", tmp_path / "sh", shard_size=4, progress=False)
        assert not (tmp_path / "sh" / "shards.json").exists()


KILL_IN_SHARD = """
import os, signal
import astrounsup.io.ingestion as ing
real, count = ing._commit, [0]
def commit_then_die(*args, **kwargs):
    real(*args, **kwargs)
    count[0] += 1
    if count[0] == 3:  # shard 0 took two batches of 2; die after shard 1's first
        os.kill(os.getpid(), signal.SIGKILL)
ing._commit = commit_then_die
ing._BATCH = 2
ing.ingest("{src}", "{dest}", shard_size=4, progress=False)
"""


def test_shard_paths_of_a_manifest_are_relative_to_it(split):
    _, folder, paths = split
    moved = folder.parent / "moved"
    shutil.move(folder, moved)
    found, expected = shard_paths(moved / "shards.json")
    assert [p.name for p in found] == [p.name for p in paths]
    assert [e["n_cutouts"] for e in expected] == [20, 25, 15]
