import numpy as np
import pytest
import torch

from astrounsup.losses import correlation_penalty
from astrounsup.models import (
    VAE,
    ConvAutoencoder,
    ConvEncoder,
    RotationPretext,
    SimCLR,
    jacobian_frobenius_sq,
)

SMALL = {"widths": (8, 16)}


def _data(n=32, bands=3, size=32, seed=0):
    """Seeded blobs of random position, size and colour on noise: learnable structure."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cx, cy = (torch.rand(2, n, generator=g) * 0.5 + 0.25) * size
    w = torch.rand(n, generator=g) * 3 + 1.5
    blob = torch.exp(
        -((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2)
        / (2 * w[:, None, None] ** 2)
    )
    colour = torch.rand(n, bands, generator=g) + 0.5
    return blob[:, None] * colour[..., None, None] + 0.05 * torch.randn(
        n, bands, size, size, generator=g
    )


def _train(model, loss_fn, steps=40, lr=3e-3):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()["loss"]
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    return history


class TestShapes:
    @pytest.mark.parametrize("bands", [1, 2, 3, 4, 5])
    @pytest.mark.parametrize("size", [32, 64, 101])
    def test_every_model_encodes_any_bands_and_size(self, bands, size):
        x = torch.randn(2, bands, size, size)
        for model in (
            ConvAutoencoder(bands, size=size, latent_dim=6, **SMALL),
            VAE(bands, size=size, latent_dim=6, **SMALL),
            SimCLR(bands, size=size, latent_dim=6, projection_dim=4, **SMALL),
            RotationPretext(bands, size=size, latent_dim=6, **SMALL),
        ):
            assert model.encode(x).shape == (2, 6)
        assert ConvAutoencoder(bands, size=size, latent_dim=6, **SMALL)(x).shape == x.shape

    def test_resnet_kind(self):
        m = ConvAutoencoder(3, size=33, latent_dim=4, widths=(8, 16), kind="resnet")
        assert m(torch.randn(2, 3, 33, 33)).shape == (2, 3, 33, 33)

    def test_decoder_halves_the_channels_as_it_upsamples(self):
        m = ConvAutoencoder(3, size=64, latent_dim=4, widths=(8, 16, 32))
        ups = [mod for mod in m.decoder.features if isinstance(mod, torch.nn.ConvTranspose2d)]
        assert [(u.in_channels, u.out_channels) for u in ups] == [(32, 16), (16, 8), (8, 4)]
        assert m.decoder.out.in_channels == 4
        assert ConvAutoencoder(1, size=32, latent_dim=4, widths=(1, 2))(
            torch.randn(2, 1, 32, 32)
        ).shape == (2, 1, 32, 32)

    def test_output_is_linear(self):
        m = ConvAutoencoder(1, size=32, latent_dim=4, **SMALL)
        assert isinstance(m.decoder.out, torch.nn.Conv2d)  # no sigmoid: fluxes can be < 0


class TestTraining:
    def test_autoencoder_loss_falls(self):
        x = _data()
        m = ConvAutoencoder(3, size=32, latent_dim=8, **SMALL)
        h = _train(m, lambda: m.loss(x))
        assert h[-1] < 0.5 * h[0]

    @pytest.mark.parametrize("sparsity", ["l1", "kl"])
    def test_sparse_variants_train(self, sparsity):
        x = _data()
        m = ConvAutoencoder(
            3, size=32, latent_dim=8, sparsity=sparsity, sparsity_weight=0.01, **SMALL
        )
        terms = m.loss(x)
        assert set(terms) == {"loss", "reconstruction", "sparsity"}
        h = _train(m, lambda: m.loss(x))
        assert h[-1] < 0.5 * h[0]

    def test_denoising_reconstructs_the_clean_target(self):
        clean = _data()
        noisy = clean + 0.2 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
        m = ConvAutoencoder(3, size=32, latent_dim=8, **SMALL)
        h = _train(m, lambda: m.loss(noisy, target=clean))
        assert h[-1] < 0.5 * h[0]

    def test_vae_loss_falls_and_samples_are_finite(self):
        x = _data()
        m = VAE(3, size=32, latent_dim=8, beta=0.5, **SMALL)
        var = torch.full((1, 3, 1, 1), 0.05**2)
        h = _train(m, lambda: m.loss(x, variance=var, generator=torch.Generator().manual_seed(2)))
        assert h[-1] < 0.5 * h[0]
        s = m.sample(5, generator=torch.Generator().manual_seed(3))
        assert s.shape == (5, 3, 32, 32)
        assert torch.isfinite(s).all()
        elbo = m.elbo(x, variance=var)["elbo"]
        assert elbo.shape == (32,)

    def test_vae_learned_variance(self):
        m = VAE(2, size=32, latent_dim=4, learn_variance=True, **SMALL)
        terms = m.loss(_data(bands=2))
        assert torch.isfinite(terms["loss"])

    @pytest.mark.parametrize("loss", ["ntxent", "dcl"])
    def test_simclr_loss_falls(self, loss):
        x = _data()
        g = torch.Generator().manual_seed(4)
        a = x + 0.05 * torch.randn(x.shape, generator=g)
        b = torch.flip(x, dims=(-1,)) + 0.05 * torch.randn(x.shape, generator=g)
        m = SimCLR(
            3,
            size=32,
            latent_dim=16,
            projection_dim=8,
            temperature=0.5,
            gather_distributed=False,
            loss=loss,
            **SMALL,
        )
        assert m.criterion.decoupled is (loss == "dcl")
        h = _train(m, lambda: m.loss(a, b))
        assert h[-1] < 0.7 * h[0]

    def test_simclr_decorrelation_term(self):
        x = _data()
        a, b = x, torch.flip(x, dims=(-1,))
        kw = dict(size=32, latent_dim=8, projection_dim=8, gather_distributed=False, **SMALL)
        torch.manual_seed(0)
        plain = SimCLR(3, **kw)
        torch.manual_seed(0)
        weighted = SimCLR(3, decorrelation_weight=3.0, **kw)
        with torch.no_grad():
            p, w = plain.loss(a, b), weighted.loss(a, b)
            h_a, h_b = weighted.encode(a), weighted.encode(b)
        assert set(p) == {"loss"}
        # Same weights: the NT-Xent term is the plain loss, the total adds 3 x the mean
        # penalty of the two views' representations (before the head).
        assert float(w["ntxent"]) == pytest.approx(float(p["loss"]), rel=1e-6)
        want = 0.5 * (correlation_penalty(h_a) + correlation_penalty(h_b))
        assert float(w["correlation"]) == pytest.approx(float(want), rel=1e-5)
        assert float(w["loss"]) == pytest.approx(float(p["loss"]) + 3.0 * float(want), rel=1e-5)

    def test_rotation_pretext_learns(self):
        x = _data(n=64)
        m = RotationPretext(3, size=32, latent_dim=16, **SMALL)
        h = _train(m, lambda: m.loss(x, generator=torch.Generator().manual_seed(5)), steps=60)
        assert h[-1] < 0.5 * h[0]


class TestContractive:
    def test_frobenius_norm_matches_autograd_reference(self):
        enc = ConvEncoder(2, size=16, latent_dim=3, widths=(4,))
        x = torch.randn(3, 2, 16, 16)
        got = jacobian_frobenius_sq(enc, x).detach()
        for b in range(3):
            jac = torch.autograd.functional.jacobian(lambda xi: enc(xi[None])[0], x[b])
            assert float(got[b]) == pytest.approx(float(jac.detach().pow(2).sum()), rel=1e-4)

    def test_contractive_variant_trains(self):
        x = _data(n=16, size=16)
        m = ConvAutoencoder(3, size=16, latent_dim=4, widths=(8,), contractive_weight=1e-3)
        assert "contractive" in m.loss(x)
        h = _train(m, lambda: m.loss(x), steps=25)
        assert h[-1] < h[0]


class TestPersistence:
    def test_save_load_same_outputs(self, tmp_path):
        m = ConvAutoencoder(3, size=32, latent_dim=8, **SMALL).eval()
        x = torch.randn(2, 3, 32, 32)
        torch.save(m.state_dict(), tmp_path / "m.pt")
        again = ConvAutoencoder(**m.config).eval()
        again.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
        torch.testing.assert_close(again(x), m(x))
        torch.testing.assert_close(again.encode(x), m.encode(x))


class TestBadConfig:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"latent_dim": 0}, r"latent_dim must be an integer in \[1, 4096\]"),
            ({"latent_dim": -3}, r"latent_dim must be an integer in \[1, 4096\]"),
            ({"size": 8}, r"size must be an integer in \[16, 256\] px"),
            ({"size": 20, "widths": (8, 16, 32, 64)}, r"size must be an integer in \[32, 256\]"),
            ({"widths": ()}, "widths must be a non-empty sequence"),
            ({"kind": "vit"}, "kind must be 'plain' or 'resnet'"),
            ({"sparsity": "l2"}, "sparsity must be None, 'l1' or 'kl'"),
            ({"sparsity_target": 1.5}, r"sparsity_target must be in \(0, 1\)"),
        ],
    )
    def test_autoencoder(self, kwargs, match):
        args = {"size": 32, "latent_dim": 4, "widths": (8, 16)} | kwargs
        with pytest.raises(ValueError, match=match):
            ConvAutoencoder(3, **args)

    def test_others(self):
        for bands in (0, 65, 10**9, True):
            with pytest.raises(ValueError, match=r"bands must be an integer in \[1, 64\]"):
                VAE(bands, size=32)
        with pytest.raises(ValueError, match=r"latent_dim must be an integer in \[1, 4096\]"):
            VAE(3, size=32, latent_dim=4097)
        with pytest.raises(ValueError, match=r"widths .* integers in \[1, 2048\]"):
            VAE(3, size=32, widths=(8, 4096))
        with pytest.raises(ValueError, match=r"widths must be a sequence"):
            VAE(3, size=32, widths=8)
        with pytest.raises(ValueError, match="beta must be a number >= 0"):
            VAE(3, size=32, beta=-1.0)
        for dim in (0, 5000):
            with pytest.raises(
                ValueError, match=r"projection_dim must be an integer in \[1, 4096\]"
            ):
                SimCLR(3, size=32, projection_dim=dim)
        for bad in (-1.0, True, "1"):
            with pytest.raises(ValueError, match="decorrelation_weight must be a number >= 0"):
                SimCLR(3, size=32, decorrelation_weight=bad)
        with pytest.raises(ValueError, match="loss must be 'ntxent' or 'dcl'; got 'nce'"):
            SimCLR(3, size=32, loss="nce")
        with pytest.raises(ValueError, match=r"encoder expects \(B, 3, 32, 32\)"):
            ConvEncoder(3, size=32, latent_dim=4, widths=(8,))(torch.zeros(1, 3, 30, 30))


def test_latents_are_finite_for_survey_cutouts(small_survey):
    x = torch.from_numpy(np.nan_to_num(small_survey.images[:8]))
    m = ConvAutoencoder(3, size=64, latent_dim=8, **SMALL)
    assert torch.isfinite(m.encode(x)).all()


class TestVAENoiseLikelihood:
    def test_the_likelihood_is_in_units_of_each_pixels_sky_noise(self):
        import math

        from astrounsup.models import VAE

        torch.manual_seed(0)
        vae = VAE(2, size=16, latent_dim=3, widths=(4, 8), noise_softening=2.0,
                  noise_scale=[4.0, 6.0]).eval()  # fmt: skip
        x = torch.randn(3, 2, 16, 16) * 0.3
        g = torch.Generator().manual_seed(1)
        terms = vae.elbo(x, generator=g)
        # Reference: the same posterior draw, the Gaussian NLL with sigma from the stretch.
        mu, log_var = vae.posterior(x)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(1))
        mean = vae.decode(mu + eps * (0.5 * log_var).exp())[0]
        c = torch.tensor([4.0, 6.0])[None, :, None, None]
        # The sky noise and 10% of the flux (z = sinh(c x)) in quadrature, through the stretch.
        z = torch.sinh(c * x)
        var = ((0.5**2 + (0.1 * z) ** 2) / (c**2 * (1 + z**2))).detach()
        nll = 0.5 * (torch.log(2 * math.pi * var) + (x - mean) ** 2 / var)
        torch.testing.assert_close(terms["nll"], nll.mean((1, 2, 3)), rtol=1e-4, atol=1e-4)

    def test_flux_error_zero_is_the_sky_noise_alone(self):
        from astrounsup.models import VAE

        vae = VAE(2, size=16, latent_dim=3, widths=(4, 8), noise_softening=2.0,
                  noise_scale=[4.0, 6.0], noise_flux_error=0.0)  # fmt: skip
        x = torch.linspace(-1, 2, 2 * 16 * 16).reshape(1, 2, 16, 16)
        c = torch.tensor([4.0, 6.0])[None, :, None, None]
        torch.testing.assert_close(vae.pixel_noise(x), 1.0 / (2.0 * c * torch.cosh(c * x)))
        with pytest.raises(
            ValueError,
            match=r"VAE: noise_flux_error must be a finite number in \[0.0, None\]; got -1",
        ):
            VAE(2, size=16, noise_softening=2.0, noise_scale=[4.0, 6.0], noise_flux_error=-1)

    def test_the_recipe_takes_the_noise_from_the_normaliser(self):
        from astrounsup.training import build_model

        vae, _, _ = build_model("vae", bands="gri", size=32, pixel_scale=0.263,
                                model_config={"widths": [4, 8]}, asinh_scale=[3.0, 4.0, 5.0],
                                asinh_softening=2.0)  # fmt: skip
        assert vae.noise_scale == [3.0, 4.0, 5.0]
        assert vae.noise_softening == 2.0
        learned, _, _ = build_model("vae", bands="gri", size=32, pixel_scale=0.263,
                                    model_config={"widths": [4, 8], "learn_variance": True},
                                    asinh_scale=[3.0, 4.0, 5.0], asinh_softening=2.0)  # fmt: skip
        assert learned.noise_scale is None

    def test_noise_settings_go_together(self):
        from astrounsup.models import VAE

        with pytest.raises(ValueError, match="noise_softening and noise_scale go together"):
            VAE(2, size=16, noise_softening=2.0)
        with pytest.raises(ValueError, match=r"noise_scale must have one value per band \(2\)"):
            VAE(2, size=16, noise_softening=2.0, noise_scale=[1.0])


class TestContextEncoder:
    def test_holes_follow_their_ranges(self):
        from astrounsup.models import draw_holes

        g = torch.Generator().manual_seed(0)
        holes = draw_holes((200, 3, 32, 32), count=(1, 1), size=(8, 8), generator=g)
        assert holes.shape == (200, 1, 32, 32)
        assert (holes.sum((1, 2, 3)) == 64).all()
        more = draw_holes((200, 3, 32, 32), count=(0, 3), size=(4, 6), generator=g)
        assert (more.sum((1, 2, 3)) == 0).any()

    def test_the_loss_weights_hidden_and_visible_pixels(self):
        from astrounsup.models import ContextEncoder

        torch.manual_seed(0)
        model = ContextEncoder(2, size=16, latent_dim=3, widths=(4, 8), visible_weight=0.25)
        x = torch.randn(4, 2, 16, 16)
        holes = torch.zeros(4, 1, 16, 16, dtype=torch.bool)
        holes[:, :, 4:10, 4:10] = True
        out = model.loss(x, holes=holes)
        pred = model.inpaint(x, holes)
        sq = (pred - x) ** 2
        h = holes.expand_as(x)
        inner = torch.stack([sq[i][h[i]].mean() for i in range(4)]).mean()
        outer = torch.stack([sq[i][~h[i]].mean() for i in range(4)]).mean()
        torch.testing.assert_close(out["loss"], inner + 0.25 * outer)
        # What is hidden is not seen: changing it leaves the prediction unchanged.
        changed = torch.where(h, x + 5.0, x)
        torch.testing.assert_close(model.inpaint(changed, holes), pred)

    def test_the_recipe_trains_and_takes_the_noise(self):
        from astrounsup.training import build_model, train

        model, _, _ = build_model("inpaint", bands="gr", size=32, pixel_scale=0.263,
                                  model_config={"widths": [4, 8]}, asinh_scale=[3.0, 4.0],
                                  asinh_softening=2.0)  # fmt: skip
        assert model.noise_scale == [3.0, 4.0]
        images = np.random.default_rng(0).normal(size=(24, 2, 32, 32)).astype("f4")
        fitted = train(images, model="inpaint", progress=False,
                       config={"model": {"latent_dim": 4, "widths": [4, 8]},
                               "training": {"max_steps": 3, "batch_size": 8}})  # fmt: skip
        assert fitted.model.noise_scale is not None
        assert np.isfinite(fitted.history.loss).all()
        assert fitted.embed(images, progress=False).shape == (24, 4)

    def test_bad_settings(self):
        from astrounsup.models import ContextEncoder

        with pytest.raises(ValueError, match=r"hole_size must be a range \(lo, hi\) in \[1, 16\]"):
            ContextEncoder(2, size=16, hole_size=(4, 20))
        with pytest.raises(ValueError, match="holes must be a range"):
            ContextEncoder(2, size=16, holes=(3, 1))


def test_simclr_dihedral_embedding_is_invariant_to_quarter_turns_and_mirrors():
    torch.manual_seed(0)
    m = SimCLR(3, size=16, latent_dim=4, projection_dim=4, widths=(4, 8), embed_dihedral=True,
               gather_distributed=False).eval()  # fmt: skip
    x = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z = m.encode(x)
        for t in (torch.rot90(x, 1, dims=(-2, -1)), torch.flip(x, dims=(-2,)),
                  torch.rot90(torch.flip(x, dims=(-1,)), 3, dims=(-2, -1))):  # fmt: skip
            torch.testing.assert_close(m.encode(t), z, atol=1e-5, rtol=1e-5)
        # Reference: the mean of the plain encoder over the eight transforms.
        views = [torch.flip(torch.rot90(x, k, dims=(-2, -1)), dims=(-1,)) if f else
                 torch.rot90(x, k, dims=(-2, -1)) for k in range(4) for f in (0, 1)]  # fmt: skip
        want = torch.stack([m.encoder(v) for v in views]).mean(dim=0)
        torch.testing.assert_close(z, want)
        # Training sees each view as it is.
        m.train()
        torch.testing.assert_close(m.encode(x), m.encoder(x))
    with pytest.raises(ValueError, match="embed_dihedral must be true or false; got 1"):
        SimCLR(3, size=16, embed_dihedral=1)
