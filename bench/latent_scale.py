"""Benchmark: latent analysis at survey scale, scikit-learn and faiss side by side.

    python bench/latent_scale.py [--n 10000000] [--fit 1000000] [--dim 32] [--queries 100]
                                 [--data mixture|heavy] [--n-umap 100000] [--stage all|...]

On ``n`` synthetic latents (float32; ``mixture``: a 20-component Gaussian mixture;
``heavy``: the same centres with anisotropic Student-t (3 degrees of freedom) scatter, for a
second look at settings chosen on the first), each stage in its own process so that its
peak resident memory (``ru_maxrss``) is its own:

- k-means, k = 20, one start, centres fitted on ``fit`` random objects and every object
  assigned (:class:`astrounsup.latent.LatentClusterer` with ``kmeans_fit_size``), with the
  scikit-learn and the faiss backends; their agreement (adjusted Rand index over all ``n``);
- 10-nearest-neighbour search (:class:`astrounsup.latent.SimilaritySearch`): scikit-learn's
  exact brute force, faiss's exact flat index, and faiss IVF-PQ (``n_probe="auto"``, tuned
  at fit to recall 0.95): build time, the median latency of single-object queries (20),
  ``queries`` queries at once, and recall@10 of those queries (new objects drawn from the
  same distribution, not the ones tuning used) against the exact neighbours;
- UMAP to 2-D on ``n-umap`` objects (numba compilation included).

Targets (2 cores): faiss >= 5x faster than scikit-learn for the same k-means, IVF-PQ
queries >= 5x faster than scikit-learn's exact search, recall@10 >= 0.95, every stage's peak
RSS < 8 GiB; UMAP on 10^5 < 180 s. Exits 1 if one is missed. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def latents(n, dim, *, seed=0, kind="mixture"):
    """``n`` float32 latents around 20 centres (generated in blocks: no float64 copy)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(0.0, 3.0, (20, dim)).astype(np.float32)
    scales = np.random.default_rng(1).uniform(0.3, 1.5, dim).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for lo in range(0, n, 1_000_000):
        m = min(n, lo + 1_000_000) - lo
        which = rng.integers(0, 20, m)
        if kind == "mixture":
            block = rng.standard_normal((m, dim), dtype=np.float32)
        else:
            block = (rng.standard_t(3, (m, dim)) * scales).astype(np.float32)
        out[lo : lo + m] = block + centres[which]
    return out


def _queries(args):
    return latents(args.queries, args.dim, seed=12345, kind=args.data)


def stage_kmeans(args, backend):
    from astrounsup.latent import DEFAULT_N_CLUSTERS, LatentClusterer

    z = latents(args.n, args.dim, kind=args.data)
    est = LatentClusterer("kmeans", n_clusters=DEFAULT_N_CLUSTERS, n_init=1, backend=backend,
                          kmeans_fit_size=args.fit, random_state=0)  # fmt: skip
    t0 = time.perf_counter()
    est.fit(z)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = est.predict(z)
    assign = time.perf_counter() - t0
    np.save(Path(args.workdir) / f"labels_{backend}.npy", est.labels_)
    return {
        "total": total,
        "assign": assign,
        "same_as_predict": bool((again == est.labels_).all()),
    }


def stage_knn(args, backend, index="flat"):
    from astrounsup.latent import SimilaritySearch

    z = latents(args.n, args.dim, kind=args.data)
    q = _queries(args)
    kwargs = {"algorithm": "brute"} if backend == "sklearn" else {"index": index}
    search = SimilaritySearch(n_neighbors=10, backend=backend, **kwargs)
    t0 = time.perf_counter()
    search.fit(z)
    res = {"build": time.perf_counter() - t0}
    del z
    times = []
    for row in q[:20]:
        t0 = time.perf_counter()
        search.kneighbors(row[None])
        times.append(time.perf_counter() - t0)
    res["query_median"] = float(np.median(times))
    t0 = time.perf_counter()
    _, idx = search.kneighbors(q)
    res["batch"] = time.perf_counter() - t0
    np.save(Path(args.workdir) / f"knn_{backend}_{index}.npy", idx)
    if index == "ivfpq":
        res.update(n_probe=search.n_probe_, tuned_recall=search.recall_)
    return res


def stage_umap(args):
    from astrounsup.latent import Reducer

    z = latents(args.n_umap, args.dim, kind=args.data)
    t0 = time.perf_counter()
    Reducer("umap", n_components=2, random_state=None).fit_transform(z)
    return {"umap": time.perf_counter() - t0}


STAGES = {
    "kmeans-sklearn": lambda a: stage_kmeans(a, "sklearn"),
    "kmeans-faiss": lambda a: stage_kmeans(a, "faiss"),
    "knn-sklearn": lambda a: stage_knn(a, "sklearn"),
    "knn-faiss-flat": lambda a: stage_knn(a, "faiss"),
    "knn-faiss-ivfpq": lambda a: stage_knn(a, "faiss", "ivfpq"),
    "umap": stage_umap,
}


NAMES = {
    "knn-sklearn": "scikit-learn exact (brute)",
    "knn-faiss-flat": "faiss exact (flat)",
    "knn-faiss-ivfpq": "faiss IVF-PQ (n_probe auto)",
}


