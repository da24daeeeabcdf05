import h5py
import numpy as np
import pytest
import torch
from astropy.table import QTable

from astrounsup.io import CutoutDataset
from astrounsup.latent import embed_dataset, read_latents, write_latents
from astrounsup.models import ConvAutoencoder, SimCLR


@pytest.fixture
def dataset():
    rng = np.random.default_rng(2)
    return CutoutDataset(rng.normal(0, 1, (9, 2, 20, 20)).astype(np.float32), bands=("g", "r"))


def test_embedding_is_the_encoder_output_in_order(dataset):
    torch.manual_seed(0)
    model = ConvAutoencoder(2, size=20, latent_dim=5, widths=(4, 8)).eval()
    z = embed_dataset(model, dataset, batch_size=4)
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


def test_read_latents_names_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.h5: no such latents file"):
        read_latents(tmp_path / "nothing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"other\.h5: not an astrounsup latents file"):
        read_latents(tmp_path / "other.h5")
    write_latents(tmp_path / "z.h5", np.ones((2, 3)), QTable({"object_id": ["a", "b"]}))
    z, table, _ = read_latents(tmp_path / "z.h5")
    assert z.shape == (2, 3)
    assert list(table["object_id"]) == ["a", "b"]
