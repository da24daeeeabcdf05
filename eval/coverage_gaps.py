"""Evaluation: do stamps cut at the survey's edge crowd out the anomalies?

    python eval/coverage_gaps.py --survey ours|lenstronomy [--n 15000] [--gaps 0.02]
                                 [--seed 0] [--workdir DIR] [--record RUNS.jsonl]

A real survey's stamps near its edge (or a chip gap) hold a band of NaN pixels: no data.
This takes the survey of ``eval/rare_lenses.py`` (1% lenses, 1% anomalies), cuts a share
``--gaps`` of its stamps at random (whatever their kind) with a band of NaN pixels along
one side or two (a corner), 5-45% of the stamp (all bands; below the store's 50% flag,
so they are scored), embeds both stores with the lens search's model
(``pipelines/configs/lens_search.toml``: the shipped encoder) and scores them with its
anomaly step (:func:`astrounsup.pipeline.score_anomalies`). Reported, without and with the
gaps: AUROC and top-1% precision of the anomalies, how many of the top 1% are cut stamps
that are no anomaly, and which scorer put those highest. Target: the cut stamps that are
no anomaly hold no more of the top 1% than their share of the survey.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from anomaly_search import figures
from pipeline_surveys import main_job_config, make_store

CONFIG = Path(__file__).resolve().parents[1] / "pipelines" / "configs" / "lens_search.toml"


def cut_at_the_edge(images, share, seed):
    """A copy of ``images`` with a share of stamps cut: NaN along one side (or two), 5-45%
    of the stamp; returns ``(images, cut)``, ``cut`` the bool of the stamps cut."""
    rng = np.random.default_rng(seed)
    n, _, ny, nx = images.shape
    cut = rng.random(n) < share
    out = images.copy()
    for i in np.flatnonzero(cut):
        sides = rng.choice(4, size=1 + int(rng.random() < 0.3), replace=False)
        for side in sides:
            width = round(rng.uniform(0.05, 0.45 / len(sides)) * (nx if side < 2 else ny))
            width = max(width, 1)
            if side == 0:
                out[i, :, :, :width] = np.nan
            elif side == 1:
                out[i, :, :, nx - width :] = np.nan
            elif side == 2:
                out[i, :, :width, :] = np.nan
            else:
                out[i, :, ny - width :, :] = np.nan
    return out, cut


def gap_store(store, share, seed, workdir):
    """The store with its stamps cut (:func:`cut_at_the_edge`), written once in
    ``workdir``; returns ``(path, cut)``."""
    from astrounsup.io import read_store, write_store

    path = Path(workdir) / f"{Path(store).stem}_gaps{share:g}_{seed}.h5"
    images, table, attrs = read_store(store)
    cut_images, cut = cut_at_the_edge(images, share, seed)
    if not path.exists():
        write_store(path, cut_images, table, bands=attrs["bands"],
                    pixel_scale=attrs["pixel_scale"])  # fmt: skip
    return path, cut


def score(store, seed, workdir, tag):
    """Embed ``store`` with the lens search's model and run its anomaly step."""
    from astrounsup.pipeline import embed_latents, score_anomalies, train_model

    cfg = main_job_config(seed, config=CONFIG)
    trained = train_model(store, cfg["model"], out=Path(workdir) / f"gaps_{tag}",
                          progress=False)  # fmt: skip
    latents, table = embed_latents(trained, store, progress=False)
    # The anomaly step's own settings (the second model's are the lens search's to use).
    settings = {k: v for k, v in cfg["anomalies"].items() if not k.startswith("recon_")}
    result = score_anomalies(latents, table, settings | {"gallery": 0}, data=store)
    return result, table


def gap_figures(result, table, cut):
    """The cut stamps that are no anomaly in the top 1%, and who put them there."""
    cat = result.tables["anomalies"]
    ids = np.asarray(table["object_id"]).astype(str)
    rows = {k: i for i, k in enumerate(ids)}
    order = np.array([rows[k] for k in np.asarray(cat["object_id"]).astype(str)])
    anomaly = np.asarray(table["is_anomaly"], bool)[order]
    cut = cut[order]
    rank = np.asarray(cat["anomaly_rank"])
    top = rank <= max(1, round(0.01 * len(rank)))
    crowd = top & cut & ~anomaly
    scorer = np.asarray(cat["top_scorer"]).astype(str)
    return {
        "cut_share": float(cut.mean()),
        "cut_in_top1pct": int(crowd.sum()),
        "cut_share_of_top1pct": float(crowd.sum() / top.sum()),
        "cut_found_by": {
            str(s): int(np.sum(crowd & (scorer == s))) for s in sorted(set(scorer[crowd]))
        },
        "cut_anomalies_in_top1pct": (
            f"{int(np.sum(top & cut & anomaly))} of {int(np.sum(cut & anomaly))}"
        ),
    }


def run(survey, n, share, seed, workdir):
    store = make_store(survey, n, workdir, seed=100, lens_fraction=0.01)
    cut_store, cut = gap_store(store, share, seed, workdir)
    out = {"survey": survey, "n": n, "gaps": share, "seed": seed}
    for tag, path in (("without gaps", store), ("with gaps", cut_store)):
        t0 = time.perf_counter()
        result, table = score(path, seed, workdir, tag.replace(" ", "_"))
        row = figures(result, table)
        if tag == "with gaps":
            row |= gap_figures(result, table, cut)
        row["runtime_s"] = round(time.perf_counter() - t0, 1)
        out[tag] = row
        print(f"  {survey}, {tag}: {row}", flush=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survey", choices=("ours", "lenstronomy"), default="ours")
    parser.add_argument("--n", type=int, default=15_000)
    parser.add_argument("--gaps", type=float, default=0.02, help="share of stamps cut")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="eval_work/rare")
    parser.add_argument("--record", default=None, help="append the figures (JSON lines)")
    args = parser.parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    entry = run(args.survey, args.n, args.gaps, args.seed, args.workdir)
    if args.record:
        with open(args.record, "a") as f:
            f.write(json.dumps(entry) + "\n")
    gaps = entry["with gaps"]
    print(f"cut stamps that are no anomaly: {gaps['cut_share_of_top1pct']:.2f} of the top 1% "
          f"(their share of the survey {gaps['cut_share']:.3f}); anomalies' top-1% precision "
          f"{entry['without gaps']['precision_top1pct']:.2f} without gaps, "
          f"{gaps['precision_top1pct']:.2f} with")  # fmt: skip
    return 0 if gaps["cut_share_of_top1pct"] <= gaps["cut_share"] else 1


if __name__ == "__main__":
    sys.exit(main())
