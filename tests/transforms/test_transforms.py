import numpy as np
import pytest
import torch

from astrounsup.io import CutoutDataset
from astrounsup.transforms import (
    Brightness,
    CenterCrop,
    Compose,
    FluxScale,
    JitterCrop,
    MaskPatches,
    MultiView,
    PoissonNoise,
    PSFDegrade,
    RandomCrop,
    RandomRot90Flip,
    RandomRotation,
    RandomZoom,
    Redden,
    SkyNoise,
    SurveyDepth,
    contrastive_pipeline,
    contrastive_views,
    denoising_pipeline,
    gather_metadata,
)


@pytest.fixture(scope="module")
def survey_batch():
    from astrounsup.simulate import simulate_lens_survey

    s = simulate_lens_survey(16, seed=21, nan_fraction=0.0)
    meta = gather_metadata(s.table, np.arange(16), ["psf_fwhm", "noise_sigma", "ebv"])
    return s, torch.from_numpy(s.images), meta


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


ALL = [
    RandomRot90Flip(),
    RandomRotation(),
    RandomCrop(40),
    CenterCrop(40),
    JitterCrop(3),
    RandomZoom(),
    PSFDegrade(pixel_scale=0.263),
    SkyNoise(),
    SurveyDepth(),
    PoissonNoise(6000.0),
    Redden(bands=("g", "r", "i")),
    FluxScale(),
    Brightness(),
    Brightness(asinh_scale=[4.0, 5.0, 6.0]),
    MaskPatches(),
]


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
class TestEveryTransform:
    def test_same_seed_same_output(self, survey_batch, transform):
        _, x, meta = survey_batch
        a, ma = transform(x, generator=_gen(5), meta=meta)
        b, mb = transform(x, generator=_gen(5), meta=meta)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(ma, mb, rtol=0, atol=0)
        assert a.dtype == torch.float32
        assert ma.dtype == torch.bool
        assert a.shape == ma.shape
        assert torch.isfinite(a).all()

    def test_params_then_transform_is_the_call(self, survey_batch, transform):
        _, x, meta = survey_batch
        params = transform.make_params(x, generator=_gen(9), meta=meta)
        masks = torch.zeros(x.shape, dtype=torch.bool)
        a, _ = transform.transform(x, masks, params, meta)
        b, _ = transform(x, generator=_gen(9), meta=meta)
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    def test_does_not_touch_its_input(self, survey_batch, transform):
        _, x, meta = survey_batch
        before = x.clone()
        transform(x, generator=_gen(1), meta=meta)
        torch.testing.assert_close(x, before, rtol=0, atol=0)


class TestProbability:
    @pytest.mark.parametrize("p", [-0.1, 1.5, "half"])
    def test_p_outside_unit_interval(self, p):
        with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
            SkyNoise(p=p)

    def test_p_zero_is_identity(self, survey_batch):
        _, x, meta = survey_batch
        for t in (
            RandomRot90Flip(p=0.0),
            SkyNoise(p=0.0),
            FluxScale(p=0.0),
            PSFDegrade(pixel_scale=0.263, p=0.0),
            MaskPatches(p=0.0),
        ):
            out, m = t(x, generator=_gen(), meta=meta)
            torch.testing.assert_close(out, x)
            assert not m.any()

    def test_p_applies_to_that_share_of_samples(self):
        x = torch.zeros(4000, 1, 4, 4)
        out, _ = FluxScale((2.0, 2.0), p=0.3)(x + 1.0, generator=_gen(3))
        assert float((out[:, 0, 0, 0] == 2.0).float().mean()) == pytest.approx(0.3, abs=0.03)