def _recall(found, truth):
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--fit", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--data", choices=("mixture", "heavy"), default="mixture")
    parser.add_argument("--n-umap", type=int, default=100_000)
    parser.add_argument("--stage", choices=("all", *STAGES), default="all")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        res = STAGES[args.stage](args)
        res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return 0
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="astrounsup-latent-bench-")
    stages = list(STAGES) if args.stage == "all" else [args.stage]
    report = {}
    for stage in stages:
        cmd = [sys.executable, __file__, "--child", "--stage", stage, "--workdir", args.workdir]
        for key in ("n", "fit", "dim", "queries", "data", "n_umap"):
            cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        report[stage] = json.loads(out.strip().splitlines()[-1])
        report[stage]["wall"] = time.perf_counter() - t0
    return _print(args, report)


def _print(args, report):
    n, d, w = f"{args.n:,}", args.dim, Path(args.workdir)
    ok = True
    print(f"{args.data} latents, {n} x {d} float32; stages in their own processes")
    print(f"{'stage':<34}{'scikit-learn':>14}{'faiss':>14}{'speed-up':>10}")
    if "kmeans-sklearn" in report and "kmeans-faiss" in report:
        a, b = report["kmeans-sklearn"], report["kmeans-faiss"]
        fit_a, fit_b = a["total"] - a["assign"], b["total"] - b["assign"]
        print(f"{f'k-means fit on {args.fit:,} [s]':<34}{fit_a:>14.1f}{fit_b:>14.1f}"
              f"{fit_a / fit_b:>9.1f}x")  # fmt: skip
        print(f"{f'assign all {n} [s]':<34}{a['assign']:>14.1f}{b['assign']:>14.1f}"
              f"{a['assign'] / b['assign']:>9.1f}x")  # fmt: skip
        speed = a["total"] / b["total"]
        print(f"{'k-means, fit + assign [s]':<34}{a['total']:>14.1f}{b['total']:>14.1f}"
              f"{speed:>9.1f}x")  # fmt: skip
        from sklearn.metrics import adjusted_rand_score

        ari = adjusted_rand_score(
            np.load(w / "labels_sklearn.npy"), np.load(w / "labels_faiss.npy")
        )
        print(f"  agreement of the two partitions (adjusted Rand index): {ari:.4f}")
        met = speed >= 5
        ok &= met
        print(f"  target faiss k-means >= 5x: {speed:.1f}x -> {'met' if met else 'MISSED'}")
    knn = [k for k in ("knn-sklearn", "knn-faiss-flat", "knn-faiss-ivfpq") if k in report]
    if knn:
        truth_file = w / (
            "knn_faiss_flat.npy" if "knn-faiss-flat" in report else "knn_sklearn_flat.npy"
        )
        truth = np.load(truth_file) if truth_file.exists() else None
        print(f"{'10-NN over ' + n:<34}{'build [s]':>14}{'1 query [ms]':>14}"
              f"{f'{args.queries} q. [s]':>10}{'recall@10':>11}")  # fmt: skip
        for k in knn:
            r = report[k]
            name = NAMES[k]
            kind = (
                "sklearn_flat" if k == "knn-sklearn" else k.removeprefix("knn-").replace("-", "_")
            )
            rec = _recall(np.load(w / f"knn_{kind}.npy"), truth) if truth is not None else np.nan
            r["recall"] = rec
            print(f"{name:<34}{r['build']:>14.1f}{1e3 * r['query_median']:>14.2f}"
                  f"{r['batch']:>10.2f}{rec:>11.3f}")  # fmt: skip
        if "knn-faiss-ivfpq" in report:
            r = report["knn-faiss-ivfpq"]
            print(f"  IVF-PQ: n_probe {r['n_probe']} (recall {r['tuned_recall']:.3f} when tuned)")
            met = r["recall"] >= 0.95
            ok &= met
            print(f"  target recall@10 >= 0.95: {r['recall']:.3f} -> {'met' if met else 'MISSED'}")
            if "knn-sklearn" in report:
                s = report["knn-sklearn"]["query_median"] / r["query_median"]
                met = s >= 5
                ok &= met
                print(f"  target IVF-PQ query >= 5x scikit-learn exact: {s:.0f}x -> "
                      f"{'met' if met else 'MISSED'}")  # fmt: skip
    if "umap" in report:
        r = report["umap"]
        met = r["umap"] < 180
        ok &= met
        print(f"UMAP to 2-D on {args.n_umap:,} x {d}: {r['umap']:.1f} s (numba compilation "
              f"included); target < 180 s -> {'met' if met else 'MISSED'}")  # fmt: skip
    print("peak RSS per stage [GiB]: " + ", ".join(
        f"{k} {r['peak_rss_mib'] / 1024:.2f}" for k, r in report.items()))  # fmt: skip
    worst = max(r["peak_rss_mib"] for r in report.values()) / 1024
    met = worst < 8
    ok &= met
    print(f"target peak RSS < 8 GiB: {worst:.2f} GiB -> {'met' if met else 'MISSED'}")
    print("wall time per stage [s] (data generation included): " + ", ".join(
        f"{k} {r['wall']:.0f}" for k, r in report.items()))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
