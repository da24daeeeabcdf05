import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.table import Table

from astrounsup.io import AsinhNormalizer, CutoutDataset, CutoutReadError, write_store

from .conftest import write_band_files


def _border_median(img, b=4):
    frame = np.concatenate(
        [img[:b].ravel(), img[-b:].ravel(), img[b:-b, :b].ravel(), img[b:-b, -b:].ravel()]
    )
    return np.nanmedian(frame)


@pytest.fixture
def store(small_survey, tmp_path):
    return write_store(
        tmp_path / "s.h5",
        small_survey.images,
        small_survey.table,
        bands=small_survey.bands,
        pixel_scale=small_survey.pixel_scale,
    )


class TestStoreSource:
    def test_items_match_the_images(self, small_survey, store):
        ds = CutoutDataset(store)
        assert len(ds) == 60
        assert ds.bands == ("g", "r", "i")
        assert ds.pixel_scale == pytest.approx(0.263)
        assert ds.table.colnames[:3] == ["object_id", "ra", "dec"]
        clean = np.nonzero(~np.asarray(small_survey.table["has_nan"]))[0][0]
        image, mask, index = ds[int(clean)]
        assert index == clean
        assert image.dtype == torch.float32
        assert mask.dtype == torch.bool
        np.testing.assert_array_equal(image.numpy(), small_survey.images[clean])
        assert not mask.any()

    def test_nan_pixels_are_masked_and_filled_with_local_sky(self, small_survey, store):
        ds = CutoutDataset(store)
        for i in np.nonzero(np.asarray(small_survey.table["has_nan"]))[0]:
            image, mask, _ = ds[int(i)]
            raw = small_survey.images[i]
            np.testing.assert_array_equal(mask.numpy(), ~np.isfinite(raw))
            assert torch.isfinite(image).all()
            for j in range(3):
                if mask[j].any():
                    fill = image[j][mask[j]].numpy()
                    assert np.all(fill == fill[0])
                    sigma = float(np.nanstd(raw[j][:4]))
                    assert fill[0] == pytest.approx(float(_border_median(raw[j])), abs=0.2 * sigma)
            np.testing.assert_array_equal(image.numpy()[~mask.numpy()], raw[np.isfinite(raw)])

    def test_batches_in_any_order(self, small_survey, store):
        ds = CutoutDataset(store)
        items = ds.__getitems__([7, 2, 3, 59, 2])
        assert [i for _, _, i in items] == [7, 2, 3, 59, 2]
        for img, _, i in items:
            raw = small_survey.images[i]
            np.testing.assert_array_equal(img.numpy()[np.isfinite(raw)], raw[np.isfinite(raw)])

    def test_flagged_pixels_from_store_masks(self, small_survey, tmp_path):
        flags = np.zeros(small_survey.images.shape, dtype=bool)
        flags[0, 1, 10:12, 10:12] = True
        path = write_store(
            tmp_path / "m.h5",
            small_survey.images,
            small_survey.table,
            bands=small_survey.bands,
            pixel_scale=0.263,
            masks=flags,
        )
        _, mask, _ = CutoutDataset(path)[0]
        assert mask[1, 10:12, 10:12].all()
        assert int(mask.sum()) == 4 + int((~np.isfinite(small_survey.images[0])).sum())

    def test_dataloader_with_two_workers(self, small_survey, store):
        ds = CutoutDataset(store)
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=16,
            num_workers=2,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
        )
        seen = []
        for images, masks, index in loader:
            assert images.shape[1:] == (3, 64, 64)
            assert masks.shape == images.shape
            for img, i in zip(images, index.tolist(), strict=True):
                raw = small_survey.images[i]
                finite = np.isfinite(raw)
                np.testing.assert_array_equal(img.numpy()[finite], raw[finite])
            seen += index.tolist()
        assert sorted(seen) == list(range(60))

    def test_index_errors(self, store):
        ds = CutoutDataset(store)
        with pytest.raises(IndexError, match="index 60 out of range for a dataset of 60"):
            ds[60]
        with pytest.raises(TypeError, match="index must be an integer"):
            ds["a"]

    def test_normalizer_applied(self, small_survey, store):
        norm = AsinhNormalizer().fit(np.nan_to_num(small_survey.images[:20]))
        image, _, _i = CutoutDataset(store, normalizer=norm)[0]
        expected = norm.transform(np.nan_to_num(small_survey.images[:1]))
        np.testing.assert_allclose(image.numpy(), expected[0], rtol=1e-5, atol=1e-6)

    def test_kept_sky_estimates_give_the_same_batches(self, small_survey, store):
        # The normaliser's border sky and noise are measured once per cutout and reused:
        # every read, in any batch and any order, equals normalising the filled batch anew.
        norm = AsinhNormalizer().fit(np.nan_to_num(small_survey.images[:20]))
        raw, ds = CutoutDataset(store), CutoutDataset(store, normalizer=norm)
        masked = False
        for rows in ([5, 1, 2, 5], [2, 3, 4, 5, 6], list(range(60)), [59, 0]):
            x, mask, _ = ds[rows]
            filled, raw_mask, _ = raw[rows]
            np.testing.assert_array_equal(mask.numpy(), raw_mask.numpy())
            np.testing.assert_allclose(x.numpy(), norm.transform(filled).numpy(), rtol=1e-6)
            masked |= bool(raw_mask.any())
        assert masked  # cutouts with NaN pixels were among them
        wider = AsinhNormalizer(border=6).fit(np.nan_to_num(small_survey.images[:20]))
        ds.normalizer = wider  # another border: measured again
        x, _, _ = ds[[5, 1]]
        np.testing.assert_allclose(x.numpy(), wider.transform(raw[[5, 1]][0]).numpy(), rtol=1e-6)

    def test_in_memory_serves_the_same_batches(self, small_survey, store):
        norm = AsinhNormalizer().fit(np.nan_to_num(small_survey.images[:20]))
        ds = CutoutDataset(store, normalizer=norm)
        kept = ds.in_memory()
        assert kept is not ds
        for rows in ([5, 1, 2, 5], list(range(60)), [59, -1]):
            x, mask, idx = kept[rows]
            ref_x, ref_mask, ref_idx = ds[rows]
            assert torch.equal(x, ref_x)
            assert torch.equal(mask, ref_mask)
            assert torch.equal(idx, ref_idx)
        assert bool(kept[list(range(60))][1].any())  # masked pixels kept too
        x, _, _ = kept[[3]]
        x += 1.0  # a batch is a copy: the kept cutouts do not change
        assert torch.equal(kept[[3]][0], ds[[3]][0])
        with pytest.raises(IndexError, match="out of range"):
            kept[[60]]
        # Another normaliser reads from the store again.
        raw = kept.with_normalizer(None)
        assert torch.equal(raw[[5]][0], CutoutDataset(store)[[5]][0])
        assert ds.in_memory(max_bytes=1000) is ds