class TestUsesMetadata:
    def test_psf_from_the_survey_columns(self, survey_batch):
        _s, x, meta = survey_batch
        t = PSFDegrade((1.5, 1.5), pixel_scale=0.263)
        out, _ = t(x, generator=_gen(), meta=meta)
        # Without metadata and without a constant the transform says what it needs.
        with pytest.raises(ValueError, match=r"no 'psf_fwhm' column .* and no constant"):
            t(x, generator=_gen())
        const = PSFDegrade((1.5, 1.5), pixel_scale=0.263, fwhm_in=1.0)(x, generator=_gen())[0]
        assert not torch.allclose(out, const)

    def test_sky_noise_reaches_the_target_depth(self, survey_batch):
        _s, _, meta = survey_batch
        blank = torch.zeros(16, 3, 64, 64)
        out, _ = SkyNoise((2.0, 2.0))(blank, generator=_gen(), meta=meta)
        sigma_in = meta["noise_sigma"]
        measured = out.std(dim=(2, 3))
        np.testing.assert_allclose((measured / sigma_in).numpy(), np.sqrt(3.0), rtol=0.06)
        overall = float(
            (out**2).mean(dim=(0, 2, 3)).sqrt().mean()
            / (3 * sigma_in**2).mean(dim=0).sqrt().mean()
        )
        assert overall == pytest.approx(1.0, rel=0.03)

    def test_sky_noise_measures_the_noise_without_metadata(self):
        g = _gen(2)
        x = torch.randn(32, 2, 48, 48, generator=g) * 0.1
        out, _ = SkyNoise((3.0, 3.0))(x, generator=_gen(4))
        assert float(out.std()) == pytest.approx(0.3, rel=0.03)

    def test_survey_depth_takes_each_cutout_to_another_ones_noise(self):
        """Reference: the noise after is max(own, other's) per cutout and band, the other
        being the one the drawn permutation names."""
        sigma = torch.tensor([[1.0, 2.0], [3.0, 0.5], [2.0, 2.0], [0.2, 4.0]])
        meta = {"noise_sigma": sigma}
        blank = torch.randn(4, 2, 128, 128, generator=_gen(6)) * sigma[..., None, None]
        t = SurveyDepth()
        params = t.make_params(blank, generator=_gen(8), meta=meta)
        assert sorted(params["other"].tolist()) == [0, 1, 2, 3]
        out, _ = t.transform(blank, None, params, meta=meta)
        want = torch.maximum(sigma, sigma[params["other"]])
        np.testing.assert_allclose(out.std(dim=(2, 3)).numpy(), want.numpy(), rtol=0.03)
        # The same seed draws the same others.
        again = t.make_params(blank, generator=_gen(8), meta=meta)
        assert torch.equal(again["other"], params["other"])

    def test_survey_depth_p_zero_is_identity(self, survey_batch):
        _, x, meta = survey_batch
        out, _ = SurveyDepth(p=0.0)(x, generator=_gen(), meta=meta)
        torch.testing.assert_close(out, x)

    def test_redden_with_per_object_ebv(self, survey_batch):
        _, x, _ = survey_batch
        ebv = torch.linspace(0.0, 0.3, 16)
        out, _ = Redden(bands=("g", "r", "i"))(x, generator=_gen(), meta={"ebv": ebv})
        factor = 10 ** (-0.4 * 3.237 * ebv)
        torch.testing.assert_close(out[:, 0], x[:, 0] * factor[:, None, None])


class TestMasksMoveWithPixels:
    @pytest.mark.parametrize(
        "transform",
        [
            RandomRot90Flip(),
            RandomRotation(),
            JitterCrop(5),
            RandomCrop(30),
            RandomZoom((1.2, 1.4)),
        ],
        ids=lambda t: type(t).__name__,
    )
    def test_marked_pixel_is_followed(self, transform):
        """A bright pixel and its mask flag end up in the same place."""
        x = torch.zeros(8, 1, 64, 64)
        m = torch.zeros(8, 1, 64, 64, dtype=torch.bool)
        x[:, 0, 30:33, 36:39] = 100.0
        m[:, 0, 30:33, 36:39] = True
        out, mo = transform(x, m, generator=_gen(7))
        for b in range(8):
            if float(out[b, 0].max()) < 1.0:  # the crop missed the block: nothing marked
                assert not mo[b, 0].any()
                continue
            peak = out[b, 0] == out[b, 0].max()
            assert mo[b, 0][peak].all()
            assert int(mo[b, 0].sum()) <= 6 * 16

    def test_mask_patches_feed_the_mask(self):
        x = torch.ones(4, 3, 32, 32)
        out, m = MaskPatches((2, 2), (5, 5))(x, generator=_gen())
        assert torch.equal(out == 0, m)
        assert bool(m[:, 0].flatten(1).any(1).all())
        assert torch.equal(m[:, 0], m[:, 2])


class TestPipelines:
    def test_contrastive_views(self, survey_batch):
        s, x, meta = survey_batch
        views = contrastive_views(size=64, pixel_scale=0.263, bands=s.bands)
        (a, _ma), (b, _mb) = views(x, generator=_gen(), meta=meta)
        assert a.shape == b.shape == (16, 3, 36, 36)
        assert not torch.allclose(a, b)
        assert "RandomRotation" in repr(views.pipelines[0])

    def test_denoising_pipeline(self, survey_batch):
        _, x, meta = survey_batch
        out, _m = denoising_pipeline()(x, generator=_gen(), meta=meta)
        assert out.shape == x.shape
        assert float((out - x).std()) > 0

    def test_multiview_needs_two(self):
        with pytest.raises(ValueError, match="at least two pipelines"):
            MultiView([RandomRot90Flip()])

    @pytest.mark.parametrize("member", [1, lambda x: x, torch.nn.Identity()])
    def test_compose_takes_only_transforms(self, member):
        with pytest.raises(TypeError, match=r"Compose takes astrounsup transforms.*member 1 is"):
            Compose([RandomRot90Flip(), member])


