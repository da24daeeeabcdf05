"""Every benchmark (bench/) and evaluation (eval/) script runs, at a tiny size.

Their figures (speed, quality) are measured by running them at full size; here they only
have to run to the end and print their report, so that none rots unnoticed. They run in
this process: their imports and compiled kernels (numba for UMAP) are then shared.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(path):
    """The script at ``path`` as a module (its folder first on the path, as when run)."""
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(f"_script_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def _run(relative, argv, capsys, monkeypatch):
    """Run a script's ``main(argv)``; return its exit status and what it printed."""
    path = ROOT / relative
    monkeypatch.syspath_prepend(str(path.parent))
    status = _script(path).main(argv)
    return status, capsys.readouterr().out


# Each script, tiny arguments, and a line its report must hold. Exit status 1 only says a
# full-size target was missed, which a tiny run does.
SCRIPTS = [
    ("bench/augment_throughput.py", ["--batch", "8", "--batches", "1", "--rounds", "1"],
     "batched torch:"),
    ("bench/io_throughput.py", ["--n", "24", "--repeats", "1", "--batch-size", "8",
                                "--workdir", "{tmp}"], "target (b) >= 20 x (a)"),
    ("bench/latent_scale.py", ["--n", "3000", "--fit", "1000", "--dim", "4", "--queries", "5",
                               "--stage", "knn-sklearn", "--workdir", "{tmp}"],
     "scikit-learn exact (brute)"),
    ("bench/gpu_figures.py", ["--device", "cpu", "--n", "16", "--steps", "6", "--batch", "8",
                              "--vectors", "500", "--dim", "4", "--queries", "10"],
     "embedding (SimCLR encoder)"),
    ("bench/embed_memory.py", ["--shard", "8", "--shards", "1,2", "--workdir", "{tmp}"],
     "peak of 16 cutouts / peak of 8"),
    ("bench/ingest_workers.py", ["--n", "6", "--repeats", "1", "--workdir", "{tmp}"],
     "target >= 1.8x with 2 workers"),
    ("bench/simulate.py", ["--n", "8"], "simulated 8 cutouts"),
    ("bench/train_throughput.py", ["--steps", "1", "--batch", "8", "--models", "cae,simclr"],
     "simclr  bare loop"),
    ("eval/ae_vs_pca.py", ["--train", "80", "--test", "16", "--latent", "4", "--steps", "2"],
     "PCA"),
    ("eval/anomalies.py", ["--n", "150", "--steps", "1", "--simclr-steps", "1",
                           "--batch-size", "16", "--save", "{tmp}/scores.npz"], "best scorer"),
    ("eval/linear_probe.py", ["--train", "64", "--test", "32", "--steps", "1",
                              "--batch-size", "16"], "probe accuracy"),
    ("eval/main_sequence.py", ["--n", "1500"], "Spearman rho"),
    # Runs eval/pipeline_surveys.py's lens search inside, with every SimCLR switch on.
    ("eval/input_ablation.py", ["--survey", "ours", "--n", "150", "--steps", "2",
                                "--rows", "all three", "--workdir", "{tmp}"],
     "| all three | "),
    ("eval/supervised_ceiling.py", ["--survey", "ours", "--n", "150", "--steps", "2",
                                    "--workdir", "{tmp}"], "precision of the top 100"),
    ("eval/simclr_settings.py", ["--train", "64", "--test", "32", "--steps", "1",
                                 "--batch-size", "16", "--k", "3", "--repeats", "1"],
     "linear probe (10% labels)"),
]  # fmt: skip


