import bz2
import gzip
import lzma
import zipfile
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.utils.data import get_pkg_data_filename
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrounsup.io import (
    CutoutReadError,
    cutout_header,
    group_band_files,
    read_cutout,
    read_cutout_group,
    write_fits_cutouts,
)

from .conftest import image_stack, mef

RNG = np.random.default_rng(3)


def _astropy_data(name):
    return get_pkg_data_filename(f"data/{name}", package="astropy.io.fits.tests")


class TestCube:
    def test_simulated_cube_with_wcs(self, small_survey, cube_files):
        c = read_cutout(cube_files[2])
        np.testing.assert_array_equal(c.image, small_survey.images[2])
        assert c.bands == ("g", "r", "i")
        assert c.ra == pytest.approx(small_survey.table["ra"][2].value, abs=1e-9)
        assert c.dec == pytest.approx(small_survey.table["dec"][2].value, abs=1e-9)
        assert c.pixel_scale == pytest.approx(0.263)
        assert c.object_id == small_survey.table["object_id"][2]

    def test_band_selection_and_order(self, small_survey, cube_files):
        c = read_cutout(cube_files[0], bands=["i", "g"])
        np.testing.assert_array_equal(c.image, small_survey.images[0][[2, 0]])

    def test_missing_band(self, cube_files):
        with pytest.raises(CutoutReadError, match=r"cubes/.*\.fits: no band\(s\) \['z'\]"):
            read_cutout(cube_files[0], bands=["z"])

    def test_astropy_integer_big_endian_cube(self):
        path = _astropy_data("arange.fits")
        c = read_cutout(path)
        with fits.open(path) as hdul:
            expected = hdul[0].data.astype(np.float64)
        assert c.image.dtype == np.float32
        assert c.image.dtype.isnative
        np.testing.assert_array_equal(c.image, expected)
        assert c.image.shape == (7, 10, 11)

    def test_bscale_bzero_integers(self, tmp_path):
        raw = RNG.integers(-3000, 3000, (2, 8, 8)).astype(">i2")
        hdu = fits.PrimaryHDU(raw)
        hdu.header["BSCALE"] = 0.01
        hdu.header["BZERO"] = 5.0
        hdu.writeto(tmp_path / "scaled.fits")
        c = read_cutout(tmp_path / "scaled.fits")
        np.testing.assert_allclose(c.image, raw * 0.01 + 5.0, rtol=1e-6, atol=1e-5)


class TestMultiExtension:
    def test_bands_from_extname(self, tmp_path):
        planes = image_stack(RNG)
        c = read_cutout(mef(tmp_path / "m.fits", planes, names=["g", "r", "i"]))
        assert c.bands == ("g", "r", "i")
        np.testing.assert_array_equal(c.image, planes)

    def test_bands_from_filter_keyword(self, tmp_path):
        planes = image_stack(RNG, n=2)
        c = read_cutout(
            mef(tmp_path / "m.fits", planes, names=["z", "Y"], key="FILTER"), bands=["Y"]
        )
        np.testing.assert_array_equal(c.image, planes[1:])

    def test_astropy_hst_mef(self):
        # Four SCI extensions of int16 with BZERO from the primary: four planes.
        c = read_cutout(_astropy_data("test0.fits"))
        assert c.image.shape == (4, 40, 40)
        assert len(set(c.bands)) == 4

    def test_one_hdu_by_name(self, tmp_path):
        planes = image_stack(RNG)
        path = mef(tmp_path / "m.fits", planes, names=["g", "r", "i"])
        c = read_cutout(path, hdu="r")
        np.testing.assert_array_equal(c.image, planes[1:2])
        with pytest.raises(CutoutReadError, match=r"m\.fits: no HDU 'q'"):
            read_cutout(path, hdu="q")

    def test_planes_of_different_shape(self, tmp_path):
        hdus = fits.HDUList(
            [fits.PrimaryHDU(), fits.ImageHDU(np.zeros((8, 8))), fits.ImageHDU(np.zeros((9, 8)))]
        )
        hdus.writeto(tmp_path / "bad.fits")
        with pytest.raises(CutoutReadError, match=r"bad\.fits: image HDUs differ in shape"):
            read_cutout(tmp_path / "bad.fits")


