"""Checksums of the cutout store: damage on disk is found by every reader, never used."""

import contextlib
import os
import subprocess
import sys
import textwrap

import astropy.units as u
import h5py
import numpy as np
import pytest
import xxhash
from astropy.table import QTable

from astrounsup._checksums import array_checksum, row_checksums
from astrounsup.io import CutoutDataset, StoreError, read_store, verify_store, write_store


def _table(n):
    t = QTable()
    t["object_id"] = [f"obj{i}" for i in range(n)]
    t["ra"] = np.linspace(10, 11, n) * u.deg
    t["dec"] = np.linspace(-5, -4, n) * u.deg
    return t


def _store(path, n=40, *, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, 2, 16, 16)).astype(np.float32)
    images[3, 0, :2] = np.nan  # NaN payloads are checked like any other bits
    write_store(path, images, _table(n), bands=["g", "r"], pixel_scale=0.2, **kwargs)
    return images


def _data_offset(path, name, row=0):
    """File offset of row ``row`` of dataset ``name`` (uncompressed chunks or contiguous)."""
    with h5py.File(path, "r") as f:
        d = f[name]
        row_bytes = d.dtype.itemsize * int(np.prod(d.shape[1:]))
        if d.chunks is None:
            return d.id.get_offset() + row * row_bytes
        rows = d.chunks[0]
        chunk = d.id.get_chunk_info_by_coord((row // rows * rows,) + (0,) * (d.ndim - 1))
        return chunk.byte_offset + (row % rows) * row_bytes


def _flip(path, offset, nbytes=4):
    """Change ``nbytes`` bytes at ``offset`` (each to a different value)."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        old = fh.read(nbytes)
        fh.seek(offset)
        fh.write(bytes(b ^ 0xFF for b in old))


class TestRowChecksums:
    def test_match_a_reference(self):
        images = np.random.default_rng(1).normal(size=(5, 3, 8, 8)).astype(np.float32)
        expected = [xxhash.xxh3_64_intdigest(images[i].tobytes()) for i in range(5)]
        assert row_checksums(images).tolist() == expected
        assert row_checksums(images, [4, 1]).tolist() == [expected[4], expected[1]]

    def test_are_of_the_stored_little_endian_float32(self):
        images = np.random.default_rng(2).normal(size=(3, 1, 4, 4))
        as_stored = images.astype("<f4")
        assert row_checksums(images.astype(">f4")).tolist() == row_checksums(as_stored).tolist()
        assert row_checksums(images).tolist() == row_checksums(as_stored).tolist()

    def test_one_changed_bit_changes_the_checksum(self):
        images = np.zeros((2, 1, 4, 4), dtype=np.float32)
        before = row_checksums(images)
        images.view(np.uint32)[1, 0, 2, 3] ^= 1
        after = row_checksums(images)
        assert after[0] == before[0]
        assert after[1] != before[1]

    def test_array_checksum_refuses_objects(self):
        with pytest.raises(TypeError, match="holds Python objects"):
            array_checksum(np.array(["a", None], dtype=object))


class TestDamagedStores:
    """The issue's probe: bytes changed in a written store are found on read."""

    @pytest.mark.parametrize("rows", [[7], [0, 13, 14, 39]])
    def test_damaged_cutouts_are_named_by_every_reader(self, tmp_path, rows):
        path = tmp_path / "s.h5"
        images = _store(path)
        for r in rows:
            _flip(path, _data_offset(path, "images", r) + 100)
        ids = ", ".join(f"obj{r}" for r in rows)
        with pytest.raises(
            StoreError, match=rf"s\.h5: {len(rows)} cutouts? damaged \(object_id {ids}\)"
        ):
            read_store(path)
        assert verify_store(path).tolist() == rows
        ds = CutoutDataset(path)
        with pytest.raises(StoreError, match=f"object_id obj{rows[0]}"):
            for _ in ds.loader(8):
                pass
        with pytest.raises(StoreError, match=f"object_id obj{rows[-1]}"):
            ds[rows[-1]]
        # The intact cutouts still read, and are what was written.
        good = [i for i in range(40) if i not in rows and i != 3]  # 3 has NaN, filled
        np.testing.assert_array_equal(CutoutDataset(path)[good][0].numpy(), images[good])

    def test_the_raw_chunk_path_is_the_one_checked(self, tmp_path):
        path = tmp_path / "s.h5"
        _store(path)
        ds = CutoutDataset(path)
        assert ds._source._raw is not None  # the fast path reads this store
        _flip(path, _data_offset(path, "images", 5))
        with pytest.raises(StoreError, match="object_id obj5"):
            next(iter(ds.loader(40)))

    @pytest.mark.parametrize("compression", ["gzip", "lzf"])
    def test_compressed_stores(self, tmp_path, compression):
        path = tmp_path / "s.h5"
        _store(path, compression=compression)
        with h5py.File(path, "r") as f:
            info = f["images"].id.get_chunk_info(0)
        _flip(path, info.byte_offset + info.size // 2, nbytes=8)
        with pytest.raises(StoreError, match=r"s\.h5: "):
            read_store(path)
        with pytest.raises(StoreError, match=r"s\.h5: "):
            next(iter(CutoutDataset(path).loader(40)))

    @pytest.mark.parametrize("name", ["catalog", "bad_pixels"])
    def test_damaged_metadata(self, tmp_path, name):
        path = tmp_path / "s.h5"
        _store(path)
        _flip(path, _data_offset(path, name, 2))
        with pytest.raises(StoreError, match=rf"s\.h5: /{name} is damaged"):
            CutoutDataset(path)
        with pytest.raises(StoreError, match=rf"/{name} is damaged"):
            verify_store(path)

    def test_damaged_attributes(self, tmp_path):
        path = tmp_path / "s.h5"
        _store(path)
        with h5py.File(path, "a") as f:
            f.attrs["bands"] = np.array(["r", "g"], dtype=h5py.string_dtype())
        with pytest.raises(StoreError, match=r"s\.h5: a damaged store: its attributes"):
            read_store(path)

    def test_a_change_after_the_first_read_is_found(self, tmp_path):
        path = tmp_path / "s.h5"
        _store(path)
        ds = CutoutDataset(path)
        for _ in ds.loader(16):
            pass  # every cutout checked once by this process
        _flip(path, _data_offset(path, "images", 21))
        with pytest.raises(StoreError, match="object_id obj21"):
            for _ in ds.loader(16):
                pass

    def test_intact_store_verifies(self, tmp_path):
        path = tmp_path / "s.h5"
        images = _store(path)
        assert verify_store(path).tolist() == []
        np.testing.assert_array_equal(read_store(path)[0], images)

    def test_a_store_without_checksums_reads_but_cannot_be_verified(self, tmp_path):
        path = tmp_path / "s.h5"
        images = _store(path)
        with h5py.File(path, "a") as f:  # as format version 2 wrote it
            del f["checksums"]
            del f.attrs["attrs_checksum"]
            f.attrs["format_version"] = 2
        np.testing.assert_array_equal(read_store(path)[0], images)
        with pytest.raises(StoreError, match="format version 2 has no checksums"):
            verify_store(path)


def test_random_damage_is_found_or_harmless(tmp_path):
    """Bytes changed anywhere that matters in a store (its HDF5 metadata, the cutouts, the
    catalog at its end; not the unused rest of the one chunk): every read either returns
    what was written or raises StoreError, never another error, other values, or a hang."""
    clean = tmp_path / "clean.h5"
    images = _store(clean, n=24)
    size = clean.stat().st_size
    with h5py.File(clean, "r") as f:
        chunk = f["images"].id.get_chunk_info(0)
    used = chunk.byte_offset + images.nbytes
    regions = [
        (0, chunk.byte_offset),
        (chunk.byte_offset, used),
        (chunk.byte_offset + chunk.size, size),
    ]
    rng = np.random.default_rng(7)
    outcomes = {"same": 0, "refused": 0}
    for trial in range(80):
        path = tmp_path / f"t{trial}.h5"
        path.write_bytes(clean.read_bytes())
        for _ in range(int(rng.integers(1, 4))):
            lo, hi = regions[int(rng.integers(0, len(regions)))]
            _flip(path, int(rng.integers(lo, hi - 8)), nbytes=int(rng.integers(1, 8)))
        try:
            got, table, attrs = read_store(path)
            batches = [b[0].numpy() for b in CutoutDataset(path).loader(24)]
            damaged = verify_store(path)
        except StoreError:
            outcomes["refused"] += 1
            continue
        np.testing.assert_array_equal(got, images)
        assert np.isfinite(batches[0]).all()  # NaN filled
        assert damaged.size == 0
        assert table["object_id"].tolist() == [f"obj{i}" for i in range(24)]
        assert attrs["bands"] == ("g", "r")
        assert attrs["pixel_scale"] == 0.2
        outcomes["same"] += 1
    assert outcomes["refused"] > 20, outcomes
    assert outcomes["same"] > 5, outcomes


class TestStructure:
    @pytest.mark.parametrize(
        ("damage", "match"),
        [
            (lambda f: f.__delitem__("catalog"), r"it lacks /catalog"),
            (lambda f: f.__delitem__("images"), r"it lacks /images"),
            (lambda f: f.attrs.__delitem__("bands"), r"it lacks the 'bands' attribute"),
            (lambda f: f.__delitem__("checksums"), r"it lacks /checksums"),
        ],
    )
    def test_missing_parts_are_named(self, tmp_path, damage, match):
        path = tmp_path / "s.h5"
        _store(path)
        with h5py.File(path, "a") as f:
            damage(f)
        with pytest.raises(StoreError, match=rf"s\.h5: a damaged store: {match}"):
            read_store(path)

    @staticmethod
    @contextlib.contextmanager
    def _holding(code):
        """Another process that runs ``code`` (which prints "ready") until the block ends."""
        script = f"import sys\n{textwrap.dedent(code)}\n    print('ready', flush=True)\n"
        script += "    sys.stdin.read()\n"
        holder = subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert holder.stdout.readline().strip() == "ready"
            yield
        finally:
            holder.communicate("")

    def test_a_store_open_for_writing_elsewhere(self, tmp_path):
        path = tmp_path / "s.h5"
        _store(path)
        opened = f"import h5py\nwith h5py.File({str(path)!r}, 'a'):"
        busy = "another program has it open for writing"
        with self._holding(opened), pytest.raises(StoreError, match=busy):
            read_store(path)

    def test_an_incomplete_store_being_written(self, tmp_path):
        from astrounsup._locks import output_lock

        path = tmp_path / "s.h5"
        _store(path)
        with h5py.File(path, "a") as f:
            f.attrs["complete"] = False
        lock = f"from astrounsup._locks import output_lock\nwith output_lock({str(path)!r}):"
        busy = "another process is writing this store now"
        with self._holding(lock), pytest.raises(StoreError, match=busy):
            read_store(path)
        with pytest.raises(StoreError, match="its writer was interrupted"):
            read_store(path)
        with output_lock(path), pytest.raises(StoreError, match="its writer was interrupted"):
            read_store(path)  # this process's own write is not "another process"
        assert os.path.exists(path)


class TestCommands:
    def test_info_verify(self, tmp_path, capsys):
        from astrounsup.cli import main

        path = tmp_path / "s.h5"
        _store(path)
        assert main(["info", str(path), "--verify"]) == 0
        out = capsys.readouterr().out
        assert "xxh3_64 of every cutout" in out
        assert "all 40 cutouts match their checksums" in out
        _flip(path, _data_offset(path, "images", 9) + 40)
        assert main(["info", str(path), "--verify"]) == 1
        assert "1 of 40 cutouts DAMAGED: obj9" in capsys.readouterr().out

    def test_a_folder_is_not_a_store(self, tmp_path, capsys):
        from astrounsup.cli import main

        _store(tmp_path / "cutouts.h5")
        assert main(["info", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "not a cutout store (it holds cutouts.h5); a folder of shards needs" in err

    def test_training_on_a_damaged_store_stops_naming_the_cutout(self, tmp_path, capsys):
        from astrounsup.cli import main

        path = tmp_path / "s.h5"
        _store(path, n=24)
        _flip(path, _data_offset(path, "images", 17) + 12)
        cfg = tmp_path / "c.toml"
        cfg.write_text("[model]\nlatent_dim = 4\nwidths = [4, 8]\n[training]\nbatch_size = 8\n")
        status = main(
            ["train", "--data", str(path), "--model", "cae", "--config", str(cfg), "--out",
             str(tmp_path / "run"), "--steps", "6", "--quiet"]
        )  # fmt: skip
        err = capsys.readouterr().err
        assert status == 2, err
        assert err.count("\n") == 1
        assert "object_id obj17" in err


def test_ingest_writes_checksums_that_match(cube_files, tmp_path):
    from astrounsup.io import ingest

    report = ingest(cube_files[0].parent, tmp_path / "s.h5", progress=False)
    assert report.n_written == 6
    with h5py.File(tmp_path / "s.h5", "r") as f:
        stored = f["checksums"][...]
        np.testing.assert_array_equal(stored, row_checksums(f["images"][...]))
    assert verify_store(tmp_path / "s.h5").tolist() == []