@pytest.mark.parametrize(("script", "argv", "expected"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_script_runs_at_a_tiny_size(script, argv, expected, tmp_path, capsys, monkeypatch):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    status, out = _run(script, argv, capsys, monkeypatch)
    assert status in (0, 1)
    assert expected in out


def test_rare_lenses_then_vetting_on_its_kept_latents(tmp_path, capsys, monkeypatch):
    """``rare_lenses.py --workdir W`` keeps its latents; ``vetting.py --workdir W`` grades
    and re-ranks on them without training again."""
    common = ["--survey", "ours", "--n", "1500", "--known", "5", "--steps", "2", "--seeds", "0",
              "--workdir", str(tmp_path)]  # fmt: skip
    status, out = _run("eval/rare_lenses.py", common, capsys, monkeypatch)
    assert status in (0, 1)
    assert "precision_top100" in out
    kept = tmp_path / "ours_run0" / "latents.h5"
    stamp = kept.stat().st_mtime_ns
    status, out = _run("eval/vetting.py", [*common, "--grade", "10", "--next", "20",
                                           "--rounds", "2"], capsys, monkeypatch)  # fmt: skip
    assert status in (0, 1)
    assert "precision_next_after" in out
    assert kept.stat().st_mtime_ns == stamp  # read, not trained again
    # The anomaly step on the same survey and latents, with a round of vetting.
    argv = [*common[:4], "--steps", "2", "--workdir", str(tmp_path), "--rounds", "1",
            "--grade", "5", "--rows", "LOF + detectors, tail;detectors alone, tail",
            "--learning", "graded only;scorer weights, explore"]  # fmt: skip
    status, out = _run("eval/anomaly_search.py", argv, capsys, monkeypatch)
    assert status == 0
    assert "| LOF + detectors, tail |" in out
    assert "| detectors alone, tail |" in out
    assert "| graded only | 1 | 5 (" in out  # one vetting round of 5 grades
    assert "| scorer weights, explore | 1 | 5 (" in out
    assert "anomalies outside the top 1% by kind" in out
    assert kept.stat().st_mtime_ns == stamp


def test_supervised_ceiling_top_precision_against_counting(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "eval"))
    top_precision = _script(ROOT / "eval/supervised_ceiling.py").top_precision
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(400, bool), np.zeros(4000, bool)]
    # Perfectly separated: the top 100 are all lenses.
    assert top_precision(y, y + 0.0) == pytest.approx(1.0)
    # Scores whose held-out ROC is that of a survey with 100 lenses among 14850 others:
    # counting the top 100 of such a survey directly gives the same precision.
    s = np.where(y, rng.normal(2.0, 1.0, len(y)), rng.normal(0.0, 1.0, len(y)))
    big_y = np.r_[np.ones(100, bool), np.zeros(14850, bool)]
    counted = []
    for seed in range(20):
        r = np.random.default_rng(seed)
        big = np.where(big_y, r.normal(2.0, 1.0, len(big_y)), r.normal(0.0, 1.0, len(big_y)))
        counted.append(big_y[np.argsort(-big)[:100]].mean())
    assert top_precision(y, s) == pytest.approx(np.mean(counted), abs=0.05)


def test_latent_scale_stages_in_process(capsys, monkeypatch, tmp_path):
    pytest.importorskip("faiss", reason="faiss (the scale extra) is not installed")
    for stage in ("umap", "kmeans-sklearn", "kmeans-faiss", "knn-faiss-flat", "knn-faiss-ivfpq"):
        argv = ["--child", "--stage", stage, "--n", "3000", "--fit", "1000", "--n-umap", "120",
                "--dim", "4", "--queries", "5", "--workdir", str(tmp_path)]  # fmt: skip
        status, out = _run("bench/latent_scale.py", argv, capsys, monkeypatch)
        assert status == 0
        assert json.loads(out.strip().splitlines()[-1])["peak_rss_mib"] > 0


def test_lens_clustering_records_and_lens_seeds_summarises(tmp_path, capsys, monkeypatch):
    record = tmp_path / "runs.jsonl"
    for seed in ("0", "1"):
        argv = ["--train", "96", "--test", "48", "--steps", "1", "--batch-size", "16",
                "--k", "3", "--repeats", "1", "--seed", seed, "--record", str(record)]  # fmt: skip
        status, out = _run("eval/lens_clustering.py", argv, capsys, monkeypatch)
        assert status in (0, 1)
        assert "PCA(12) of SimCLR" in out
    assert len(record.read_text().splitlines()) == 2
    status, out = _run("eval/lens_seeds.py", [str(record)], capsys, monkeypatch)
    assert status in (0, 1)
    assert "mean" in out


def test_anomaly_scores_rescore_from_a_saved_file(tmp_path, capsys, monkeypatch):
    saved = tmp_path / "s.npz"
    argv = ["--n", "150", "--steps", "1", "--simclr-steps", "1", "--batch-size", "16",
            "--save", str(saved)]  # fmt: skip
    _, first = _run("eval/anomalies.py", argv, capsys, monkeypatch)
    _, again = _run("eval/anomalies.py", ["--rescore", str(saved)], capsys, monkeypatch)
    table = [line for line in first.splitlines() if "AUROC" in line]
    assert table
    assert table == [line for line in again.splitlines() if "AUROC" in line]


def test_the_lenstronomy_survey_and_the_pipeline_on_it(tmp_path, capsys, monkeypatch):
    pytest.importorskip("lenstronomy", reason="the eval extra (lenstronomy) is not installed")
    monkeypatch.syspath_prepend(str(ROOT / "eval"))
    survey = _script(ROOT / "eval" / "lenstronomy_survey.py")
    s = survey.simulate_lenstronomy_survey(40, anomaly_fraction=0.25, seed=3, progress=False)
    assert s.images.shape == (40, 3, 64, 64)
    t = s.table
    assert int(t["is_lens"].sum()) == 20
    lens = np.asarray(t["is_lens"])
    assert np.isfinite(t["arc_snr"][lens]).all()
    assert np.isnan(t["arc_snr"][~lens]).all()
    assert np.isfinite(s.images).all()
    # The measured sky noise is lenstronomy's background noise, converted to nanomaggies.
    from astrounsup.noise import estimate_sky

    _, noise = estimate_sky(s.images)
    np.testing.assert_allclose(np.median(noise, 0), np.median(t["noise_sigma"].value, 0),
                               rtol=0.1)  # fmt: skip
    argv = ["--survey", "lenstronomy", "--n", "150", "--steps", "2", "--seeds", "0",
            "--record", str(tmp_path / "r.jsonl")]  # fmt: skip
    status, out = _run("eval/pipeline_surveys.py", argv, capsys, monkeypatch)
    assert status in (0, 1)
    assert "lenstronomy" in out
    status, out = _run("eval/pipeline_surveys.py", ["--report", str(tmp_path / "r.jsonl")],
                       capsys, monkeypatch)  # fmt: skip
    assert "anomaly_auroc" in out


