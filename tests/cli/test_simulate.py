import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable

from astrounsup.cli import main
from astrounsup.io import read_store
from astrounsup.simulate import simulate_lens_survey


class TestSimulateLenses:
    def test_writes_what_the_function_returns(self, tmp_path, capsys):
        out = tmp_path / "survey"
        status = main(
            ["simulate", "lenses", "--n", "24", "--seed", "9", "--out", str(out), "--quiet"]
        )
        assert status == 0
        printed = capsys.readouterr().out
        assert "24 cutouts" in printed
        assert "lenses: 12" in printed
        expected = simulate_lens_survey(24, seed=9)
        images, table, _attrs = read_store(out / "cutouts.h5")
        np.testing.assert_array_equal(images, expected.images)
        np.testing.assert_array_equal(table["object_id"], expected.table["object_id"])
        truth = QTable.read(out / "truth.ecsv")
        np.testing.assert_array_equal(truth["kind"], expected.table["kind"])
        np.testing.assert_allclose(truth["psf_fwhm"].value, expected.table["psf_fwhm"].value)
        files = sorted((out / "fits").glob("*.fits"))
        assert len(files) == 24
        with fits.open(out / "fits" / f"{table['object_id'][3]}.fits") as hdul:
            np.testing.assert_array_equal(hdul[0].data, expected.images[3])
        assert (out / "montage.png").stat().st_size > 10_000
        assert not list(out.glob(".*partial"))

    @pytest.mark.parametrize(
        ("args", "match"),
        [
            (["--n", "0"], "n must be a positive integer"),
            (["--n", "5", "--bands", "g,x"], "unknown: \\['x'\\]"),
            (["--n", "5", "--size", "10"], "size must be an integer >= 26 px"),
            (["--n", "5", "--lens-fraction", "1.2"], r"lens_fraction must be in \[0, 1\]"),
        ],
    )
    def test_bad_arguments(self, tmp_path, capsys, args, match):
        status = main(
            ["simulate", "lenses", "--seed", "1", "--out", str(tmp_path / "o"), "--quiet", *args]
        )
        assert status == 2
        assert pytest.importorskip("re").search(match, capsys.readouterr().err)
        assert not (tmp_path / "o").exists()


class TestSimulateStars:
    def test_writes_table_and_figure(self, tmp_path, capsys):
        assert (
            main(["simulate", "stars", "--n", "300", "--seed", "2", "--out", str(tmp_path)]) == 0
        )
        t = QTable.read(tmp_path / "stars.ecsv")
        assert len(t) == 300
        assert "bp_rp" in t.colnames
        assert (tmp_path / "cmd.png").exists()
        assert "300 stars" in capsys.readouterr().out