class TestOtherSources:
    def test_array(self, small_survey):
        ds = CutoutDataset(small_survey.images, table=small_survey.table, bands=small_survey.bands)
        assert len(ds) == 60
        assert ds.table["kind"][0] == small_survey.table["kind"][0]
        with pytest.raises(ValueError, match="table has 3 rows but there are 60 images"):
            CutoutDataset(small_survey.images, table=small_survey.table[:3])
        with pytest.raises(ValueError, match=r"images must have shape \(n, bands, ny, nx\)"):
            CutoutDataset(small_survey.images[0])

    def test_fits_directory(self, small_survey, cube_files):
        ds = CutoutDataset(cube_files[0].parent)
        assert len(ds) == 6
        np.testing.assert_allclose(ds.table["ra"].value, small_survey.table["ra"][:6].value)
        image, _, _ = ds[4]
        np.testing.assert_array_equal(
            image.numpy(), np.nan_to_num(small_survey.images[4], nan=image.numpy()[0, 0, 0])
        )

    def test_glob_of_band_files(self, small_survey, band_dir):
        ds = CutoutDataset(
            str(band_dir / "*.fits"),
            band_pattern=r"(?P<object_id>.+)_(?P<band>[gri])\.fits",
            bands=("g", "r", "i"),
        )
        assert len(ds) == 4
        assert list(ds.table["object_id"]) == list(small_survey.table["object_id"][:4])
        np.testing.assert_array_equal(ds[2][0].numpy(), small_survey.images[2])

    def test_missing_band_file(self, small_survey, band_dir):
        (band_dir / f"{small_survey.table['object_id'][1]}_r.fits").unlink()
        with pytest.raises(CutoutReadError, match=r"no file for band\(s\) \['r'\]"):
            CutoutDataset(
                band_dir,
                band_pattern=r"(?P<object_id>.+)_(?P<band>[gri])\.fits",
                bands=("g", "r", "i"),
            )

    def test_catalog_carries_columns(self, small_survey, cube_files, tmp_path):
        cat = Table()
        cat["file"] = [f"cubes/{p.name}" for p in cube_files]
        cat["object_id"] = [f"obj{k}" for k in range(6)]
        cat["is_lens"] = small_survey.table["is_lens"][:6]
        cat["ra"] = np.arange(6.0)
        cat.write(tmp_path / "cat.ecsv")
        ds = CutoutDataset(tmp_path / "cat.ecsv")
        assert list(ds.table["object_id"]) == [f"obj{k}" for k in range(6)]
        np.testing.assert_array_equal(ds.table["is_lens"], small_survey.table["is_lens"][:6])
        np.testing.assert_allclose(ds.table["ra"].to_value(u.deg), np.arange(6.0))  # catalog wins
        np.testing.assert_allclose(ds.table["dec"].value, small_survey.table["dec"][:6].value)
        np.testing.assert_array_equal(
            ds[5][0].numpy(), np.nan_to_num(small_survey.images[5], nan=float(ds[5][0][0, 0, 0]))
        )

    def test_catalog_of_band_rows(self, small_survey, tmp_path):
        write_band_files(tmp_path / "b", small_survey, range(3))
        cat = Table()
        rows = [(str(small_survey.table["object_id"][i]), b) for i in range(3) for b in "gri"]
        cat["object_id"] = [r[0] for r in rows]
        cat["band"] = [r[1] for r in rows]
        cat["file"] = [f"b/{o}_{b}.fits" for o, b in rows]
        cat["label"] = np.arange(9)
        cat.write(tmp_path / "cat.csv")
        ds = CutoutDataset(tmp_path / "cat.csv", bands=("g", "r", "i"))
        assert len(ds) == 3
        assert list(ds.table["label"]) == [0, 3, 6]
        np.testing.assert_array_equal(ds[1][0].numpy(), small_survey.images[1])

    def test_catalog_without_file_column(self, tmp_path):
        Table({"x": [1]}).write(tmp_path / "c.csv")
        with pytest.raises(ValueError, match="catalog has no file column 'file'"):
            CutoutDataset(tmp_path / "c.csv")

    def test_duplicate_ids_name_the_files(self, cube_files, tmp_path):
        cat = Table({"file": [str(cube_files[0]), str(cube_files[1])], "object_id": ["a", "a"]})
        with pytest.raises(ValueError, match=r"duplicate object_id 'a': .*\.fits and .*\.fits"):
            CutoutDataset(cat)

    def test_no_fits(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="no FITS files found"):
            CutoutDataset(tmp_path)


