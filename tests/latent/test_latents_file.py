import h5py
import numpy as np
import pytest
from astropy.table import QTable

from astrounsup.latent import is_latents_file, read_latents, write_latents


def test_read_latents_names_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.h5: no such latents file"):
        read_latents(tmp_path / "nothing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"other\.h5: not an astrounsup latents file"):
        read_latents(tmp_path / "other.h5")
    write_latents(tmp_path / "z.h5", np.ones((2, 3)), QTable({"object_id": ["a", "b"]}))
    z, table, _ = read_latents(tmp_path / "z.h5")
    assert z.shape == (2, 3)
    assert list(table["object_id"]) == ["a", "b"]


def test_latents_files_carry_provenance_and_settings(tmp_path):
    path = write_latents(
        tmp_path / "z.h5", np.zeros((3, 2)), QTable({"object_id": ["a", "b", "c"]}),
        meta={"recipe": "cae", "store": None, "checkpoint": tmp_path / "run" / "last.pt"},
        step="astrounsup embed",
    )  # fmt: skip
    _, _, attrs = read_latents(path)
    assert attrs["step"] == "astrounsup embed"
    assert {"astrounsup_version", "date", "versions"} <= set(attrs)
    assert attrs["checkpoint"] == str(tmp_path / "run" / "last.pt")
    assert "store" not in attrs  # None is left out, not written as "None"
    assert is_latents_file(path)
    assert not is_latents_file(tmp_path / "missing.h5")
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    assert not is_latents_file(tmp_path / "x.h5")


def test_write_latents_refuses_a_table_of_other_length(tmp_path):
    with pytest.raises(ValueError, match=r"one row per table row \(2\); got shape \(3, 4\)"):
        write_latents(tmp_path / "z.h5", np.zeros((3, 4)), QTable({"object_id": ["a", "b"]}))
    assert not (tmp_path / "z.h5").exists()


@pytest.mark.parametrize(
    ("ids", "vectors", "match"),
    [
        (["a", "b", "a"], np.zeros((3, 2)), r"1 object ids repeat, e\.g\. \['a'\]"),
        (["a", " ", "c"], np.zeros((3, 2)), r"1 blank object ids \(first at row 1\)"),
        (["a", "b", "c"], [[0, 0], [0, np.nan], [0, 0]],
         r"1 latent vectors are not finite \(first at row 1\)"),
    ],
)  # fmt: skip
def test_damaged_latents_are_refused_naming_the_file(ids, vectors, match, tmp_path):
    path = write_latents(tmp_path / "l.h5", np.asarray(vectors), QTable({"object_id": ids}))
    with pytest.raises(ValueError, match=f"l.h5: {match}"):
        read_latents(path)


def test_a_truncated_latents_file_is_refused_naming_it(tmp_path):
    path = write_latents(tmp_path / "l.h5", np.eye(3), QTable({"object_id": ["a", "b", "c"]}))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"l\.h5: damaged latents file \(.*\); embed again"):
        read_latents(path)


@pytest.mark.parametrize("name", ["latents", "catalog"])
def test_changed_bytes_in_a_latents_file_are_found(name, tmp_path):
    z = np.random.default_rng(0).normal(size=(20, 4))
    path = write_latents(tmp_path / "l.h5", z, QTable({"object_id": [f"o{i}" for i in range(20)]}))
    with h5py.File(path, "r") as f:
        offset = f[name].id.get_offset()
    with open(path, "r+b") as fh:  # one bit, in the 6th row or the 8th id
        fh.seek(offset + 21)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(ValueError, match=rf"l\.h5: damaged latents file: /{name} differs from"):
        read_latents(path)


class TestStreamedAndMerged:
    def test_the_writer_gives_the_file_write_latents_gives(self, tmp_path):
        from astrounsup.latent import LatentsWriter

        z = np.random.default_rng(0).normal(size=(10, 3)).astype("f4")
        table = QTable({"object_id": [str(i) for i in range(10)]})
        write_latents(tmp_path / "a.h5", z, table)
        with LatentsWriter(tmp_path / "b.h5", 10) as w:
            for lo in range(0, 10, 4):
                w.append(z[lo : lo + 4])
            w.finish(table)
        with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb:
            assert fa["latents"].attrs["checksum"] == fb["latents"].attrs["checksum"]
        np.testing.assert_array_equal(read_latents(tmp_path / "b.h5")[0], z)

    def test_a_writer_left_early_leaves_nothing(self, tmp_path):
        from astrounsup.latent import LatentsWriter

        def write(blocks):
            with LatentsWriter(tmp_path / "b.h5", 4) as w:
                for block in blocks:
                    w.append(block)

        with pytest.raises(ValueError, match=r"b\.h5: LatentsWriter left without finish"):
            write([np.zeros((2, 3))])
        with pytest.raises(ValueError, match=r"at most 2 more rows; got \(3, 3\)"):
            write([np.zeros((2, 3)), np.zeros((3, 3))])
        assert list(tmp_path.iterdir()) == []

    def test_merging_refuses_what_does_not_make_one_set(self, tmp_path):
        from astrounsup.latent import merge_latents

        a = write_latents(tmp_path / "a.h5", np.zeros((2, 3)), QTable({"object_id": ["x", "y"]}))
        b = write_latents(tmp_path / "b.h5", np.zeros((1, 4)), QTable({"object_id": ["z"]}))
        c = write_latents(tmp_path / "c.h5", np.zeros((1, 3)), QTable({"object_id": ["y"]}))
        with pytest.raises(ValueError, match=r"latents of different dimensions \[3, 4\]"):
            merge_latents([a, b], tmp_path / "m.h5")
        with pytest.raises(ValueError, match=r"m\.h5: 1 object ids repeat, e\.g\. \['y'\]"):
            merge_latents([a, c], tmp_path / "m.h5")
        with pytest.raises(ValueError, match=r"d\.h5: part of the latents is missing"):
            merge_latents([a, tmp_path / "d.h5"], tmp_path / "m.h5")
        assert not (tmp_path / "m.h5").exists()
        e = write_latents(tmp_path / "e.h5", np.ones((1, 3)), QTable({"object_id": ["w"]}))
        merged = merge_latents([a, e], tmp_path / "m.h5")
        z, t, _ = read_latents(merged)
        assert z.tolist() == [[0, 0, 0], [0, 0, 0], [1, 1, 1]]
        assert list(t["object_id"]) == ["x", "y", "w"]

    def test_a_folder_without_a_manifest_is_not_a_set(self, tmp_path):
        with pytest.raises(ValueError, match="a folder, not a latents set"):
            read_latents(tmp_path)