class TestCompressed:
    @pytest.mark.parametrize("kind", ["RICE_1", "GZIP_1", "GZIP_2", "HCOMPRESS_1"])
    def test_tile_compressed(self, tmp_path, kind):
        plane = RNG.integers(0, 2000, (32, 32)).astype(np.int32)
        path = tmp_path / "c.fits.fz"
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(plane, compression_type=kind)]).writeto(
            path
        )
        c = read_cutout(path)
        np.testing.assert_array_equal(c.image[0], plane)

    def test_gzip_file(self, small_survey, cube_files, tmp_path):
        gz = tmp_path / "cube.fits.gz"
        gz.write_bytes(gzip.compress(Path(cube_files[1]).read_bytes()))
        np.testing.assert_array_equal(read_cutout(gz).image, small_survey.images[1])

    @staticmethod
    def _compressed(kind, data, path):
        if kind == "zip":
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("cube.fits", data)
        else:
            path.write_bytes(
                {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](data)
            )
        return path

    @pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zip"])
    def test_every_whole_file_compression_is_checked_before_astropy(
        self, kind, small_survey, cube_files, tmp_path
    ):
        data = Path(cube_files[1]).read_bytes()
        path = self._compressed(kind, data, tmp_path / f"cube.fits.{kind}")
        np.testing.assert_array_equal(read_cutout(path).image, small_survey.images[1])
        # A crafted header inside the compression meets the same checks as a plain one.
        card = next(i for i in range(0, 2880, 80) if data[i : i + 8] == b"NAXIS   ")
        crafted = data[:card] + b"NAXIS   = 99999999999".ljust(80) + data[card + 80 :]
        bad = self._compressed(kind, crafted, tmp_path / f"bad.fits.{kind}")
        declared = rf"bad\.fits\.{kind}: header declares NAXIS = 99999999999"
        with pytest.raises(CutoutReadError, match=declared):
            read_cutout(bad)
        junk = self._compressed(kind, b"hello world" * 300, tmp_path / f"junk.fits.{kind}")
        with pytest.raises(CutoutReadError, match="does not begin with the SIMPLE card"):
            read_cutout(junk)

    def test_a_gzip_bomb_is_refused_by_its_declared_size_before_it_is_read(self, tmp_path):
        # 100,000 x 100,000 float32 declared (40 GB), 10 MB of zeros given.
        header = fits.Header({"SIMPLE": True, "BITPIX": -32, "NAXIS": 2, "NAXIS1": 100_000,
                              "NAXIS2": 100_000})  # fmt: skip
        path = tmp_path / "bomb.fits.gz"
        with gzip.open(path, "wb", compresslevel=1) as f:
            f.write(header.tostring().encode())
            f.write(bytes(10 * 2**20))
        pattern = r"bomb\.fits\.gz: declares \d{11} bytes \(decompressed\); a cutout may hold"
        with pytest.raises(CutoutReadError, match=pattern + r" at most 536870912"):
            read_cutout(path)

    def test_what_follows_the_last_hdu_is_refused_unread(self, cube_files, tmp_path):
        import tracemalloc

        path = tmp_path / "tail.fits.gz"
        with gzip.open(path, "wb", compresslevel=1) as f:
            f.write(Path(cube_files[0]).read_bytes())
            zeros = bytes(2**20)
            for _ in range(100):  # 100 MB of zeros after the cutout
                f.write(zeros)
        tracemalloc.start()
        try:
            with pytest.raises(CutoutReadError, match=r"tail\.fits\.gz: bytes follow the last "
                               r"HDU at byte \d+"):  # fmt: skip
                read_cutout(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 16 * 2**20

    def test_a_zip_of_many_files_is_refused(self, cube_files, tmp_path):
        with zipfile.ZipFile(tmp_path / "two.zip", "w") as z:
            z.write(cube_files[0], "a.fits")
            z.write(cube_files[1], "b.fits")
        with pytest.raises(CutoutReadError, match=r"two\.zip: a zip archive of 2 files"):
            read_cutout(tmp_path / "two.zip")

    def test_astropy_compressed_files(self):
        c = read_cutout(_astropy_data("comp.fits"))
        assert c.image.shape == (1, 300, 440)
        with fits.open(_astropy_data("comp.fits")) as hdul:
            np.testing.assert_array_equal(c.image[0], hdul[1].data)


class TestBadFiles:
    def test_truncated(self, cube_files, tmp_path):
        data = Path(cube_files[0]).read_bytes()
        bad = tmp_path / "trunc.fits"
        bad.write_bytes(data[: len(data) // 2])
        with pytest.raises(CutoutReadError, match=r"trunc\.fits: cannot read FITS .*truncated"):
            read_cutout(bad)

    def test_empty(self, tmp_path):
        (tmp_path / "empty.fits").write_bytes(b"")
        with pytest.raises(CutoutReadError, match=r"empty\.fits: empty file"):
            read_cutout(tmp_path / "empty.fits")

    def test_not_fits(self, tmp_path):
        (tmp_path / "junk.fits").write_bytes(b"hello world" * 300)
        with pytest.raises(CutoutReadError, match=r"junk\.fits: cannot read FITS"):
            read_cutout(tmp_path / "junk.fits")

    def test_missing(self, tmp_path):
        with pytest.raises(CutoutReadError, match=r"nope\.fits: no such file"):
            read_cutout(tmp_path / "nope.fits")

    def test_one_dimensional(self, tmp_path):
        fits.PrimaryHDU(np.arange(10.0)).writeto(tmp_path / "spectrum.fits")
        with pytest.raises(
            CutoutReadError, match=r"spectrum\.fits: expected .* got data of \[1\]"
        ):
            read_cutout(tmp_path / "spectrum.fits")

    def test_table_only(self):
        with pytest.raises(CutoutReadError, match=r"table\.fits: no image data"):
            read_cutout(_astropy_data("table.fits"))

    def test_all_nan(self, tmp_path):
        fits.PrimaryHDU(np.full((2, 8, 8), np.nan, np.float32)).writeto(tmp_path / "nan.fits")
        with pytest.raises(CutoutReadError, match=r"nan\.fits: every pixel is NaN"):
            read_cutout(tmp_path / "nan.fits")


class TestBandGroups:
    def test_group_by_file_name(self, small_survey, band_dir):
        groups = group_band_files(sorted(band_dir.iterdir()))
        oid = small_survey.table["object_id"][1]
        assert set(groups[oid]) == {"g", "r", "i"}
        c = read_cutout_group([groups[oid][b] for b in "gri"], bands=("g", "r", "i"))
        np.testing.assert_array_equal(c.image, small_survey.images[1])
        assert c.ra == pytest.approx(small_survey.table["ra"][1].value)

    def test_mismatched_band_count(self, band_dir, small_survey):
        oid = small_survey.table["object_id"][0]
        with pytest.raises(CutoutReadError, match="2 files for 3 bands"):
            read_cutout_group(
                [band_dir / f"{oid}_g.fits", band_dir / f"{oid}_r.fits"], bands=("g", "r", "i")
            )

    def test_mismatched_shapes(self, tmp_path):
        fits.PrimaryHDU(np.zeros((8, 8))).writeto(tmp_path / "a_g.fits")
        fits.PrimaryHDU(np.ones((9, 9))).writeto(tmp_path / "a_r.fits")
        with pytest.raises(CutoutReadError, match=r"a_r\.fits: shape \(9, 9\) differs"):
            read_cutout_group([tmp_path / "a_g.fits", tmp_path / "a_r.fits"], bands=("g", "r"))

    def test_pattern_mismatch_and_duplicates(self, tmp_path):
        with pytest.raises(CutoutReadError, match=r"weird\.fits: file name does not match"):
            group_band_files([tmp_path / "weird.fits"])
        with pytest.raises(CutoutReadError, match="already comes from"):
            group_band_files([tmp_path / "a_g.fits", tmp_path / "a_g.fits.gz"])


class TestSkyPosition:
    def _header(self, **cards):
        h = fits.Header()
        h.update(
            {
                "CRPIX1": 8.5,
                "CRPIX2": 8.5,
                "CDELT1": -1e-4,
                "CDELT2": 1e-4,
                "CUNIT1": "deg",
                "CUNIT2": "deg",
                **cards,
            }
        )
        return h

    def test_galactic_wcs_is_converted_to_icrs(self, tmp_path):
        from astropy.coordinates import SkyCoord

        h = self._header(CTYPE1="GLON-TAN", CTYPE2="GLAT-TAN", CRVAL1=120.0, CRVAL2=-30.0)
        fits.PrimaryHDU(np.ones((16, 16), np.float32), header=h).writeto(tmp_path / "g.fits")
        c = read_cutout(tmp_path / "g.fits")
        truth = SkyCoord(l=120.0, b=-30.0, unit="deg", frame="galactic").icrs
        assert c.ra == pytest.approx(truth.ra.deg, abs=1e-8)
        assert c.dec == pytest.approx(truth.dec.deg, abs=1e-8)
        assert c.pixel_scale == pytest.approx(0.36)

    def test_fk5_wcs_is_converted_to_icrs(self, tmp_path):
        from astropy.coordinates import SkyCoord

        h = self._header(
            CTYPE1="RA---TAN",
            CTYPE2="DEC--TAN",
            CRVAL1=10.0,
            CRVAL2=20.0,
            RADESYS="FK5",
            EQUINOX=2000.0,
        )
        fits.PrimaryHDU(np.ones((16, 16), np.float32), header=h).writeto(tmp_path / "f.fits")
        c = read_cutout(tmp_path / "f.fits")
        truth = SkyCoord(10.0, 20.0, unit="deg", frame="fk5").icrs
        assert c.ra == pytest.approx(truth.ra.deg, abs=1e-9)
        assert c.ra != 10.0

    def test_no_wcs(self, tmp_path):
        fits.PrimaryHDU(np.ones((16, 16), np.float32)).writeto(tmp_path / "n.fits")
        c = read_cutout(tmp_path / "n.fits")
        assert np.isnan(c.ra)
        assert np.isnan(c.pixel_scale)


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


# --- fuzz: whatever the bytes, read_cutout returns a cutout or raises CutoutReadError ---

_FUZZ_KEYS = ["BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "BSCALE", "BZERO", "BANDS",
              "CDELT1", "CD1_1", "CTYPE1", "CRVAL1", "BUNIT", "FILTER", "OBJECT",
              "END"]  # fmt: skip
_FUZZ_VALUES = ["0", "-1", "3", "64", "99999999999", "-32", "1e309", "NAN", "'g,r,i'", "'",
                "T", "''", "'RA---XYZ'", "1.5", "-0"]  # fmt: skip


def _cube_bytes(tmp_path):
    data = np.random.default_rng(0).normal(size=(3, 8, 8)).astype(">f4")
    header = cutout_header(ra=150.0, dec=2.0, shape=(3, 8, 8), bands=("g", "r", "i"),
                           pixel_scale=0.2)  # fmt: skip
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return path.read_bytes()


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    kind=st.sampled_from(["card", "bytes", "truncate", "extend"]),
    key=st.sampled_from(_FUZZ_KEYS),
    value=st.sampled_from(_FUZZ_VALUES),
    where=st.integers(min_value=0, max_value=2 * 2880 + 3 * 64 * 4),
    junk=st.binary(min_size=1, max_size=64),
)
def test_fuzzed_fits_files_only_ever_raise_cutout_read_errors(
    kind, key, value, where, junk, tmp_path
):
    good = _cube_bytes(tmp_path)
    data = bytearray(good)
    if kind == "card":  # one header card rewritten (or a new one put first)
        card = f"{key:<8}= {value:>20}".ljust(80).encode()[:80]
        at = good.find(key.ljust(8).encode())
        at = (at // 80) * 80 if at >= 0 and at < 2880 else 80 * (where % 36)
        data[at : at + 80] = card
    elif kind == "bytes":
        data[where % len(data) : where % len(data) + len(junk)] = junk
    elif kind == "truncate":
        data = data[: where % len(data)]
    else:
        data += junk
    path = tmp_path / "fuzzed.fits"
    path.write_bytes(bytes(data))
    try:
        cutout = read_cutout(path)
    except CutoutReadError as err:
        message = str(err)
    else:
        message = None
        assert cutout.image.ndim == 3
        assert cutout.image.dtype == np.float32
    assert message is None or message.startswith(str(path)), message  # names the file