class TestBatches:
    def test_sequence_index_returns_a_stacked_batch(self, small_survey, store):
        ds = CutoutDataset(store)
        images, masks, index = ds[[4, 1, 9]]
        assert images.shape == (3, 3, 64, 64)
        assert masks.shape == images.shape
        assert index.tolist() == [4, 1, 9]
        for k, i in enumerate([4, 1, 9]):
            single, single_mask, _ = ds[i]
            torch.testing.assert_close(images[k], single)
            torch.testing.assert_close(masks[k], single_mask)

    def test_loader_covers_every_cutout_once_in_seeded_order(self, store):
        ds = CutoutDataset(store)
        first = [b[2].tolist() for b in ds.loader(16, shuffle=True, seed=3)]
        again = [b[2].tolist() for b in ds.loader(16, shuffle=True, seed=3)]
        assert first == again
        assert sorted(i for batch in first for i in batch) == list(range(60))
        assert [len(b) for b in first] == [16, 16, 16, 12]
        assert next(iter(ds.loader(16)))[2].tolist() == list(range(16))

    def test_loader_with_workers_matches_direct_reads(self, store):
        ds = CutoutDataset(store)
        for images, masks, index in ds.loader(25, num_workers=2):
            direct, direct_masks, _ = ds[index.tolist()]
            torch.testing.assert_close(images, direct)
            torch.testing.assert_close(masks, direct_masks)

    def test_bad_batch_size(self, store):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            CutoutDataset(store).loader(0)

    def test_store_counts_bad_pixels_once_per_band(self, small_survey, store):
        import h5py

        with h5py.File(store) as f:
            counts = f["bad_pixels"][...]
        expected = (~np.isfinite(small_survey.images)).reshape(60, 3, -1).sum(axis=2)
        np.testing.assert_array_equal(counts, expected)
        table = CutoutDataset(store).table
        np.testing.assert_allclose(table["bad_fraction"], expected / 64**2, rtol=1e-6)
        flagged = (expected / 64**2 > 0.5).any(axis=1)
        np.testing.assert_array_equal(table["bad_pixel_flag"], flagged)


