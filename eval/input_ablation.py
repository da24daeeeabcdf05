"""Evaluation: SimCLR's astronomy-aware switches, each alone and together, on one survey.

    python eval/input_ablation.py --survey ours|lenstronomy --workdir DIR [--n 2000]
                                  [--seeds 0] [--steps 400] [--rows NAME,NAME,...]
                                  [--config TOML]

Each row is the lens search of ``--config`` (default ``pipelines/configs/
lens_search_full.toml``: SimCLR from scratch) with ``[model.config.model]`` settings of
:class:`astrounsup.models.SimCLR` changed:

* ``baseline``: the recipe's defaults (strong views, NT-Xent, the bands only);
* ``survey views``: ``views = "survey"`` (seeing and depth drawn from the survey's own, no
  reddening; :func:`astrounsup.training.contrastive_view_settings`);
* ``DCL``: ``loss = "dcl"`` (the positive left out of the softmax denominator);
* ``colour residuals``: ``colour_residuals = true`` (the encoder also sees ``b - a_b *
  red``, :class:`astrounsup.models.ColourResiduals`);
* ``dihedral embedding``: ``embed_dihedral = true`` (latents averaged over the 8 quarter
  turns and mirrors of each cutout; training unchanged);
* ``all three``: the first three switches.

Every row runs :func:`astrounsup.pipeline.run_lens_search` through
``eval/pipeline_surveys.py`` on one store (made once in ``DIR``), and is measured on the
objects whose labels it did not use: the call (the per-object score from latents and arc
features) accuracy / completeness / AUROC / completeness in the faintest arc-S/N quartile,
the AUROC of the score from the latents alone (``eval/lens_ablation.py``'s ``latents``: what
the representation itself brings), and the anomaly ranking's AUROC and top-1% precision.
Means over ``--seeds``. One row takes about 3-4 minutes on 2 cores at the defaults.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline_surveys
from lens_ablation import run_variants

ROWS = {
    "baseline": {},
    "survey views": {"views": "survey"},
    "DCL": {"loss": "dcl"},
    "colour residuals": {"colour_residuals": True},
    "dihedral embedding": {"embed_dihedral": True},
    "all three": {"views": "survey", "loss": "dcl", "colour_residuals": True},
}


def latents_only_auroc(run_dir, store, cluster_cfg):
    """The AUROC of the lens score from the run's reduced latents and clusters alone."""
    from astrounsup.io import as_dataset, read_catalog
    from astrounsup.latent import read_latents

    latents, table, _ = read_latents(run_dir / "latents.h5")
    full = as_dataset(store).table
    for col in ("is_lens", "arc_snr"):
        table[col] = full[col]
    arcs = read_catalog(run_dir / "features" / "arc_features.ecsv")
    out, _ = run_variants(latents, table, arcs, cluster_cfg, kmeans_seeds=0)
    return out["latents"]["auroc"], out["latents+arcs"]["faint_completeness"]


def run_row(name, survey, n, seeds, workdir, *, steps, config):
    """One row: the lens search with the row's settings in ``workdir/<name>``."""
    store = pipeline_surveys.make_store(survey, n, workdir)
    row_dir = workdir / name.replace(" ", "_")
    row_dir.mkdir(parents=True, exist_ok=True)
    if not (row_dir / store.name).exists():
        (row_dir / store.name).symlink_to(store.resolve())
    entry = pipeline_surveys.run(survey, n, seeds, row_dir, steps=steps, config=config,
                                 model_settings=ROWS[name])  # fmt: skip
    for figures in entry["runs"]:
        seed = figures["seed"]
        cluster_cfg = pipeline_surveys.main_job_config(seed, config=config)["cluster"]
        auroc, faint = latents_only_auroc(row_dir / f"{survey}_seed{seed}", store, cluster_cfg)
        figures["latents_auroc"], figures["faint_completeness"] = auroc, faint
    return entry


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survey", choices=("ours", "lenstronomy"), required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated row names")
    parser.add_argument("--config", type=Path, default=pipeline_surveys.CONFIG)
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",")]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"--rows: unknown {unknown}; known: {list(ROWS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    keys = ("call_accuracy", "call_completeness", "score_auroc", "faint_completeness",
            "latents_auroc", "anomaly_auroc", "anomaly_precision_top1")  # fmt: skip
    table = {}
    for name in rows:
        entry = run_row(name, args.survey, args.n, seeds, args.workdir, steps=args.steps,
                        config=args.config)  # fmt: skip
        table[name] = {k: float(np.mean([r[k] for r in entry["runs"]])) for k in keys}
        table[name]["runtime_s"] = entry["runtime_s"]
    print(f"\n{args.survey}: {args.n} cutouts, SimCLR {args.steps} steps, seeds {seeds} "
          "(means; held-out objects)")  # fmt: skip
    print("| row | acc | compl | AUROC | faint-quartile compl | latents-only AUROC | "
          "anomaly AUROC | top-1% | s |")  # fmt: skip
    print("|---" * 9 + "|")
    for name, v in table.items():
        cells = " | ".join(f"{v[k]:.3f}" for k in keys)
        print(f"| {name} | {cells} | {v['runtime_s']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
