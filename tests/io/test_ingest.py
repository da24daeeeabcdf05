import re
import shutil
from pathlib import Path

import astropy.units as u
import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import astrounsup.io.ingestion as ingest_module
from astrounsup.cli import main
from astrounsup.io import StoreError, ingest, read_store, rejects_path, verify_store

from .conftest import write_band_files


def _assert_same_store(a, b):
    ia, ta, aa = read_store(a)
    ib, tb, ab = read_store(b)
    np.testing.assert_array_equal(ia, ib)
    assert ta.colnames == tb.colnames
    for col in ta.colnames:
        np.testing.assert_array_equal(np.asarray(ta[col]), np.asarray(tb[col]))
    skip = {"date"}
    assert {k: str(v) for k, v in aa.items() if k not in skip} == {
        k: str(v) for k, v in ab.items() if k not in skip
    }
    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert set(fa) == set(fb)


class TestIngest:
    def test_pixels_identical_to_the_fits(self, small_survey, cube_files, tmp_path):
        report = ingest(cube_files[0].parent, tmp_path / "s.h5")
        assert (report.n_written, report.n_rejected, report.resumed_from) == (6, 0, 0)
        images, table, attrs = read_store(tmp_path / "s.h5")
        for k, path in enumerate(cube_files):
            with fits.open(path) as hdul:
                np.testing.assert_array_equal(images[k], hdul[0].data)
        assert list(table["object_id"]) == [p.name[:-5] for p in cube_files]
        np.testing.assert_allclose(table["ra"].value, small_survey.table["ra"][:6].value)
        assert attrs["bands"] == ("g", "r", "i")
        assert attrs["pixel_scale"] == pytest.approx(0.263)
        assert len(Table.read(report.rejects)) == 0

    def test_the_store_folder_is_made_when_missing(self, cube_files, tmp_path):
        report = ingest(cube_files[0].parent, tmp_path / "new" / "run" / "s.h5")
        assert report.n_written == 6
        assert read_store(tmp_path / "new" / "run" / "s.h5")[0].shape[0] == 6

    def test_same_format_as_simulate(self, small_survey, cube_files, tmp_path):
        from astrounsup.io import write_store

        ingest(cube_files[0].parent, tmp_path / "i.h5")
        write_store(
            tmp_path / "w.h5",
            small_survey.images[:6],
            small_survey.table[:6],
            bands=small_survey.bands,
            pixel_scale=0.263,
        )
        with h5py.File(tmp_path / "i.h5") as fi, h5py.File(tmp_path / "w.h5") as fw:
            assert set(fi) == set(fw)
            assert {"images", "catalog"} <= set(fi)
            assert "ingest" not in fi
            assert set(fi.attrs) - {"ingest_signature"} == set(fw.attrs)
            assert fi["images"].chunks == fw["images"].chunks

    def test_bad_files_become_rejects(self, messy_dir, tmp_path):
        report = ingest(messy_dir, tmp_path / "s.h5")
        assert report.n_written == 6
        assert report.n_rejected == 5
        rej = Table.read(report.rejects)
        reasons = dict(zip(rej["object_id"], rej["reason"], strict=True))
        assert "truncated" in reasons["zz_truncated"]
        assert "empty file" in reasons["zz_empty"]
        assert "got data of [1] dimensions" in reasons["zz_spectrum"]
        assert "shape (3, 32, 32) differs from the store's (3, 64, 64)" in reasons["zz_small"]
        assert "every pixel is NaN" in reasons["zz_nan"]
        for name, file in zip(rej["object_id"], rej["file"], strict=True):
            assert file.endswith(f"{name}.fits")

    def test_duplicate_ids_from_catalog_are_rejected(self, cube_files, tmp_path):
        cat = Table(
            {
                "file": [str(p) for p in cube_files[:3]],
                "object_id": ["a", "b", "a"],
                "label": [1, 2, 3],
            }
        )
        report = ingest(None, tmp_path / "s.h5", catalog=cat)
        _, table, _ = read_store(tmp_path / "s.h5")
        assert list(table["object_id"]) == ["a", "b"]
        assert list(table["label"]) == [1, 2]
        rej = Table.read(report.rejects)
        assert "duplicate object_id (first ingested from entry 0)" in rej["reason"][0]
        assert rej["file"][0] == str(cube_files[2])

    @pytest.mark.parametrize("odd", ["65 px", "5 bands"])
    def test_one_odd_file_sorting_first_does_not_decide_the_store(self, cube_files, tmp_path, odd):
        d = tmp_path / "d"
        shutil.copytree(cube_files[0].parent, d)
        shape, bands = ((3, 65, 65), "g,r,i") if odd == "65 px" else ((5, 64, 64), "u,g,r,i,z")
        fits.PrimaryHDU(np.ones(shape, np.float32), header=fits.Header({"BANDS": bands})
                        ).writeto(d / "0000_odd.fits")  # fmt: skip
        report = ingest(d, tmp_path / "s.h5", progress=False)
        images = read_store(tmp_path / "s.h5")[0]
        assert report.n_written == 6
        assert images.shape[1:] == (3, 64, 64)
        rej = Table.read(report.rejects)
        assert list(rej["object_id"]) == ["0000_odd"]

    def test_a_folder_without_a_majority_kind_is_refused_naming_the_counts(
        self, cube_files, tmp_path
    ):
        d = tmp_path / "d"
        shutil.copytree(cube_files[0].parent, d)
        header = fits.Header({"BANDS": "g,r,i"})
        for k in range(6):
            fits.PrimaryHDU(np.ones((3, 65, 65), np.float32), header=header).writeto(
                d / f"odd{k}.fits"
            )
        pattern = (
            r"the cutouts differ and no kind is a majority \(6 with bands g,r,i, shape "
            r"3x6\dx6\d, unit \S+; 6 with .*; of 12 read\)"
        )
        with pytest.raises(ValueError, match=pattern):
            ingest(d, tmp_path / "s.h5", progress=False)
        assert not (tmp_path / "s.h5").exists()

    def test_catalog_files_beside_the_catalog_are_found_with_another_source(
        self, cube_files, tmp_path
    ):
        beside = tmp_path / "beside"
        shutil.copytree(cube_files[0].parent, beside)
        names = sorted(p.name for p in beside.glob("*.fits"))
        Table({"file": names}).write(beside / "cat.csv")
        (tmp_path / "data").mkdir()
        report = ingest(tmp_path / "data", tmp_path / "s.h5", catalog=beside / "cat.csv",
                        progress=False)  # fmt: skip
        assert report.n_written == len(names)
        # Neither folder has it: the reasons print as plain text.
        Table({"file": ["nowhere.fits"]}).write(beside / "none.csv")
        with pytest.raises(ValueError, match=r"nothing could be ingested from 1 entries; e\.g\. "
                           r"\['object nowhere: "):  # fmt: skip
            ingest(tmp_path / "data", tmp_path / "n.h5", catalog=beside / "none.csv",
                   progress=False)  # fmt: skip

    def test_nothing_readable(self, tmp_path):
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "a.fits").write_bytes(b"")
        with pytest.raises(ValueError, match=r"nothing could be ingested from 1 entries.*empty"):
            ingest(tmp_path / "d", tmp_path / "s.h5")
        assert not (tmp_path / "s.h5").exists()
        rej = Table.read(rejects_path(tmp_path / "s.h5"))
        assert list(rej["object_id"]) == ["a"]

    def test_missing_source(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=r"nope: no such file or directory"):
            ingest(tmp_path / "nope", tmp_path / "s.h5")
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("fail_at", [3, 8])
    def test_interrupted_then_resumed_equals_uninterrupted(
        self, messy_dir, tmp_path, monkeypatch, fail_at
    ):
        monkeypatch.setattr(ingest_module, "_BATCH", 2)
        ingest(messy_dir, tmp_path / "whole.h5")
        # Every entry is read once to find the majority kind before the store is begun.
        sampled = len(ingest_module.discover_cutouts(messy_dir, strict=False, geometry=False)[0])
        calls = {"n": 0}
        real = ingest_module.read_entry

        def crash(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == sampled + fail_at:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(ingest_module, "read_entry", crash)
        with pytest.raises(KeyboardInterrupt):
            ingest(messy_dir, tmp_path / "part.h5")
        with pytest.raises(StoreError, match="the store is incomplete"):
            read_store(tmp_path / "part.h5")
        assert not rejects_path(tmp_path / "part.h5").exists()
        monkeypatch.setattr(ingest_module, "read_entry", real)
        report = ingest(messy_dir, tmp_path / "part.h5")
        assert report.resumed_from == 2 * ((fail_at - 1) // 2)
        _assert_same_store(tmp_path / "part.h5", tmp_path / "whole.h5")
        assert (
            Table.read(report.rejects).pformat()
            == Table.read(rejects_path(tmp_path / "whole.h5")).pformat()
        )

    def test_a_store_begun_before_checksums_resumes_with_them(
        self, messy_dir, tmp_path, monkeypatch
    ):
        monkeypatch.setattr(ingest_module, "_BATCH", 2)
        ingest(messy_dir, tmp_path / "whole.h5")
        real = ingest_module.read_entry
        calls = {"n": 0}
        sampled = len(ingest_module.discover_cutouts(messy_dir, strict=False, geometry=False)[0])

        def crash(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == sampled + 5:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(ingest_module, "read_entry", crash)
        with pytest.raises(KeyboardInterrupt):
            ingest(messy_dir, tmp_path / "part.h5")
        with h5py.File(tmp_path / "part.h5", "a") as f:  # as format version 2 left it
            assert f["checksums"].shape[0] > 0
            del f["checksums"]
        monkeypatch.setattr(ingest_module, "read_entry", real)
        ingest(messy_dir, tmp_path / "part.h5")
        _assert_same_store(tmp_path / "part.h5", tmp_path / "whole.h5")
        assert verify_store(tmp_path / "part.h5").tolist() == []

    def test_crash_in_the_middle_of_a_write_is_rolled_back(self, messy_dir, tmp_path, monkeypatch):
        monkeypatch.setattr(ingest_module, "_BATCH", 3)
        ingest(messy_dir, tmp_path / "whole.h5")
        calls = {"n": 0}
        real = ingest_module._grow

        def crash(ds, values):
            calls["n"] += 1
            real(ds, values)
            if calls["n"] == 8:  # second batch: images and ra written, the rest not
                raise OSError("power cut")

        monkeypatch.setattr(ingest_module, "_grow", crash)
        with pytest.raises(OSError, match="power cut"):
            ingest(messy_dir, tmp_path / "part.h5")
        monkeypatch.setattr(ingest_module, "_grow", real)
        ingest(messy_dir, tmp_path / "part.h5")
        _assert_same_store(tmp_path / "part.h5", tmp_path / "whole.h5")

    def test_rerun_of_complete_store_is_a_no_op(self, cube_files, tmp_path):
        ingest(cube_files[0].parent, tmp_path / "s.h5")
        before = (tmp_path / "s.h5").stat().st_mtime_ns
        report = ingest(cube_files[0].parent, tmp_path / "s.h5")
        assert report.n_written == 6
        assert (tmp_path / "s.h5").stat().st_mtime_ns == before

    def test_other_inputs_do_not_resume(self, cube_files, tmp_path):
        ingest(cube_files[0].parent, tmp_path / "s.h5")
        with pytest.raises(FileExistsError, match="a complete store from another ingest"):
            ingest(cube_files[:3], tmp_path / "s.h5")
        report = ingest(cube_files[:3], tmp_path / "s.h5", overwrite=True)
        assert report.n_written == 3


class TestCatalogPaths:
    """One rule, in ingest() and astrounsup ingest: a relative path in the file column
    starts from SRC when SRC is a folder, else from the catalog file's folder."""

    def test_relative_to_the_source_folder(self, cube_files, tmp_path):
        (tmp_path / "tables").mkdir()
        cat = Table({"file": [p.name for p in cube_files[:3]], "z": [0.1, 0.2, 0.3]})
        cat.write(tmp_path / "tables" / "cat.csv")
        report = ingest(
            cube_files[0].parent, tmp_path / "a.h5", catalog=tmp_path / "tables" / "cat.csv"
        )
        assert report.n_written == 3
        assert main(
            ["ingest", str(cube_files[0].parent), str(tmp_path / "b.h5"), "--catalog",
             str(tmp_path / "tables" / "cat.csv"), "--quiet"]
        ) == 0  # fmt: skip
        _assert_same_store(tmp_path / "a.h5", tmp_path / "b.h5")

    def test_relative_to_the_catalog_folder(self, small_survey, cube_files, tmp_path):
        cat = Table({"file": [p.name for p in cube_files[:4]]})
        cat.write(cube_files[0].parent / "cat.ecsv")
        for dest, source, kwargs in (
            ("a.h5", None, {"catalog": cube_files[0].parent / "cat.ecsv"}),
            ("b.h5", cube_files[0].parent / "cat.ecsv", {}),
        ):
            assert ingest(source, tmp_path / dest, **kwargs).n_written == 4
        assert main(
            ["ingest", str(cube_files[0].parent / "cat.ecsv"), str(tmp_path / "c.h5"), "--quiet"]
        ) == 0  # fmt: skip
        for name in ("b.h5", "c.h5"):
            _assert_same_store(tmp_path / "a.h5", tmp_path / name)
        np.testing.assert_array_equal(read_store(tmp_path / "a.h5")[0], small_survey.images[:4])

    def test_source_with_a_catalog_must_be_a_folder(self, cube_files, tmp_path):
        cat = Table({"file": [str(p) for p in cube_files[:2]]})
        with pytest.raises(ValueError, match="source must be the folder that the catalog"):
            ingest(cube_files[0], tmp_path / "s.h5", catalog=cat)
        assert not (tmp_path / "s.h5").exists()

    @pytest.mark.parametrize("escape", ["../outside.fits", "/etc/passwd", "sub/../../x.fits"])
    def test_files_outside_the_source_folder_are_refused(self, escape, cube_files, tmp_path):
        folder = cube_files[0].parent
        outside = tmp_path / "outside.fits"
        shutil.copy(cube_files[0], outside)
        cat = Table({"file": [cube_files[1].name, escape], "object_id": ["a", "b"]})
        cat.write(folder / "cat.ecsv", overwrite=True)
        row = re.escape(f"catalog row 1: file '{escape}' is outside the source folder")
        with pytest.raises(ValueError, match=row):
            ingest(folder / "cat.ecsv", tmp_path / "s.h5")
        assert not (tmp_path / "s.h5").exists()
        if escape == "../outside.fits":  # allowed explicitly, it is read
            report = ingest(folder / "cat.ecsv", tmp_path / "s.h5", allow_outside=True)
            assert report.n_written == 2

    def test_an_id_column_named_must_exist(self, cube_files, tmp_path, capsys):
        folder = cube_files[0].parent
        Table({"file": [p.name for p in cube_files[:2]], "name": ["a", "b"]}).write(
            folder / "cat.ecsv", overwrite=True
        )
        argv = ["ingest", str(folder / "cat.ecsv"), str(tmp_path / "s.h5"), "--quiet"]
        assert main([*argv, "--id-column", "nope"]) == 2
        err = capsys.readouterr().err
        assert "catalog has no id column 'nope'; its columns are ['file', 'name']" in err
        assert main([*argv, "--id-column", "name"]) == 0
        assert list(read_store(tmp_path / "s.h5")[1]["object_id"]) == ["a", "b"]


class TestCatalogCoordinates:
    """A catalog's ra/dec are checked before any file is read: a slip never leaves a store
    that cannot be finished."""

    @pytest.mark.parametrize(
        ("ra", "dec", "match"),
        [
            (["150.1", "abc", "150.3"], [2.0, 2.1, 2.2],
             r"cat\.csv: column 'ra' must hold numbers \(degrees\); row 1 has 'abc'"),
            (["150.1", "150.2", "150.3"], [2.0, 95.0, 2.2],
             r"cat\.csv: column 'dec' must lie in \[-90, 90\] degrees; row 1 has 95"),
        ],
    )  # fmt: skip
    def test_bad_values_are_named_before_any_work(
        self, ra, dec, match, cube_files, tmp_path, capsys
    ):
        folder = cube_files[0].parent
        Table({"file": [p.name for p in cube_files[:3]], "ra": ra, "dec": dec}).write(
            folder / "cat.csv", overwrite=True
        )
        with pytest.raises(ValueError, match=match):
            ingest(folder / "cat.csv", tmp_path / "s.h5")
        assert main(["ingest", str(folder / "cat.csv"), str(tmp_path / "s.h5"), "--quiet"]) == 2
        assert capsys.readouterr().err.count("\n") == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cubes"]  # nothing written

    def test_empty_cells_come_from_the_wcs_and_units_are_converted(
        self, small_survey, cube_files, tmp_path
    ):
        folder = cube_files[0].parent
        ra = [None, small_survey.table["ra"][1].to_value(u.hourangle), None]
        cat = Table({"file": [p.name for p in cube_files[:3]]})
        cat["ra"] = np.ma.masked_invalid([np.nan if v is None else v for v in ra]) * u.hourangle
        cat.write(folder / "cat.ecsv", overwrite=True)
        _, table, _ = read_store(ingest(folder / "cat.ecsv", tmp_path / "s.h5").store)
        np.testing.assert_allclose(
            table["ra"].to_value(u.deg), small_survey.table["ra"][:3].to_value(u.deg), atol=1e-6
        )


class TestIngestCLI:
    def test_band_files_and_info(self, small_survey, tmp_path, capsys):
        write_band_files(tmp_path / "b", small_survey, range(5))
        status = main(
            [
                "ingest",
                str(tmp_path / "b"),
                str(tmp_path / "s.h5"),
                "--bands",
                "g,r,i",
                "--band-pattern",
                r"(?P<object_id>.+)_(?P<band>[gri])\.fits",
                "--quiet",
            ]
        )
        assert status == 0
        assert "5 cutouts written, 0 rejected" in capsys.readouterr().out
        images, _table, _ = read_store(tmp_path / "s.h5")
        np.testing.assert_array_equal(images, small_survey.images[:5])
        assert main(["info", str(tmp_path / "s.h5")]) == 0
        out = capsys.readouterr().out
        assert "5 of 3 bands x 64 x 64 px" in out
        assert "g, r, i" in out
        assert "rejects: 0" in out

    def test_catalog_relative_to_src(self, small_survey, cube_files, tmp_path, capsys):
        cat = Table({"file": [p.name for p in cube_files], "z_phot": np.linspace(0.1, 0.6, 6)})
        cat.write(tmp_path / "cat.csv")
        assert (
            main(
                [
                    "ingest",
                    str(cube_files[0].parent),
                    str(tmp_path / "s.h5"),
                    "--catalog",
                    str(tmp_path / "cat.csv"),
                    "--quiet",
                ]
            )
            == 0
        )
        _, table, _ = read_store(tmp_path / "s.h5")
        np.testing.assert_allclose(table["z_phot"], np.linspace(0.1, 0.6, 6))

    def test_info_on_a_non_store(self, tmp_path, capsys):
        (tmp_path / "x.h5").write_bytes(b"no")
        assert main(["info", str(tmp_path / "x.h5")]) == 2
        assert "x.h5: cannot be opened as HDF5" in capsys.readouterr().err

    def test_reported_rejects(self, messy_dir, tmp_path, capsys):
        assert main(["ingest", str(messy_dir), str(tmp_path / "s.h5"), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert "6 cutouts written, 5 rejected" in out
        assert str(Path(tmp_path / "s.rejects.ecsv")) in out


KILLER = """
import os, signal, sys
import astrounsup.io.ingestion as ing
real, count = ing._commit, [0]
def commit_then_die(*args, **kwargs):
    real(*args, **kwargs)
    count[0] += 1
    if count[0] == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no close: a real crash
ing._commit = commit_then_die
ing._BATCH = 2
ing.ingest(sys.argv[1], sys.argv[2])
"""


@pytest.mark.parametrize("commits", [1, 4])
def test_killed_process_resumes_to_the_same_store(messy_dir, tmp_path, monkeypatch, commits):
    import subprocess
    import sys

    monkeypatch.setattr(ingest_module, "_BATCH", 2)
    ingest(messy_dir, tmp_path / "whole.h5")
    run = subprocess.run(
        [sys.executable, "-c", KILLER, str(messy_dir), str(tmp_path / "part.h5"), str(commits)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == -9, run.stderr
    with pytest.raises(StoreError, match="the store is incomplete"):
        read_store(tmp_path / "part.h5")
    report = ingest(messy_dir, tmp_path / "part.h5")
    assert report.resumed_from == 2 * commits
    _assert_same_store(tmp_path / "part.h5", tmp_path / "whole.h5")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("band", "band r has no good pixel (all NaN, infinite or flagged)"),
        ("all_but_one", "band g has 99.98% bad pixels"),  # 4095 of 4096 (12,287 of 12,288)
        ("most", "band i has 76.56% bad pixels (NaN, infinite or flagged), more than "
                 "max_bad_fraction 0.5"),
    ],
)  # fmt: skip
def test_cutouts_with_a_band_too_damaged_are_rejected(damage, reason, small_survey, tmp_path):
    from astrounsup.io import write_fits_cutouts

    s = small_survey
    images = s.images[:4].copy()
    images[:, :, :1] = np.nan  # one row bad everywhere: kept
    if damage == "band":
        images[2, 1] = np.nan
    elif damage == "all_but_one":
        images[2] = np.nan
        images[2, 0, 5, 5] = 1.0
    else:
        images[2, 2, 16:] = np.nan
    write_fits_cutouts(tmp_path / "fits", images, s.table[:4], bands=s.bands, pixel_scale=0.263)
    report = ingest(tmp_path / "fits", tmp_path / "s.h5", progress=False)
    assert (report.n_written, report.n_rejected) == (3, 1)
    rejects = Table.read(rejects_path(tmp_path / "s.h5"))
    assert rejects["object_id"][0] == s.table["object_id"][2]
    assert reason in rejects["reason"][0]
    table = read_store(tmp_path / "s.h5")[1]
    np.testing.assert_allclose(table["bad_fraction"], 1 / 64)
    assert not table["bad_pixel_flag"].any()
    if damage == "most":  # a looser threshold keeps it, flagged by none
        report = ingest(tmp_path / "fits", tmp_path / "t.h5", progress=False,
                        max_bad_fraction=0.8)  # fmt: skip
        assert report.n_written == 4


def test_the_store_takes_its_unit_from_bunit(small_survey, tmp_path):
    from astrounsup.io import store_info, write_fits_cutouts

    s = small_survey
    write_fits_cutouts(tmp_path / "adu", s.images[:3], s.table[:3], bands=s.bands,
                       pixel_scale=0.263, flux_unit="ADU")  # fmt: skip
    ingest(tmp_path / "adu", tmp_path / "adu.h5", progress=False)
    assert store_info(tmp_path / "adu.h5")["flux_unit"] == "ADU"
    # One file in other units is rejected, naming both.
    write_fits_cutouts(tmp_path / "nmgy", s.images[3:4], s.table[3:4], bands=s.bands,
                       pixel_scale=0.263, flux_unit="nmgy")  # fmt: skip
    mixed = tmp_path / "mixed"
    shutil.copytree(tmp_path / "adu", mixed)
    shutil.copy(next((tmp_path / "nmgy").glob("*.fits")), mixed)
    report = ingest(mixed, tmp_path / "mixed.h5", progress=False)
    assert (report.n_written, report.n_rejected) == (3, 1)
    reason = Table.read(report.rejects)["reason"][0]
    assert "pixel unit (BUNIT) 'nmgy' differs from the store's 'ADU'" in reason
    # Without BUNIT the unit is not guessed.
    bare = tmp_path / "bare"
    bare.mkdir()
    for p in sorted((tmp_path / "adu").glob("*.fits")):
        with fits.open(p) as hdul:
            del hdul[0].header["BUNIT"]
            hdul.writeto(bare / p.name)
    ingest(bare, tmp_path / "bare.h5", progress=False)
    assert store_info(tmp_path / "bare.h5")["flux_unit"] == "unknown"


@pytest.fixture
def fixed_date(monkeypatch):
    """Stores written in the same second: their bytes can be compared."""
    import astrounsup.io.hdf5 as hdf5_module

    real = hdf5_module.provenance

    def provenance(step, **inputs):
        return {**real(step, **inputs), "date": "2026-01-01T00:00:00+00:00"}

    monkeypatch.setattr(hdf5_module, "provenance", provenance)


class TestWorkers:
    @pytest.mark.parametrize("bands", [None, ("i", "g")])
    def test_two_workers_write_the_same_bytes_as_one_process(
        self, messy_dir, tmp_path, monkeypatch, fixed_date, bands
    ):
        monkeypatch.setattr(ingest_module, "_WORKER_CHUNK", 2)  # many tasks, out of step
        monkeypatch.setattr(ingest_module, "_BATCH", 3)
        one = ingest(messy_dir, tmp_path / "one.h5", bands=bands, progress=False)
        two = ingest(messy_dir, tmp_path / "two.h5", bands=bands, workers=2, progress=False)
        assert (one.n_written, one.n_rejected) == (two.n_written, two.n_rejected) == (6, 5)
        assert (tmp_path / "one.h5").read_bytes() == (tmp_path / "two.h5").read_bytes()
        assert Table.read(one.rejects).pformat() == Table.read(two.rejects).pformat()

    def test_a_reader_that_fails_in_a_worker_raises_here(self, messy_dir, tmp_path, monkeypatch):
        def broken(paths, bands, oid):
            raise RuntimeError(f"reader broke on {oid}")

        monkeypatch.setattr(ingest_module, "_read_one", broken)
        with pytest.raises(RuntimeError, match="reader broke on"):
            ingest(messy_dir, tmp_path / "s.h5", bands=("g",), workers=2, progress=False)

    @pytest.mark.parametrize("workers", [0, -1, 1.5, True])
    def test_workers_must_be_a_positive_integer(self, cube_files, tmp_path, workers):
        with pytest.raises(ValueError, match=f"workers must be a positive integer; got {workers}"):
            ingest(cube_files[0].parent, tmp_path / "s.h5", workers=workers)

    def test_cli_workers(self, cube_files, tmp_path, capsys):
        dest = tmp_path / "s.h5"
        src = str(cube_files[0].parent)
        assert main(["ingest", src, str(dest), "--workers", "2", "--quiet"]) == 0
        assert "6 cutouts written, 0 rejected" in capsys.readouterr().out
        assert read_store(dest)[0].shape[0] == 6
