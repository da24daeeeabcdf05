import subprocess
import sys
from pathlib import Path

import pytest
from astropy.table import QTable

from astrounsup.io import read_store

ROOT = Path(__file__).resolve().parents[1]


class TestPipeline:
    def test_the_main_job_is_the_full_search_embedding_with_the_shipped_encoder(self):
        import tomllib

        configs = ROOT / "pipelines" / "configs"
        main = tomllib.loads((configs / "lens_search.toml").read_text())
        full = tomllib.loads((configs / "lens_search_full.toml").read_text())
        assert (main["model"].pop("steps"), full["model"].pop("steps")) == (0, 1200)
        assert main["model"].pop("init") == "pretrained"
        assert "init" not in full["model"]
        assert main["survey"].pop("fits") is False
        assert main == full

    def test_synthetic_survey_pipeline(self, tmp_path):
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "pipelines" / "synthetic_survey.py"),
                "--n",
                "200",
                "--out",
                str(tmp_path / "s"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "200 cutouts" in result.stdout
        # 1% lenses: two, one of them listed as known.
        assert "known lenses: 1 of the 2 lenses of this simulated survey" in result.stdout
        images, table, _ = read_store(tmp_path / "s" / "cutouts.h5")
        assert images.shape == (200, 3, 64, 64)
        assert table.meta["seed"] == "20261124"

    def test_lens_search_pipeline(self, tmp_path, lens_search):
        """The README main job's config at a tiny size, through the script's ``main`` in this
        process (PyTorch and UMAP's compiled code shared with the other tests)."""
        survey_cfg = tmp_path / "survey.toml"
        survey_cfg.write_text(
            "[survey]\nn = 40\nseed = 3\nbands = ['g', 'r', 'i']\nsize = 64\n"
            "pixel_scale = 0.263\nlens_fraction = 0.5\nknown_lenses = 5\n"
            "anomaly_fraction = 0.05\nnan_fraction = 0.0\n"
            f"[output]\ndirectory = '{tmp_path / 'survey'}'\nfits = false\n"
        )
        text = (ROOT / "pipelines" / "configs" / "lens_search.toml").read_text()
        text = text.replace('"pipelines/configs/synthetic_survey.toml"', f"'{survey_cfg}'")
        known = tmp_path / "survey" / "known_lenses.txt"
        text = text.replace('"catalogs/synthetic_survey/known_lenses.txt"', f"'{known}'")
        text = text.replace("k = 20", "k = 4").replace("batch_size = 128", "batch_size = 8")
        # Booleans and every other TOML value reach the trainer as they are.
        text = text.replace("warmup_steps = 40", "warmup_steps = 40\ncompile = false")
        (tmp_path / "search.toml").write_text(text)
        result = lens_search("--config", tmp_path / "search.toml", "--steps", "2",
                             "--out", tmp_path / "out")  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "40 cutouts" in result.stdout
        assert "every other object ranked from 5 known positives" in result.stdout
        clusters = QTable.read(tmp_path / "out" / "cluster" / "clusters.ecsv")
        assert len(clusters) == 40
        assert "lens_score" in clusters.colnames
        # The survey's five known lenses are the labels: the rest are ranked from them.
        labeled = clusters[clusters["labeled"]]
        assert sorted(labeled["object_id"]) == sorted(known.read_text().splitlines()[1:])
        assert all(labeled["is_lens"])
        # The config's reduction reaches the cluster step.
        assert clusters.meta["reduce"] == "pca"
        assert clusters.meta["n_components"] == 12
        anomalies = QTable.read(tmp_path / "out" / "anomalies" / "anomalies.ecsv")
        assert list(anomalies["anomaly_rank"]) == list(range(1, 41))
        # LOF on the SimCLR latents and the four detectors, no second model.
        assert anomalies.meta["scorers"] == "lof,trail,sharp,ghost,ring"
        assert anomalies.meta["combine"] == "tail"
        assert set(anomalies["top_scorer"]) <= {"lof", "trail", "sharp", "ghost", "ring"}
        assert not (tmp_path / "out" / "recon_run").exists()
        from astrounsup.training import TrainedModel

        trained = TrainedModel.load(tmp_path / "out" / "run" / "last.pt")
        assert trained.config["training"]["compile"] is False
        # --steps shortens the run, and its warm-up stays within it.
        assert trained.config["training"]["max_steps"] == 2
        assert trained.config["training"]["warmup_steps"] == 0


def _search_config(tmp_path):
    """The main job's config made tiny (k 4, batch 8, no compilation)."""
    text = (ROOT / "pipelines" / "configs" / "lens_search.toml").read_text()
    text = text.replace("k = 20", "k = 4").replace("batch_size = 128", "batch_size = 8")
    text = text.replace("warmup_steps = 40", "warmup_steps = 40\ncompile = false")
    path = tmp_path / "search.toml"
    path.write_text(text)
    return path


def _script(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "pipelines" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def lens_search(capsys):
    """Run ``pipelines/lens_search.py`` in this process (its ``main``), as from a shell."""
    module = _script("lens_search")

    def run(*args):
        capsys.readouterr()
        try:
            code = module.main([str(a) for a in args])
        except SystemExit as stop:  # argparse errors
            code = stop.code
        out = capsys.readouterr()
        return _Result(code, out.out, out.err)

    return run


class TestLensSearchOnYourData:
    """``pipelines/lens_search.py --data``: a survey of your own, with or without labels
    (its ``main`` in this process)."""

    def test_fits_cutouts_and_a_catalog_without_labels(self, small_survey, tmp_path, lens_search):
        from astrounsup.io import write_fits_cutouts

        s = small_survey
        table = s.table[:30]["object_id", "ra", "dec"]
        write_fits_cutouts(tmp_path / "fits", s.images[:30], table, bands=s.bands,
                           pixel_scale=s.pixel_scale, per_band_columns=())  # fmt: skip
        table["file"] = [f"{i}.fits" for i in table["object_id"]]
        table.write(tmp_path / "catalog.ecsv")
        out = tmp_path / "out"
        args = ["--data", tmp_path / "fits", "--catalog", tmp_path / "catalog.ecsv",
                "--config", _search_config(tmp_path), "--steps", "2", "--out", out]  # fmt: skip
        result = lens_search(*args)
        assert result.returncode == 0, result.stderr
        assert "ingested 30 cutouts" in result.stdout
        clusters = QTable.read(out / "cluster" / "clusters.ecsv")
        assert len(clusters) == 30
        assert "lens_score" not in clusters.colnames  # no labels: clusters only
        assert len(QTable.read(out / "anomalies" / "anomalies.ecsv")) == 30
        # The re-run reuses every step.
        again = lens_search(*args)
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("reused") == 6  # every step, the arc features too
        assert (out / "report" / "index.html").exists()

    def test_labels_and_known_lenses_of_a_store(self, small_survey, tmp_path, lens_search):
        from astrounsup.io import write_store

        s = small_survey
        table = s.table[:40]
        table["grade"] = ["yes" if v else "no" for v in table["is_lens"]]
        write_store(tmp_path / "mine.h5", s.images[:40], table, bands=s.bands,
                    pixel_scale=s.pixel_scale)  # fmt: skip
        config = _search_config(tmp_path)
        common = ["--data", tmp_path / "mine.h5", "--config", config, "--steps", "2"]
        result = lens_search(*common, "--labels", "grade", "--positive", "yes",
                              "--labeled-fraction", "0.5", "--out", tmp_path / "a")  # fmt: skip
        assert result.returncode == 0, result.stderr
        clusters = QTable.read(tmp_path / "a" / "cluster" / "clusters.ecsv")
        assert {"grade_score", "grade_rank", "labeled"} <= set(clusters.colnames)
        ids = tmp_path / "known.txt"
        ids.write_text("\n".join(str(i) for i in table["object_id"][table["is_lens"]][:5]))
        result = lens_search(*common, "--known-lenses", ids, "--out", tmp_path / "b")
        assert result.returncode == 0, result.stderr
        clusters = QTable.read(tmp_path / "b" / "cluster" / "clusters.ecsv")
        assert clusters["labeled"].sum() == 5
        assert len(set(clusters["lens_rank"])) == 40  # every object ranked, no ties

    def test_a_small_survey_gets_settings_it_can_use_said_in_one_line(
        self, small_survey, tmp_path, lens_search
    ):
        from astrounsup.io import write_store

        s = small_survey
        write_store(tmp_path / "thirty.h5", s.images[:30], s.table[:30], bands=s.bands,
                    pixel_scale=s.pixel_scale)  # fmt: skip
        config = tmp_path / "main.toml"  # the main job's settings: k 20, batch 128
        config.write_text((ROOT / "pipelines" / "configs" / "lens_search.toml").read_text())
        result = lens_search("--data", tmp_path / "thirty.h5", "--config", config, "--steps", "2",
                             "--k", "12", "--out", tmp_path / "out")  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert ("small survey (30 objects): batch_size 128 -> 16, k 12 -> 6, n_neighbors 20 -> "
                "10, context_neighbors 50 -> 15") in result.stdout  # fmt: skip
        assert "cluster: 6 clusters of 30 objects" in result.stdout
        # The same folder with other data: refused, then replaced when told.
        write_store(tmp_path / "other.h5", s.images[30:60], s.table[30:60], bands=s.bands,
                    pixel_scale=s.pixel_scale)  # fmt: skip
        args = ["--data", tmp_path / "other.h5", "--config", config, "--out", tmp_path / "out"]
        refused = lens_search(*args)
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == [
            f"lens_search.py: error: {tmp_path / 'out'}: holds a run on other data "
            f"({(tmp_path / 'thirty.h5').resolve()}); pass --overwrite (overwrite=True) to "
            "replace it, or give another output folder"
        ]
        replaced = lens_search(*args, "--overwrite")
        assert replaced.returncode == 0, replaced.stderr
        assert "reused" not in replaced.stdout
        write_store(tmp_path / "nine.h5", s.images[:9], s.table[:9], bands=s.bands,
                    pixel_scale=s.pixel_scale)  # fmt: skip
        tiny = lens_search("--data", tmp_path / "nine.h5", "--config", config, "--out",
                           tmp_path / "nine")  # fmt: skip
        assert tiny.returncode == 2
        assert "a lens search needs at least 10 objects; the survey has 9" in tiny.stderr

    def test_bad_input_is_one_line_naming_it_before_training(
        self, small_survey, tmp_path, lens_search
    ):
        from astrounsup.io import write_store

        s = small_survey
        write_store(tmp_path / "mine.h5", s.images[:20], s.table[:20], bands=s.bands,
                    pixel_scale=s.pixel_scale)  # fmt: skip
        # Stamps the shipped encoder does not take (the main job's config embeds with it).
        write_store(tmp_path / "small.h5", s.images[:20, :, 8:-8, 8:-8], s.table[:20],
                    bands=s.bands, pixel_scale=s.pixel_scale)  # fmt: skip
        (tmp_path / "notes.txt").write_text("not cutouts")
        ids = tmp_path / "known.txt"
        ids.write_text("lens-0001\nlens-0002\n")
        config = _search_config(tmp_path)
        cases = [
            (["--data", tmp_path / "notes.txt"], "notes.txt: neither a cutout store"),
            (["--data", tmp_path / "missing.h5"], "missing.h5"),
            (["--data", tmp_path / "mine.h5", "--labels", "grade"],
             "mine.h5: no column 'grade'"),
            (["--data", tmp_path / "mine.h5", "--known-lenses", ids],
             "known_positives: 2 of 2 ids are not in"),
            (["--data", tmp_path / "mine.h5", "--vetted", tmp_path / "notes.txt"],
             "notes.txt: no column(s) ['object_id', 'grade', 'kind', 'time']"),
            (["--data", tmp_path / "mine.h5", "--labels", "is_lens", "--vetted",
              tmp_path / "notes.txt"], "notes.txt: no column(s)"),
            (["--data", tmp_path / "small.h5"], "init: the shipped encoder simclr-gri takes an "
             "input of 36 px; cutouts of 48 px give 24 (cut or pad them, or train without "
             "init); --config pipelines/configs/lens_search_full.toml trains one from scratch"),
        ]  # fmt: skip
        for args, named in cases:
            out = tmp_path / "out"
            result = lens_search(*args, "--config", config, "--out", out)
            assert result.returncode == 2, (args, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, lines
            assert lines[0].startswith("lens_search.py: error:"), lines
            assert named in lines[0]
            assert "Traceback" not in result.stderr
            assert not (out / "run").exists()
        both = lens_search("--data", tmp_path / "mine.h5", "--labels", "kind",
                            "--known-lenses", ids)  # fmt: skip
        assert both.returncode == 2
        assert "two label regimes" in both.stderr
        # A second run into the folder another run writes is refused while that one runs.
        import subprocess
        import sys

        busy = tmp_path / "busy"
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys\nfrom astrounsup._locks import output_lock\n"
             "with output_lock(sys.argv[1]):\n print('held', flush=True)\n sys.stdin.read()",
             str(busy)], text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert holder.stdout.readline().strip() == "held"
            second = lens_search("--data", tmp_path / "mine.h5", "--config", config, "--out", busy)
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
            holder.stdout.close()
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"lens_search.py: error: {busy}: another process is writing it now (it holds "
            ".busy.lock); wait for it to finish, or stop it, and run again"
        ]
        assert not (busy / "run").exists()
