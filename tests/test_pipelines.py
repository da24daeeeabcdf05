import subprocess
import sys
from pathlib import Path

from astropy.table import QTable

from astrounsup.io import read_store

ROOT = Path(__file__).resolve().parents[1]


class TestPipeline:
    def test_synthetic_survey_pipeline(self, tmp_path):
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "pipelines" / "synthetic_survey.py"),
                "--n",
                "12",
                "--out",
                str(tmp_path / "s"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "12 cutouts" in result.stdout
        images, table, _ = read_store(tmp_path / "s" / "cutouts.h5")
        assert images.shape == (12, 3, 64, 64)
        assert table.meta["seed"] == "20261124"

    def test_lens_search_pipeline(self, tmp_path):
        survey_cfg = tmp_path / "survey.toml"
        survey_cfg.write_text(
            "[survey]\nn = 40\nseed = 3\nbands = ['g', 'r', 'i']\nsize = 64\n"
            "pixel_scale = 0.263\nlens_fraction = 0.5\nanomaly_fraction = 0.05\n"
            "nan_fraction = 0.0\n"
            f"[output]\ndirectory = '{tmp_path / 'survey'}'\nfits = false\n"
        )
        text = (ROOT / "pipelines" / "configs" / "lens_search.toml").read_text()
        text = text.replace('"pipelines/configs/synthetic_survey.toml"', f"'{survey_cfg}'")
        text = text.replace("k = 20", "k = 4").replace("batch_size = 128", "batch_size = 8")
        text = text.replace("labeled_fraction = 0.1 ", "labeled_fraction = 0.5 ")
        text = text.replace("batch_size = 64", "batch_size = 8")
        text = text.replace("context_neighbors = 50", "context_neighbors = 5")
        # Booleans and every other TOML value reach the trainer as they are.
        text = text.replace("warmup_steps = 40", "warmup_steps = 40\ncompile = false")
        (tmp_path / "search.toml").write_text(text)
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "pipelines" / "lens_search.py"),
                "--config",
                str(tmp_path / "search.toml"),
                "--steps",
                "2",
                "--out",
                str(tmp_path / "out"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "40 cutouts" in result.stdout
        clusters = QTable.read(tmp_path / "out" / "cluster" / "clusters.ecsv")
        assert len(clusters) == 40
        assert "lens_score" in clusters.colnames
        # The config's reduction reaches the cluster step.
        assert clusters.meta["reduce"] == "pca"
        assert clusters.meta["n_components"] == 12
        anomalies = QTable.read(tmp_path / "out" / "anomalies" / "anomalies.ecsv")
        assert list(anomalies["anomaly_rank"]) == list(range(1, 41))
        # LOF on the VAE's latents, its trail score, and its reconstruction errors against
        # the SimCLR neighbours' (the config's recon_recipe).
        assert anomalies.meta["scorers"] == (
            "lof,line,chi2_context,chi2_max_context,chi2_extended_context,elbo_context,context_lof"
        )
        assert anomalies.meta["context"].endswith("latents.h5")
        assert (tmp_path / "out" / "recon_run" / "last.pt").exists()
        from astrounsup.training import TrainedModel

        trained = TrainedModel.load(tmp_path / "out" / "run" / "last.pt")
        assert trained.config["training"]["compile"] is False
        # --steps shortens the run, and its warm-up stays within it.
        assert trained.config["training"]["max_steps"] == 2
        assert trained.config["training"]["warmup_steps"] == 0