class TestBadParameters:
    @pytest.mark.parametrize(
        ("factory", "match"),
        [
            (lambda: PSFDegrade((0.8, 1.2), pixel_scale=0.2), "factor must be >= 1"),
            (lambda: PSFDegrade(pixel_scale=0.0), "pixel_scale must be > 0"),
            (lambda: PSFDegrade(pixel_scale=0.2, kernel="box"), "kernel must be"),
            (lambda: SkyNoise((0.5, 2.0)), "depth must be >= 1"),
            (lambda: SkyNoise(sigma_in=-1.0), "sigma_in must be >= 0"),
            (lambda: PoissonNoise(-2.0), "gain must be > 0"),
            (lambda: Redden((0.1, 0.0), bands="gri"), "low <= high"),
            (lambda: Redden(bands=("g", "u")), r"no extinction coefficient for bands \['u'\]"),
            (lambda: Redden(), "needs bands"),
            (lambda: RandomZoom((0.0, 1.1)), "scale must be > 0"),
            (lambda: RandomCrop(0), "size must be a positive integer"),
            (lambda: JitterCrop(-1), "max_shift must be an integer >= 0"),
            (lambda: RandomRotation(interpolation="nearest"), "interpolation must be"),
            (lambda: MaskPatches(size=(0, 3)), "size must be >= 1"),
        ],
    )
    def test_clear_errors(self, factory, match):
        with pytest.raises(ValueError, match=match):
            factory()

    def test_shape_errors(self):
        with pytest.raises(ValueError, match=r"images must be a tensor of shape \(B, bands"):
            SkyNoise(sigma_in=1.0)(torch.zeros(3, 8, 8))
        with pytest.raises(ValueError, match="crop size 40 is larger than the 32x32 cutouts"):
            RandomCrop(40)(torch.zeros(1, 1, 32, 32))
        with pytest.raises(ValueError, match="rot90 needs square cutouts"):
            RandomRot90Flip()(torch.zeros(2, 1, 8, 10), generator=_gen())
        with pytest.raises(ValueError, match="masks must have the shape of images"):
            SkyNoise(sigma_in=1.0)(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4, dtype=bool))

    def test_shape_changing_transform_with_p(self):
        from astrounsup.transforms import Transform

        class Shrink(Transform):
            changes_shape = True

        with pytest.raises(ValueError, match="changes the cutout size and must have p=1"):
            Shrink(p=0.5)


def _augment_in_worker(batch):
    images, masks, index = batch
    return contrastive_pipeline(size=64, pixel_scale=0.263, bands=("g", "r", "i"), fwhm_in=1.0)(
        images, masks, generator=_gen(int(index[0]))
    )


def test_inside_dataloader_workers(small_survey):
    ds = CutoutDataset(small_survey.images, table=small_survey.table, bands=small_survey.bands)
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=None,
        num_workers=2,
        sampler=torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(ds), 20, False),
        collate_fn=_augment_in_worker,
    )
    outs = [images for images, _ in loader]
    assert [tuple(o.shape) for o in outs] == [(20, 3, 36, 36)] * 3
    again = [_augment_in_worker(ds[list(range(k, k + 20))])[0] for k in (0, 20, 40)]
    for a, b in zip(outs, again, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.needs_cuda
def test_pipeline_on_cuda_matches_cpu_draws(survey_batch):
    _s, x, meta = survey_batch
    pipe = Compose([RandomRot90Flip(), RandomRotation(), JitterCrop(2), FluxScale()])
    cpu, _ = pipe(x, generator=_gen(3), meta=meta)
    gpu, _ = pipe(x.cuda(), generator=_gen(3), meta={k: v.cuda() for k, v in meta.items()})
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)


