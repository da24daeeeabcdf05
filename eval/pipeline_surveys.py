"""Evaluation: the lens search at its recommended settings, on our survey and on another's.

    python eval/pipeline_surveys.py --survey ours|lenstronomy [--n 2000] [--seeds 0,1,2]
                                    [--steps N] [--recon-recipe inpaint] [--workdir DIR]
                                    [--config TOML] [--record RUNS.jsonl]
    python eval/pipeline_surveys.py --survey ours|lenstronomy --workdir DIR --rescore
                                    [--redo-anomalies]
    python eval/pipeline_surveys.py --report RUNS.jsonl

Runs :func:`astrounsup.pipeline.run_lens_search` with the settings of
``pipelines/configs/lens_search_full.toml`` (the recommended lens search: its model,
steps, k, reduction and anomaly scorer; only the seeds change; ``--config`` measures
another, e.g. the README main job's ``lens_search.toml``, which embeds with the shipped
encoder), labels of both classes of which a tenth names the clusters (:data:`LABELS`, in
place of the configs' list of known lenses, whose regime ``eval/rare_lenses.py``
measures), on

* ``ours``: the built-in survey of ``pipelines/configs/synthetic_survey.toml`` at 2,000
  cutouts with half of them lenses (:data:`LENS_FRACTION`; 1% anomalies, every realism
  switch on);
* ``lenstronomy``: ``eval/lenstronomy_survey.py`` at the same size and fractions (LSST-like
  pixels, PSF and depth; populations and artefacts of its own; needs ``.[eval]``),

once per training seed, and measures from the catalogs it writes, on the objects whose
labels it did not use:

* lenses: the k-means call (accuracy, completeness, precision), the purity of the clusters
  (the call's accuracy if every cluster were named by the truth of its members: its bound),
  the per-object score
  (AUROC, a reliability table: mean score against the lens fraction in bins of score), the
  completeness of the call per quartile of the arcs' signal-to-noise, and the share of each
  non-lens kind called a lens;
* anomalies: AUROC, precision in the top 1%, and the recall of each kind in the top 1% and
  3% of the ranking.

Each survey is one run of this script (about 21 min on 2 cores at the defaults: three
runs of the full lens search, about 7 min each; ``--seeds 0`` runs one);
``--record`` appends its figures as a JSON line and ``--report`` prints the surveys in the
file side by side; ``--rescore`` measures the catalogs a ``--workdir`` run left again,
without training, and with ``--redo-anomalies`` does its anomaly step again on the
models it trained (same models, this code's scores). The targets are printed against the
mean over seeds.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
#: The settings measured: those recommended for a survey (the README main job,
#: ``lens_search.toml``, is the same embedding with the shipped encoder, untrained;
#: ``--config`` measures it).
CONFIG = ROOT / "pipelines" / "configs" / "lens_search_full.toml"
SURVEY_CONFIG = ROOT / "pipelines" / "configs" / "synthetic_survey.toml"
ANOMALY_KINDS = {
    "ours": ("satellite_trail", "cosmic_ray", "ghost", "ring_galaxy", "bleed_trail"),
    "lenstronomy": ("satellite_trail", "cosmic_ray", "ghost", "ring_galaxy", "bleed_trail"),
}
TARGETS = {
    "call_accuracy": 0.92,
    "call_completeness": 0.90,
    "score_auroc": 0.97,
    "anomaly_auroc": 0.95,
    "anomaly_precision_top1": 0.70,
}


#: The label regime this evaluation measures: half the objects lenses (:data:`LENS_FRACTION`)
#: and a tenth of the labels used, the rest scoring the result. The configs' own regime (a
#: list of known lenses at 1% lenses) is measured by ``eval/rare_lenses.py``.
LABELS = {"labels_column": "is_lens", "labeled_fraction": 0.1}
LENS_FRACTION = 0.5


def main_job_config(seed, *, recon_recipe=None, config=None, model_settings=None):
    """The sections (model, cluster, anomalies) of the lens-search ``config`` (default
    :data:`CONFIG`) with every seed set to ``seed`` and the labels of :data:`LABELS` (and
    another ``recon_recipe`` beside the main model, e.g. ``"inpaint"``; ``model_settings``
    set in ``[model.config.model]``, e.g. ``{"loss": "dcl"}``)."""
    with open(config or CONFIG, "rb") as f:
        cfg = tomllib.load(f)
    cfg = {k: copy.deepcopy(cfg[k]) for k in ("model", "features", "cluster", "anomalies")
           if k in cfg}  # fmt: skip
    regimes = ("labels_column", "labeled_fraction", "positive", "known_positives")
    cfg["cluster"] = {k: v for k, v in cfg["cluster"].items() if k not in regimes} | LABELS
    if recon_recipe:
        cfg["anomalies"]["recon_recipe"] = recon_recipe
    cfg["model"].setdefault("config", {}).setdefault("training", {})["seed"] = seed
    if model_settings:
        cfg["model"]["config"].setdefault("model", {}).update(model_settings)
    cfg["cluster"]["seed"] = seed
    cfg["anomalies"]["seed"] = seed
    cfg["anomalies"].setdefault("recon_config", {}).setdefault("training", {})["seed"] = seed
    return cfg


def make_store(survey, n, workdir, *, seed=0, lens_fraction=None):
    """The survey's cutout store in ``workdir``, made once: the main job's survey settings
    (``pipelines/configs/synthetic_survey.toml``) at ``n`` cutouts, or the lenstronomy survey
    at its fractions, with :data:`LENS_FRACTION` lenses or ``lens_fraction``."""
    from astrounsup.io import write_store

    with open(SURVEY_CONFIG, "rb") as f:
        base = tomllib.load(f)["survey"]
    fraction = LENS_FRACTION if lens_fraction is None else lens_fraction
    store = Path(workdir) / f"{survey}_{n}_{fraction:g}_{seed}.h5"
    if store.exists():
        return store
    if survey == "ours":
        from astrounsup.simulate import simulate_lens_survey

        kw = {k: v for k, v in base.items()
              if k not in ("n", "lens_fraction", "seed", "known_lenses")}  # fmt: skip
        s = simulate_lens_survey(n, lens_fraction=fraction, seed=base["seed"] + seed,
                                 progress=False, **kw)  # fmt: skip
    else:
        from lenstronomy_survey import simulate_lenstronomy_survey

        s = simulate_lenstronomy_survey(
            n, lens_fraction=fraction, anomaly_fraction=base["anomaly_fraction"], seed=seed,
            progress=False,
        )  # fmt: skip
    write_store(store, s.images, s.table, bands=s.bands, pixel_scale=s.pixel_scale)
    return store


def _reliability(score, truth, bins=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0)):
    rows = []
    for lo, hi in itertools.pairwise(bins):
        sel = (score >= lo) & ((score < hi) if hi < 1 else (score <= hi))
        rows.append(
            {
                "bin": f"{lo:.1f}-{hi:.1f}",
                "n": int(sel.sum()),
                "mean_score": float(score[sel].mean()) if sel.any() else float("nan"),
                "lens_fraction": float(truth[sel].mean()) if sel.any() else float("nan"),
            }
        )
    return rows


def snr_quartiles(snr):
    """The quartile edges of the arcs' signal-to-noise ``snr`` and each arc's quartile (0-3;
    a quartile holds its lower edge, the last also its upper one)."""
    edges = np.quantile(snr, [0.0, 0.25, 0.5, 0.75, 1.0])
    return edges, np.clip(np.searchsorted(edges, snr, side="right") - 1, 0, 3)


def lens_metrics(clusters):
    """Figures of the cluster catalog, on the rows whose labels were not used."""
    from astrounsup.latent import binary_metrics

    held = ~np.asarray(clusters["labeled"])
    truth = np.asarray(clusters["is_lens"])[held]
    call = np.asarray(clusters["lens_candidate"])[held]
    score = np.asarray(clusters["lens_score"])[held]
    kinds = np.asarray(clusters["kind"])[held]
    m = binary_metrics(call, truth)
    # The call's bound: every cluster named by the true majority of its held-out members.
    cluster = np.asarray(clusters["cluster"])[held]
    majority = sum(max(truth[cluster == c].sum(), (~truth[cluster == c]).sum())
                   for c in np.unique(cluster))  # fmt: skip
    out = {
        "call_accuracy": m["accuracy"],
        "cluster_purity": float(majority / truth.size),
        "call_completeness": m["completeness"],
        "call_precision": m["precision"],
        "score_auroc": float(roc_auc_score(truth, score)),
        "score_accuracy": float(np.mean((score > 0.5) == truth)),
        "reliability": _reliability(score, truth),
    }
    edges, quart = snr_quartiles(np.asarray(clusters["arc_snr"])[held][truth])
    out["completeness_by_arc_snr"] = [
        {
            "quartile": q + 1,
            "arc_snr": f"{edges[q]:.0f}-{edges[q + 1]:.0f}",
            "call": float(call[truth][quart == q].mean()),
            "score": float((score[truth][quart == q] > 0.5).mean()),
        }
        for q in range(4)
    ]
    out["called_lens_by_kind"] = {
        str(k): float(call[kinds == k].mean()) for k in np.unique(kinds[~truth])
    }
    return out


def anomaly_metrics(anomalies, kinds_of_interest):
    truth = np.asarray(anomalies["is_anomaly"])
    score = np.asarray(anomalies["anomaly_score"])
    kinds = np.asarray(anomalies["kind"])
    order = np.argsort(-score, kind="stable")
    n = len(score)
    out = {"anomaly_auroc": float(roc_auc_score(truth, score)), "n_anomalies": int(truth.sum())}
    top1, top3 = order[: max(1, n // 100)], order[: max(1, (3 * n) // 100)]
    out["anomaly_precision_top1"] = float(truth[top1].mean())
    out["recall_by_kind"] = {}
    for kind in kinds_of_interest:
        sel = kinds == kind
        if sel.any():
            out["recall_by_kind"][kind] = {
                "n": int(sel.sum()),
                "top1": float(np.isin(np.nonzero(sel)[0], top1).mean()),
                "top3": float(np.isin(np.nonzero(sel)[0], top3).mean()),
            }
    return out


def run(survey, n, seeds, workdir, *, steps=None, recon_recipe=None, config=None,
        model_settings=None):  # fmt: skip
    from astropy.table import QTable

    from astrounsup.pipeline import run_lens_search

    t0 = time.perf_counter()
    store = make_store(survey, n, workdir)
    t_survey = time.perf_counter() - t0
    print(f"{survey}: {n} cutouts in {t_survey:.0f} s ({store})", flush=True)
    runs = []
    for seed in seeds:
        t1 = time.perf_counter()
        out = Path(workdir) / f"{survey}_seed{seed}"
        cfg = main_job_config(seed, recon_recipe=recon_recipe, config=config,
                              model_settings=model_settings)  # fmt: skip
        done = run_lens_search(store, out, cfg, steps=steps, progress=False, log=None)
        clusters = QTable.read(done["cluster"]["clusters"])
        anomalies = QTable.read(done["anomalies"]["anomalies"])
        figures = {"seed": seed, "runtime_s": round(time.perf_counter() - t1, 1)}
        figures |= lens_metrics(clusters)
        figures |= anomaly_metrics(anomalies, ANOMALY_KINDS[survey])
        runs.append(figures)
        print(
            f"  seed {seed}: call accuracy {figures['call_accuracy']:.3f}, completeness "
            f"{figures['call_completeness']:.3f}; score AUROC {figures['score_auroc']:.3f}; "
            f"anomaly AUROC {figures['anomaly_auroc']:.3f}, top-1% precision "
            f"{figures['anomaly_precision_top1']:.2f} ({figures['runtime_s']:.0f} s)",
            flush=True,
        )
    label = survey if not recon_recipe else f"{survey}+{recon_recipe}"
    if config is not None and Path(config).resolve() != CONFIG.resolve():
        label += f" ({Path(config).name})"
    return {"survey": label, "n": n, "steps": steps, "survey_s": round(t_survey, 1),
            "runtime_s": round(time.perf_counter() - t0, 1), "runs": runs}  # fmt: skip


def redo_anomalies(out, store, seed):
    """The main job's anomaly step again, with this code, on the latents and the
    reconstruction model that its run left in ``out`` (as
    :func:`astrounsup.pipeline.run_lens_search` calls it)."""
    from astrounsup.latent import read_latents
    from astrounsup.pipeline import LENS_SEARCH_ANOMALY_DEFAULTS, score_anomalies

    cfg = main_job_config(seed)["anomalies"]
    cfg = {k: v for k, v in cfg.items() if k not in LENS_SEARCH_ANOMALY_DEFAULTS}
    latents, table, _ = read_latents(out / "latents.h5")
    recon_latents, recon_table, _ = read_latents(out / "recon_latents.h5")
    result = score_anomalies(
        recon_latents, recon_table, cfg | {"recon": True}, model=out / "recon_run" / "last.pt",
        data=store, context=(latents, table), progress=False,
    )  # fmt: skip
    return result.tables["anomalies"]


def rescore(survey, seeds, workdir, *, anomalies=False):
    """The figures of the catalogs an earlier run left in ``workdir`` (no training); with
    ``anomalies``, of the anomaly step done again on its models (:func:`redo_anomalies`)."""
    from astropy.table import QTable

    runs = []
    for seed in seeds:
        t1 = time.perf_counter()
        out = Path(workdir) / f"{survey}_seed{seed}"
        paths = (out / "cluster" / "clusters.ecsv", out / "anomalies" / "anomalies.ecsv")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise SystemExit(f"--rescore: no catalog {missing[0]} (run with --workdir first)")
        if anomalies:
            store = sorted(Path(workdir).glob(f"{survey}_*.h5"))[0]
            scored = redo_anomalies(out, store, seed)
        else:
            scored = QTable.read(paths[1])
        figures = {"seed": seed, "runtime_s": round(time.perf_counter() - t1, 1)}
        figures |= lens_metrics(QTable.read(paths[0]))
        figures |= anomaly_metrics(scored, ANOMALY_KINDS[survey])
        runs.append(figures)
        print(f"  seed {seed}: anomaly AUROC {figures['anomaly_auroc']:.3f}, top-1% "
              f"precision {figures['anomaly_precision_top1']:.2f} "
              f"({figures['runtime_s']:.0f} s)", flush=True)  # fmt: skip
    return {"survey": survey, "n": len(QTable.read(paths[0])), "steps": None,
            "survey_s": float("nan"), "runtime_s": float("nan"), "runs": runs}  # fmt: skip


def _mean(runs, key):
    return float(np.mean([r.get(key, np.nan) for r in runs]))


def report(entries):
    """Print the surveys' figures side by side (means over seeds) and the targets."""
    names = [e["survey"] for e in entries]
    print(f"{'figure (mean over seeds)':34s}" + "".join(f"{n:>14s}" for n in names))
    keys = ("call_accuracy", "cluster_purity", "call_completeness", "call_precision",
            "score_auroc",
            "score_accuracy", "anomaly_auroc", "anomaly_precision_top1")  # fmt: skip
    for key in keys:
        line = f"{key:34s}" + "".join(f"{_mean(e['runs'], key):14.3f}" for e in entries)
        if key in TARGETS:
            line += f"   target >= {TARGETS[key]}"
        if key == "cluster_purity":
            line += "   (the call's bound: clusters named by their truth)"
        print(line)
    print("completeness of the call (score > 0.5) per arc S/N quartile:")
    for q in range(4):
        cells = []
        for e in entries:
            rows = [r["completeness_by_arc_snr"][q] for r in e["runs"]]
            call = np.mean([x["call"] for x in rows])
            cells.append(f"{call:.2f} ({np.mean([x['score'] for x in rows]):.2f})")
        print(f"  quartile {q + 1:<24d}" + "".join(f"{c:>14s}" for c in cells))
    print("share of each non-lens kind called a lens:")
    kinds = sorted({k for e in entries for r in e["runs"] for k in r["called_lens_by_kind"]})
    for k in kinds:
        cells = []
        for e in entries:
            v = [r["called_lens_by_kind"][k] for r in e["runs"] if k in r["called_lens_by_kind"]]
            cells.append(f"{np.mean(v):.2f}" if v else "-")
        print(f"  {k:32s}" + "".join(f"{c:>14s}" for c in cells))
    print("reliability of the per-object score (seeds pooled): bin, n, mean score, lens fraction")
    for e in entries:
        print(f"  {e['survey']}:")
        for b in range(len(e["runs"][0]["reliability"])):
            rows = [r["reliability"][b] for r in e["runs"]]
            cnt = sum(x["n"] for x in rows)
            w = [x["n"] for x in rows]
            ms = np.average([x["mean_score"] for x in rows], weights=w) if cnt else np.nan
            lf = np.average([x["lens_fraction"] for x in rows], weights=w) if cnt else np.nan
            print(f"    {rows[0]['bin']}  {cnt:5d}  {ms:.3f}  {lf:.3f}")
    print("anomaly recall by kind in the top 1% / 3%:")
    kinds = sorted({k for e in entries for r in e["runs"] for k in r["recall_by_kind"]})
    for k in kinds:
        cells = []
        for e in entries:
            rows = [r["recall_by_kind"][k] for r in e["runs"] if k in r["recall_by_kind"]]
            cnt = sum(x["n"] for x in rows)
            t1 = sum(x["top1"] * x["n"] for x in rows) / cnt if cnt else np.nan
            t3 = sum(x["top3"] * x["n"] for x in rows) / cnt if cnt else np.nan
            cells.append(f"{t1:.2f}/{t3:.2f} ({cnt})")
        print(f"  {k:32s}" + "".join(f"{c:>16s}" for c in cells) + "   target top 3% >= 0.50")
    for e in entries:
        print(f"{e['survey']}: {e['n']} cutouts, seeds "
              f"{[r['seed'] for r in e['runs']]}, survey {e['survey_s']:.0f} s, total "
              f"{e['runtime_s']:.0f} s")  # fmt: skip
    met = all(_mean(e["runs"], key) >= value for e in entries for key, value in TARGETS.items())
    return 0 if met else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survey", choices=("ours", "lenstronomy"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated")
    parser.add_argument("--steps", type=int, default=None, help="override the main job's steps")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here")
    parser.add_argument("--config", type=Path, default=CONFIG, help="the lens-search TOML")
    parser.add_argument(
        "--recon-recipe", default=None,
        help="score anomalies with this model beside the main one (default: the main job's)",
    )  # fmt: skip
    parser.add_argument("--record", type=Path, default=None, help="append figures (JSON lines)")
    parser.add_argument("--report", type=Path, default=None, help="print a record file")
    parser.add_argument(
        "--rescore", action="store_true",
        help="measure the catalogs an earlier run left in --workdir again (no training)",
    )  # fmt: skip
    parser.add_argument(
        "--redo-anomalies", action="store_true",
        help="with --rescore: do the anomaly step again on that run's models, with this code",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.report:
        entries = [json.loads(line) for line in args.report.read_text().splitlines() if line]
        return report(entries)
    if not args.survey:
        parser.error("--survey is required (or --report FILE)")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.rescore:
        if not args.workdir:
            parser.error("--rescore needs --workdir (the folder of an earlier run)")
        entry = rescore(args.survey, seeds, args.workdir, anomalies=args.redo_anomalies)
    elif args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        entry = run(args.survey, args.n, seeds, args.workdir, steps=args.steps,
                    recon_recipe=args.recon_recipe, config=args.config)  # fmt: skip
    else:
        with tempfile.TemporaryDirectory() as tmp:
            entry = run(args.survey, args.n, seeds, tmp, steps=args.steps,
                        recon_recipe=args.recon_recipe, config=args.config)  # fmt: skip
    if args.record:
        from lens_clustering import record_run

        record_run(args.record, entry)
    return report([entry])


if __name__ == "__main__":
    sys.exit(main())
