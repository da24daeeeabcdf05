import astropy.units as u
import h5py
import numpy as np
import pytest
from astropy.table import QTable

import astrounsup.io.hdf5 as hdf5_module
from astrounsup.io import StoreError, read_store, write_store


def _table(n):
    t = QTable()
    t["object_id"] = [f"obj{i}" for i in range(n)]
    t["ra"] = np.linspace(10, 11, n) * u.deg
    t["dec"] = np.linspace(-5, -4, n) * u.deg
    t["psf_fwhm"] = np.ones((n, 2)) * u.arcsec
    t["kind"] = ["lens"] * n
    t.meta["seed"] = "3"
    return t


class TestStoreRoundTrip:
    def test_survey_round_trip(self, small_survey, tmp_path):
        path = write_store(
            tmp_path / "s.h5",
            small_survey.images,
            small_survey.table,
            bands=small_survey.bands,
            pixel_scale=small_survey.pixel_scale,
        )
        images, table, attrs = read_store(path)
        np.testing.assert_array_equal(images, small_survey.images)  # NaNs included
        assert attrs["bands"] == ("g", "r", "i")
        assert attrs["pixel_scale"] == pytest.approx(0.263)
        assert attrs["flux_unit"] == "nmgy"
        assert attrs["complete"]
        assert table.colnames == [*small_survey.table.colnames, "bad_fraction", "bad_pixel_flag"]
        assert table["psf_fwhm"].unit == u.arcsec
        assert table.meta["seed"] == "11"
        for col in small_survey.table.colnames:
            np.testing.assert_array_equal(
                np.asarray(table[col]), np.asarray(small_survey.table[col])
            )

    def test_chunks_hold_whole_cutouts(self, tmp_path):
        images = np.zeros((50, 2, 16, 16), dtype=np.float32)
        write_store(tmp_path / "s.h5", images, _table(50), bands=["g", "r"], pixel_scale=0.2)
        with h5py.File(tmp_path / "s.h5") as f:
            assert f["images"].chunks[1:] == (2, 16, 16)
            assert f["images"].compression is None


class TestStoreSafety:
    def test_interrupted_write_leaves_nothing(self, tmp_path, monkeypatch):
        def boom(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(hdf5_module, "write_table_hdf5", boom)
        with pytest.raises(RuntimeError, match="disk full"):
            write_store(
                tmp_path / "s.h5", np.zeros((3, 1, 8, 8)), _table(3), bands=["g"], pixel_scale=0.2
            )
        assert list(tmp_path.iterdir()) == []

    def test_interrupted_rewrite_keeps_old_store(self, tmp_path, monkeypatch):
        path = write_store(
            tmp_path / "s.h5", np.ones((3, 1, 8, 8)), _table(3), bands=["g"], pixel_scale=0.2
        )

        def boom(*args, **kwargs):
            raise RuntimeError("killed")

        monkeypatch.setattr(hdf5_module, "write_table_hdf5", boom)
        with pytest.raises(RuntimeError):
            write_store(path, np.zeros((3, 1, 8, 8)), _table(3), bands=["g"], pixel_scale=0.2)
        images, _, _ = read_store(path)
        np.testing.assert_array_equal(images, 1.0)

    def test_incomplete_store_is_refused(self, tmp_path):
        path = write_store(
            tmp_path / "s.h5", np.zeros((3, 1, 8, 8)), _table(3), bands=["g"], pixel_scale=0.2
        )
        with h5py.File(path, "a") as f:
            f.attrs["complete"] = False
        with pytest.raises(StoreError, match=r"s\.h5: the store is incomplete"):
            read_store(path)

    def test_foreign_files_are_refused(self, tmp_path):
        other = tmp_path / "other.h5"
        with h5py.File(other, "w") as f:
            f["x"] = 1
        with pytest.raises(StoreError, match=r"other\.h5: not an astrounsup cutout store"):
            read_store(other)
        junk = tmp_path / "junk.h5"
        junk.write_bytes(b"not hdf5 at all")
        with pytest.raises(StoreError, match=r"junk\.h5: cannot be opened as HDF5"):
            read_store(junk)


class TestStoreValidation:
    @pytest.mark.parametrize(
        ("images", "table", "bands", "match"),
        [
            (
                np.zeros((3, 8, 8)),
                _table(3),
                ["g"],
                r"images must have shape \(n, bands, ny, nx\)",
            ),
            (np.zeros((3, 2, 8, 8)), _table(3), ["g"], "images have 2 bands but bands names 1"),
            (np.zeros((4, 1, 8, 8)), _table(3), ["g"], "table has 3 rows but there are 4 images"),
            (
                np.zeros((3, 1, 8, 8)),
                _table(3)[["object_id", "ra"]],
                ["g"],
                r"lacks the required columns \['dec'\]",
            ),
        ],
    )
    def test_bad_inputs(self, tmp_path, images, table, bands, match):
        with pytest.raises(ValueError, match=match):
            write_store(tmp_path / "s.h5", images, table, bands=bands, pixel_scale=0.2)
        assert not (tmp_path / "s.h5").exists()

    def test_duplicate_ids(self, tmp_path):
        t = _table(3)
        t["object_id"][2] = "obj0"
        with pytest.raises(ValueError, match="duplicate object_id"):
            write_store(tmp_path / "s.h5", np.zeros((3, 1, 8, 8)), t, bands=["g"], pixel_scale=0.2)


def test_a_missing_store_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"none\.h5: no such cutout store"):
        read_store(tmp_path / "none.h5")