class TestBrightness:
    def test_linear_fluxes_scale_by_the_magnitude_change(self):
        x = torch.rand(500, 3, 4, 4, generator=_gen(1)) + 0.1
        out, _ = Brightness((-1.0, 2.0))(x, generator=_gen(2))
        factor = out / x
        # One factor per sample, the same in every band and pixel.
        torch.testing.assert_close(factor, factor[:, :1, :1, :1].expand_as(factor))
        dmag = -2.5 * torch.log10(factor[:, 0, 0, 0])
        assert float(dmag.min()) >= -1.0 - 1e-5
        assert float(dmag.max()) <= 2.0 + 1e-5
        # Uniform in magnitudes: mean and spread of U(-1, 2).
        assert float(dmag.mean()) == pytest.approx(0.5, abs=0.1)
        assert float(dmag.std()) == pytest.approx(3 / 12**0.5, abs=0.1)

    def test_stretched_cutouts_change_flux_not_stretched_values(self):
        # Reference: undo the normaliser's stretch in numpy, scale, stretch again.
        from astrounsup.io import AsinhNormalizer

        rng = np.random.default_rng(4)
        flux = rng.normal(0.0, 1.0, (6, 3, 20, 20)).astype(np.float32)
        flux[:, :, 8:12, 8:12] += rng.uniform(5, 500, (6, 3, 1, 1)).astype(np.float32)
        norm = AsinhNormalizer().fit(flux)
        y = torch.as_tensor(norm.transform(flux))
        t = Brightness((-1.5, 0.5), asinh_scale=norm.scale_)
        params = t.make_params(y, generator=_gen(7))
        out, _ = t.transform(y, None, params)
        k = norm.scale_[None, :, None, None]
        f = params["factor"].numpy()[:, None, None, None]
        expected = np.arcsinh(f * np.sinh(k * y.numpy())) / k
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)
        # Faint pixels scale almost linearly; bright ones shift by about ln(f) / scale.
        bright = y[:, :, 10, 10].numpy()
        shift = out[:, :, 10, 10].numpy() - bright
        np.testing.assert_allclose(shift, np.log(f[:, :, 0, 0]) / k[:, :, 0, 0], atol=0.02)

    def test_zero_change_is_identity(self):
        x = torch.randn(4, 3, 8, 8, generator=_gen(3))
        for t in (Brightness((0.0, 0.0)), Brightness((0.0, 0.0), asinh_scale=[2.0, 3.0, 4.0])):
            out, _ = t(x, generator=_gen())
            torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-5)

    def test_bad_options(self):
        with pytest.raises(ValueError, match=r"dmag must have low <= high; got \(1.0, -1.0\)"):
            Brightness((1.0, -1.0))
        with pytest.raises(ValueError, match=r"asinh_scale must be positive values, one per band"):
            Brightness(asinh_scale=[1.0, 0.0, 2.0])
        t = Brightness(asinh_scale=[1.0, 2.0])
        match = r"asinh_scale must be 3 positive values.*got \[1.0, 2.0\]"
        with pytest.raises(ValueError, match=match):
            t(torch.zeros(2, 3, 8, 8), generator=_gen())

    def test_in_the_contrastive_views_unless_left_out(self):
        kw = dict(size=64, pixel_scale=0.263, bands=("g", "r", "i"))
        with_it = contrastive_pipeline(asinh_scale=[3.0, 3.0, 3.0], **kw)
        first = with_it.transforms[0]
        assert isinstance(first, Brightness)
        assert first.dmag == (-1.0, 1.0)
        assert first.asinh_scale == [3.0, 3.0, 3.0]
        without = contrastive_pipeline(brightness=None, **kw)
        assert not any(isinstance(t, Brightness) for t in without.transforms)


class TestGatherMetadata:
    def test_seeing_is_taken_in_arcsec_whatever_its_unit(self, survey_batch):
        import astropy.units as u
        from astropy.table import QTable

        s, _, meta = survey_batch
        arcmin = QTable({"psf_fwhm": s.table["psf_fwhm"].to(u.arcmin)})
        again = gather_metadata(arcmin, np.arange(16), ["psf_fwhm"])
        torch.testing.assert_close(again["psf_fwhm"], meta["psf_fwhm"])
        bare = QTable({"psf_fwhm": s.table["psf_fwhm"].value})  # no unit: arcsec already
        torch.testing.assert_close(
            gather_metadata(bare, np.arange(16), ["psf_fwhm"])["psf_fwhm"], meta["psf_fwhm"]
        )
        pixels = QTable({"psf_fwhm": s.table["psf_fwhm"].value * u.pix})
        with pytest.raises(ValueError, match=r"'psf_fwhm' is in pix, which does not convert"):
            gather_metadata(pixels, np.arange(16), ["psf_fwhm"])

    def test_other_units_and_missing_columns(self, survey_batch):
        import astropy.units as u

        s, _, _ = survey_batch
        out = gather_metadata(
            s.table, [3, 1], ["psf_fwhm", "absent"], units={"psf_fwhm": u.arcmin}
        )
        np.testing.assert_allclose(
            out["psf_fwhm"].numpy(), s.table["psf_fwhm"][[3, 1]].to_value(u.arcmin), rtol=1e-6
        )
        assert "absent" not in out