class TestRawChunkReads:
    """Uncompressed stores are read with positional reads of their chunks; others by h5py."""

    @pytest.mark.parametrize("compression", [None, "gzip"])
    def test_same_pixels_as_h5py(self, small_survey, tmp_path, compression):
        import h5py

        path = write_store(
            tmp_path / "s.h5",
            small_survey.images,
            small_survey.table,
            bands=small_survey.bands,
            pixel_scale=0.263,
            compression=compression,
        )
        ds = CutoutDataset(path)
        assert (ds._source._raw is not None) == (compression is None)
        rng = np.random.default_rng(0)
        with h5py.File(path) as f:
            for _ in range(5):
                lo = int(rng.integers(0, 50))
                hi = int(rng.integers(lo + 1, 61))
                images, _, _ = ds._source.read(np.arange(lo, hi))
                np.testing.assert_array_equal(images, f["images"][lo:hi])

    def test_ingested_store_with_grown_datasets(self, cube_files, tmp_path, monkeypatch):
        import h5py

        import astrounsup.io.ingestion as ingestion
        from astrounsup.io import ingest

        monkeypatch.setattr(ingestion, "_BATCH", 2)  # many small appends: scattered chunks
        ingest(cube_files[0].parent, tmp_path / "s.h5")
        ds = CutoutDataset(tmp_path / "s.h5")
        assert ds._source._raw is not None
        images, _, _ = ds._source.read(np.arange(6))
        with h5py.File(tmp_path / "s.h5") as f:
            np.testing.assert_array_equal(images, f["images"][...])


class TestReadCatalog:
    def test_any_table_format_and_bad_files(self, tmp_path):
        from astropy.table import Table

        from astrounsup.io import read_catalog

        t = Table({"file": ["a.fits", "b.fits"], "z": [0.1, 0.2]})
        for name in ("c.csv", "c.ecsv", "c.fits", "c.vot"):
            t.write(tmp_path / name, format="votable" if name.endswith(".vot") else None)
            assert list(read_catalog(tmp_path / name)["file"]) == ["a.fits", "b.fits"]
        with pytest.raises(FileNotFoundError, match=r"none\.csv: no such file"):
            read_catalog(tmp_path / "none.csv")
        (tmp_path / "junk.ecsv").write_text("not a table\x00")
        with pytest.raises(ValueError, match=r"junk\.ecsv: cannot read as a table"):
            read_catalog(tmp_path / "junk.ecsv")


