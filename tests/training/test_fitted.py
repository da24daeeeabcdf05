import numpy as np
import pytest
import torch

from astrounsup.io import CutoutDataset
from astrounsup.models import ConvAutoencoder, SimCLR
from astrounsup.training import TrainedModel, embed_dataset, train


@pytest.fixture
def dataset():
    rng = np.random.default_rng(2)
    return CutoutDataset(rng.normal(0, 1, (9, 2, 20, 20)).astype(np.float32), bands=("g", "r"))


def test_embedding_is_the_encoder_output_in_order(dataset):
    torch.manual_seed(0)
    model = ConvAutoencoder(2, size=20, latent_dim=5, widths=(4, 8)).eval()
    z = embed_dataset(model, dataset, batch_size=4, progress=False)
    x, _, _ = dataset[list(range(9))]
    with torch.no_grad():
        ref = model.encode(x).numpy()
    assert z.shape == (9, 5)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, ref, rtol=1e-5, atol=1e-6)


def test_input_size_centre_crops_first(dataset):
    torch.manual_seed(0)
    model = SimCLR(2, size=16, latent_dim=6, widths=(4, 8)).eval()
    z = embed_dataset(model, dataset, input_size=16)
    x, _, _ = dataset[list(range(9))]
    with torch.no_grad():
        ref = model.encode(x[..., 2:18, 2:18]).numpy()
    np.testing.assert_allclose(z, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.needs_cuda
def test_cuda_embedding_matches_cpu(dataset):
    torch.manual_seed(0)
    model = ConvAutoencoder(2, size=20, latent_dim=5, widths=(4, 8)).eval()
    cpu = embed_dataset(model, dataset, device="cpu")
    gpu = embed_dataset(model, dataset, device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-4)


TINY = {
    "model": {"latent_dim": 4, "widths": [4, 8]},
    "training": {"max_steps": 3, "batch_size": 8},
}


@pytest.fixture(scope="module")
def cutouts(small_survey):
    return small_survey.images[:32]


@pytest.fixture(scope="module")
def fitted(small_survey, cutouts):
    return train(
        cutouts, model="cae", config=TINY, bands=small_survey.bands,
        pixel_scale=small_survey.pixel_scale, progress=False,
    )  # fmt: skip


class TestTrain:
    def test_an_array_and_a_partial_config(self, fitted, small_survey):
        assert isinstance(fitted, TrainedModel)
        assert fitted.history.step == [1, 2, 3]
        assert fitted.latent_dim == 4
        assert fitted.bands == tuple(small_survey.bands)
        assert fitted.pixel_scale == pytest.approx(small_survey.pixel_scale)
        # The keys not given keep their defaults.
        assert fitted.config["training"]["lr"] == 1e-3
        assert fitted.config["model"]["kind"] == "plain"
        assert fitted.checkpoint is None  # nothing was written

    def test_embedding_in_memory_is_the_encoder_on_normalised_cutouts(self, fitted, cutouts):
        z = fitted.embed(cutouts, progress=False)
        data = CutoutDataset(cutouts, bands=fitted.bands, normalizer=fitted.normalizer)
        x, _, _ = data[list(range(len(cutouts)))]
        with torch.no_grad():
            ref = fitted.model.encode(x).numpy()
        assert z.shape == (len(cutouts), 4)
        np.testing.assert_allclose(z, ref, rtol=1e-5, atol=1e-6)

    def test_a_store_and_a_dataset_train_alike(self, small_survey, cutouts, tmp_path):
        from astrounsup.io import AsinhNormalizer, write_store

        store = write_store(
            tmp_path / "s.h5", cutouts, small_survey.table[:32], bands=small_survey.bands,
            pixel_scale=small_survey.pixel_scale,
        )  # fmt: skip
        own = AsinhNormalizer(softening=5.0).fit(cutouts)
        dataset = CutoutDataset(store, normalizer=own)
        a = train(store, config=TINY, progress=False)
        b = train(dataset, config=TINY, progress=False)
        assert dataset.normalizer is own  # the caller's dataset is left as it was
        torch.testing.assert_close(
            torch.cat([p.flatten() for p in a.model.parameters()]),
            torch.cat([p.flatten() for p in b.model.parameters()]),
        )
        assert a.source == str(store)

    @pytest.mark.parametrize(
        ("config", "match"),
        [
            ({"training": {"stepz": 3}}, r"config\['training'\]: unknown key 'stepz'; allowed"),
            ({"model": {"colour": "blue"}}, r"unknown key 'colour' for model 'cae'"),
            ({"optimiser": {}}, r"unknown sections \['optimiser'\]"),
            ({"training": 3}, r"config\['training'\] must be a table"),
        ],
    )
    def test_unknown_keys_are_refused_by_name(self, cutouts, config, match):
        with pytest.raises(ValueError, match=match):
            train(cutouts, config=config, progress=False)

    def test_simclr_on_an_array_needs_its_pixel_scale(self, cutouts):
        with pytest.raises(ValueError, match="pixel_scale: SimCLR's views blur"):
            train(cutouts, model="simclr", config=TINY, bands=("g", "r", "i"), progress=False)

    def test_options_that_only_arrays_take(self, tmp_path, small_survey):
        from astrounsup.io import write_store

        store = write_store(
            tmp_path / "s.h5", small_survey.images[:4], small_survey.table[:4],
            bands=small_survey.bands, pixel_scale=0.263,
        )  # fmt: skip
        with pytest.raises(ValueError, match=r"table describe.* a store knows its own"):
            train(store, table=small_survey.table[:4], config=TINY, progress=False)
        # A pixel scale only where the cutouts lack one, or agree.
        with pytest.raises(ValueError, match=r"pixel_scale 0\.2 arcsec given, but the cutouts"):
            train(store, pixel_scale=0.2, config=TINY, progress=False)


class TestTrainedModel:
    def test_save_and_load_give_the_same_embedding(self, fitted, cutouts, tmp_path):
        path = fitted.save(tmp_path / "model.pt")
        again = TrainedModel.load(path)
        assert again.recipe == "cae"
        assert again.bands == fitted.bands
        assert again.config == fitted.config
        assert again.history.loss == fitted.history.loss
        np.testing.assert_array_equal(
            again.embed(cutouts, progress=False), fitted.embed(cutouts, progress=False)
        )
        assert "TrainedModel('cae', ConvAutoencoder" in repr(again)

    def test_training_cannot_resume_from_a_saved_model(self, fitted, cutouts, tmp_path):
        fitted.save(tmp_path / "last.pt")
        with pytest.raises(ValueError, match="without its optimiser state"):
            train(cutouts, config=TINY, out_dir=tmp_path, resume=True, bands=fitted.bands,
                  progress=False)  # fmt: skip

    def test_other_bands_are_refused_naming_both(self, fitted, small_survey, tmp_path):
        with pytest.raises(ValueError, match=r"shape \(n, 3, ny, nx\) for the bands"):
            fitted.embed(small_survey.images[:4, :2])
        two = CutoutDataset(small_survey.images[:4, :2], bands=("g", "r"))
        with pytest.raises(ValueError, match=r"bands \['g', 'r'\] differ from the training"):
            fitted.embed(two)

    def test_a_file_without_a_model_is_refused(self, tmp_path):
        from astrounsup.training import save_checkpoint

        save_checkpoint(tmp_path / "x.pt", {"format": "astrounsup.checkpoint"})
        with pytest.raises(ValueError, match=r"x\.pt: holds no astrounsup model"):
            TrainedModel.load(tmp_path / "x.pt")
        with pytest.raises(FileNotFoundError, match="no such checkpoint"):
            TrainedModel.load(tmp_path / "y.pt")

    @pytest.mark.parametrize(
        ("change", "match"),
        [
            ({"bands": 10**9}, r"its model has 1000000000 bands but it names 3"),
            ({"latent_dim": 10**9}, r"ConvAutoencoder config is refused \(latent_dim must be an "
                                    r"integer in \[1, 4096\]"),
            ({"widths": [10**7, 10**7]}, r"widths must be a non-empty sequence of integers in "
                                         r"\[1, 2048\]"),
            ({"size": 10**6}, r"size must be an integer in \[16, 256\]"),
            ({"bogus": 1}, r"config is refused \(.*'bogus'"),
            ({"latent_dim": True}, r"latent_dim must be an integer"),
        ],
    )  # fmt: skip
    def test_a_crafted_model_config_is_refused_before_building(self, fitted, tmp_path, change,
                                                               match):  # fmt: skip
        from astrounsup.training import load_checkpoint, save_checkpoint

        state = load_checkpoint(fitted.save(tmp_path / "model.pt"))
        state["model_config"] = dict(state["model_config"]) | change
        save_checkpoint(tmp_path / "crafted.pt", state)
        # Refused at once (a model of 10**9 bands or latents would need terabytes).
        with pytest.raises(ValueError, match=r"crafted\.pt: .*" + match):
            TrainedModel.load(tmp_path / "crafted.pt")


class TestMessages:
    """What a notebook user is told when the arrays are not what the model takes."""

    def test_smaller_cutouts_than_the_model_takes(self, fitted, cutouts):
        pattern = r"the cutouts: cutouts of 48 px, but .* takes 64 px \(a centred crop"
        with pytest.raises(ValueError, match=pattern):
            fitted.embed(cutouts[:4, :, 8:56, 8:56], progress=False)

    def test_a_cutout_without_a_finite_pixel_is_embedded_and_said_so(self, fitted, cutouts):
        images = cutouts[:6].copy()
        images[2] = np.nan
        images[4, 1] = 0.0
        with pytest.warns(UserWarning, match=r"2 cutouts \(rows \[2, 4\]\) have a band of one "
                          r"value \(blank, all NaN or all zero\)"):  # fmt: skip
            z = fitted.embed(images, progress=False)
        assert np.isfinite(z).all()

    def test_bands_without_dust_coefficients_are_said_to_go_unreddened(self, cutouts):
        with pytest.warns(UserWarning, match=r"bands \['b1', 'b2', 'b3'\] are not among "
                          r"astrounsup.instrument.BANDS.*not reddened"):  # fmt: skip
            train(cutouts, model="simclr", config=TINY, bands=["b1", "b2", "b3"],
                  pixel_scale=0.2, progress=False)  # fmt: skip