def test_main_job_benchmark_prints_every_step(tmp_path, capsys, monkeypatch):
    configs = ROOT / "pipelines" / "configs"
    survey = (configs / "synthetic_survey.toml").read_text()
    assert "lens_fraction = 0.01 " in survey
    (tmp_path / "survey.toml").write_text(survey.replace("lens_fraction = 0.01 ",
                                                         "lens_fraction = 0.1 "))  # fmt: skip
    text = (configs / "lens_search.toml").read_text()
    for old, new in (("k = 20", "k = 3"), ("batch_size = 128", "batch_size = 8"),
                     ('"pipelines/configs/synthetic_survey.toml"',
                      f"'{tmp_path / 'survey.toml'}'")):  # fmt: skip
        assert old in text
        text = text.replace(old, new)
    config = tmp_path / "tiny.toml"
    config.write_text(text)
    argv = ["--n", "100", "--steps", "2", "--config", str(config), "--workdir", str(tmp_path)]
    status, out = _run("bench/main_job.py", argv, capsys, monkeypatch)
    assert status in (0, 1)
    steps = [line.split()[0] for line in out.splitlines()[1:9]]
    assert steps == ["survey", "train", "embed", "features", "cluster", "anomalies", "report",
                     "total"]  # fmt: skip
    # Ten lenses, five of them known (at most half): five to find.
    assert "lenses to find                 5.000" in out
    assert "lenses in the first 100" in out
    assert "anomaly AUROC" in out


def test_compare_runs_finds_a_changed_column(tmp_path, capsys, monkeypatch):
    from astropy.table import Table

    for name, score in (("before", [0.1, np.nan, 0.3]), ("after", [0.1, np.nan, 0.3])):
        (tmp_path / name / "cluster").mkdir(parents=True)
        t = Table({"object_id": ["a", "b", "c"], "score": score},
                  meta={"date": name, "latents": f"/{name}/latents.h5", "k": 20})  # fmt: skip
        t.write(tmp_path / name / "cluster" / "clusters.ecsv")
    argv = [str(tmp_path / "before"), str(tmp_path / "after")]
    status, out = _run("bench/compare_runs.py", argv, capsys, monkeypatch)
    assert status == 0, out
    assert "  score: same" in out
    assert "meta" not in out  # the date is ignored, paths compared by file name
    t = Table.read(tmp_path / "after" / "cluster" / "clusters.ecsv")
    t["score"][2] = 0.25
    t["extra"] = [1, 2, 3]
    t.write(tmp_path / "after" / "cluster" / "clusters.ecsv", overwrite=True)
    status, out = _run("bench/compare_runs.py", argv, capsys, monkeypatch)
    assert status == 1
    assert "score: DIFFERS: 1 values differ, largest by 0.05" in out
    assert "extra: added" in out


def test_anomaly_search_scorer_weights_follow_the_grades(monkeypatch):
    """A scorer whose graded tops are all ``not`` loses weight against one whose graded
    tops are anomalies, so the next outlier of the second comes first."""
    monkeypatch.syspath_prepend(str(ROOT / "eval"))
    weighted = _script(ROOT / "eval/anomaly_search.py")._scorer_weighted
    # Objects 0-3 are the tops of scorer a (graded not), 4-7 of scorer b (graded anomaly);
    # objects 8 and 9 are the next outliers of a and b, equally far out.
    scaled = np.zeros((10, 2))
    scaled[:4, 0] = 5.0
    scaled[4:8, 1] = 5.0
    scaled[8, 0] = scaled[9, 1] = 2.0
    anomaly = np.r_[np.zeros(4, bool), np.ones(4, bool), False, False]
    combined = weighted(scaled, np.arange(8), anomaly, prior=5)
    # Beta prior of 5 grades at the mean 0.5: a's weight (0 + 2.5) / 9 / 0.5,
    # b's (4 + 2.5) / 9 / 0.5.
    assert combined[8] == pytest.approx(2.0 * 2.5 / 9 / 0.5)
    assert combined[9] == pytest.approx(2.0 * 6.5 / 9 / 0.5)
