import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from astrounsup.io import cutout_header, write_fits_cutouts


class TestWriteFitsCutouts:
    def test_one_cube_per_object_with_valid_wcs(self, small_survey, tmp_path):
        s = small_survey
        paths = write_fits_cutouts(
            tmp_path / "fits", s.images[:5], s.table[:5], bands=s.bands, pixel_scale=s.pixel_scale
        )
        assert [p.name for p in paths] == [f"{oid}.fits" for oid in s.table["object_id"][:5]]
        for i, p in enumerate(paths):
            with fits.open(p) as hdul:
                data = hdul[0].data
                header = hdul[0].header
            np.testing.assert_array_equal(data, s.images[i])
            assert header["BANDS"] == "g,r,i"
            assert [header[f"BAND{j}"] for j in (1, 2, 3)] == ["g", "r", "i"]
            assert header["BUNIT"] == "nmgy"
            assert header["PSFFWHM2"] == pytest.approx(s.table["psf_fwhm"][i, 1].value)
            w = WCS(header).celestial
            assert w.wcs.ctype[0] == "RA---TAN"
            assert w.wcs.ctype[1] == "DEC--TAN"
            centre = w.pixel_to_world(31.5, 31.5)
            truth = SkyCoord(s.table["ra"][i], s.table["dec"][i])
            assert centre.separation(truth).to(u.arcsec).value < 1e-6
            scales = proj_plane_pixel_scales(w) * 3600
            np.testing.assert_allclose(scales, 0.263)
            # East is to the left: RA grows towards smaller x.
            left = w.pixel_to_world(0, 31.5)
            assert left.ra > centre.ra

    def test_interrupted_directory_is_not_left(self, small_survey, tmp_path, monkeypatch):
        calls = []
        original = fits.PrimaryHDU.writeto

        def fail_on_third(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise OSError("disk full")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(fits.PrimaryHDU, "writeto", fail_on_third)
        with pytest.raises(OSError, match="disk full"):
            write_fits_cutouts(
                tmp_path / "fits",
                small_survey.images[:5],
                small_survey.table[:5],
                bands=small_survey.bands,
                pixel_scale=0.263,
            )
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize(
        ("ids", "match"),
        [
            (["a", "b/c", "d"], "object_id 'b/c' cannot name a FITS file"),
            (["a", "a", "d"], "duplicate object_id"),
        ],
    )
    def test_bad_object_ids(self, small_survey, tmp_path, ids, match):
        table = small_survey.table[:3].copy()
        table["object_id"] = ids
        with pytest.raises(ValueError, match=match):
            write_fits_cutouts(
                tmp_path / "fits",
                small_survey.images[:3],
                table,
                bands=small_survey.bands,
                pixel_scale=0.263,
            )
        assert not (tmp_path / "fits").exists()


class TestCutoutHeader:
    def test_header_without_extra(self):
        h = cutout_header(ra=10.0, dec=20.0, shape=(1, 11, 11), bands=["r"], pixel_scale=0.5)
        assert h["CRPIX1"] == 6.0
        assert h["CD1_1"] == pytest.approx(-0.5 / 3600)