def test_copies_share_the_measured_sky(small_survey, monkeypatch):
    """A with_normalizer copy reuses what another copy measured: embedding and then asking
    for the noise flags measures each cutout once."""
    import astrounsup.io.dataset as module
    from astrounsup.io import AsinhNormalizer, CutoutDataset

    x = np.nan_to_num(small_survey.images[:20])
    raw = CutoutDataset(x, table=small_survey.table[:20], bands=small_survey.bands)
    norm = AsinhNormalizer().fit(x)
    calls = []
    real = module.estimate_sky
    monkeypatch.setattr(module, "estimate_sky", lambda *a, **k: calls.append(1) or real(*a, **k))
    inner = raw.with_normalizer(norm).with_normalizer(norm)
    inner[list(range(20))]
    assert len(calls) == 1
    flags = raw.with_normalizer(norm).noise_flags()
    assert len(calls) == 1
    assert flags.shape == (20, 3)


def test_with_bands_keeps_those_planes_repaired_and_normalised_on_their_own(store, small_survey):
    """The chosen planes of a store equal a store of those planes alone: raw, repaired
    (bad pixels included) and normalised."""
    from astrounsup.io import as_dataset

    s = small_survey
    full = CutoutDataset(store)
    ri = full.with_bands(["i", "r"])
    assert ri.shape == (len(s.table), 2, 64, 64)
    assert ri.bands == ("i", "r")
    alone = CutoutDataset(s.images[:, [2, 1]], bands=("i", "r"), table=s.table)
    rows = list(range(len(s.table)))
    x, m, _ = ri[rows]
    want, want_mask, _ = alone[rows]
    torch.testing.assert_close(x, want)
    assert torch.equal(m, want_mask)
    norm = AsinhNormalizer().fit(s.images[:, [2, 1]])
    a = ri.with_normalizer(norm)[rows][0]
    b = alone.with_normalizer(norm)[rows][0]
    torch.testing.assert_close(a, b)
    assert ri.in_memory()[rows][0].shape == (len(rows), 2, 64, 64)
    # The full dataset is left as it is; as_dataset(bands=) chooses the same planes.
    assert full.shape[1] == 3
    torch.testing.assert_close(as_dataset(store, bands=["i", "r"])[rows][0], want)
    for bad in (["g", "z"], ["g", "g"], []):
        with pytest.raises(ValueError, match=r"bands must name planes of the cutouts \['g', 'r'"):
            full.with_bands(bad)


class TestArrayMessages:
    def test_channels_last_arrays_are_named_so(self):
        images = np.zeros((4, 32, 32, 3), np.float32)
        with pytest.raises(ValueError, match=r"bands names 3 bands but images have 32 .*it "
                           r"looks channels-last: use np.moveaxis\(images, -1, 1\)"):  # fmt: skip
            CutoutDataset(images, bands=["g", "r", "i"])
        with pytest.raises(ValueError, match=r"looks channels-last"):
            write_store("unused.h5", images, Table({"object_id": list("abcd")}),
                        bands=["g", "r", "i"], pixel_scale=0.2)  # fmt: skip

    @pytest.mark.parametrize("scale", [0.263 / 3600, 20.0, -1.0])
    def test_a_pixel_scale_outside_arcsec_bounds_is_refused(self, scale):
        images = np.zeros((2, 3, 32, 32), np.float32)
        hint = (
            r" \(in degrees that is 0.263 arcsec: give arcsec\)"
            if scale < 0.01 and scale > 0
            else ""
        )
        with pytest.raises(ValueError, match=r"pixel_scale must be in \[0.01, 5\] arcsec per "
                           r"pixel; got \S+" + hint):  # fmt: skip
            CutoutDataset(images, bands=["g", "r", "i"], pixel_scale=scale)
