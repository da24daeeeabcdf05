import json

import numpy as np
import pytest
from astropy import units as u
from astropy.table import QTable

from astrounsup.catalog import CATALOG_FORMATS, provenance, result_catalog, write_catalog


@pytest.fixture
def table():
    t = QTable(
        {
            "object_id": ["a", "b", "c"],
            "ra": [10.0, 10.1, 10.2] * u.deg,
            "dec": [-5.0, -5.1, -5.2] * u.deg,
            "mag": np.arange(9.0).reshape(3, 3) * u.mag,
        }
    )
    t.meta["bands"] = ["g", "r", "i"]
    t.meta["zeropoint"] = {"g": 30.0}
    return t


@pytest.mark.parametrize("suffix", sorted(set(CATALOG_FORMATS)))
def test_round_trip_every_format(table, suffix, tmp_path):
    out = result_catalog(table, {"cluster": [1, 0, 1], "score": [0.1, 0.9, 0.5]})
    path = write_catalog(out, tmp_path / f"c{suffix}")
    back = QTable.read(path, **({"path": "catalog"} if "h" in suffix else {}))
    assert list(back["object_id"]) == ["a", "b", "c"]
    np.testing.assert_array_equal(back["cluster"], [1, 0, 1])
    np.testing.assert_allclose(u.Quantity(back["ra"], u.deg).value, [10.0, 10.1, 10.2])
    np.testing.assert_allclose(np.asarray(back["mag"]), np.arange(9.0).reshape(3, 3))


def test_fits_keeps_nested_metadata_as_json(table, tmp_path):
    path = write_catalog(table, tmp_path / "c.fits")
    back = QTable.read(path)
    meta = {k.lower(): v for k, v in back.meta.items()}
    assert json.loads(meta["zeropoint"]) == {"g": 30.0}


def test_refuses_to_overwrite_and_unknown_suffix(table, tmp_path):
    path = write_catalog(table, tmp_path / "c.ecsv")
    with pytest.raises(FileExistsError, match=r"c.ecsv exists; pass overwrite=True"):
        write_catalog(table, path)
    write_catalog(table[:1], path, overwrite=True)
    assert len(QTable.read(path)) == 1
    with pytest.raises(ValueError, match=r"unknown catalog suffix '.txt'"):
        write_catalog(table, tmp_path / "c.txt")


def test_failed_write_leaves_nothing(tmp_path):
    bad = QTable({"x": [object(), object()]})
    with pytest.raises(Exception):  # noqa: B017, PT011 - astropy's error type is its own
        write_catalog(bad, tmp_path / "c.ecsv")
    assert list(tmp_path.iterdir()) == []


def test_result_catalog_checks_lengths(table):
    with pytest.raises(ValueError, match="column 'score' has 2 rows; the catalog has 3"):
        result_catalog(table, {"score": [1.0, 2.0]})


def test_provenance_names_the_step_and_software():
    meta = provenance("astrounsup cluster", latents="x.h5", k=20, skip=None)
    assert meta["step"] == "astrounsup cluster"
    assert meta["latents"] == "x.h5"
    assert "skip" not in meta
    assert "scikit-learn" in meta["versions"]


def test_id_positions_join_by_id_and_name_the_missing():
    from astrounsup.catalog import id_positions

    assert id_positions(np.array(["x", "y", "z"]), ["z", "x", "y"]).tolist() == [2, 0, 1]
    with pytest.raises(
        ValueError, match=r"2 graded objects are not in the store, e\.g\. \['q', 'r'\]"
    ):
        id_positions(["x"], ["q", "x", "r"], what="graded objects", where="the store")
