"""Benchmark: latent analysis at survey scale.

    python bench/latent_scale.py [--n-kmeans 1000000] [--n-umap 100000] [--dim 32]
                                 [--stage all|kmeans|umap|neighbours]

On synthetic latents (a 20-component Gaussian mixture in ``dim`` dimensions, float32):
(1) k-means (k = 20) on ``n-kmeans`` objects with :class:`astrounsup.latent.LatentClusterer`
(one start of Lloyd's algorithm, and mini-batch k-means); target < 60 s on 2 cores;
(2) UMAP to 2-D on ``n-umap`` objects with :class:`astrounsup.latent.Reducer`, numba
compilation included; target < 180 s; (3) building a :class:`SimilaritySearch` index over
``n-kmeans`` objects and the latency of single-object 10-nearest-neighbour queries.
Each stage runs in its own process so its peak resident memory (``ru_maxrss``) is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def latents(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (20, dim)).astype(np.float32)
    which = rng.integers(0, 20, n)
    out = rng.standard_normal((n, dim), dtype=np.float32)
    out += centres[which]
    return out


def stage_kmeans(args):
    from astrounsup.latent import LatentClusterer

    z = latents(args.n_kmeans, args.dim)
    res = {}
    for method in ("kmeans", "minibatch-kmeans"):
        t0 = time.perf_counter()
        LatentClusterer(method, n_clusters=20, n_init=1, random_state=0).fit(z)
        res[method] = time.perf_counter() - t0
    return res


def stage_umap(args):
    from astrounsup.latent import Reducer

    z = latents(args.n_umap, args.dim)
    t0 = time.perf_counter()
    Reducer("umap", n_components=2, random_state=None).fit_transform(z)
    return {"umap": time.perf_counter() - t0}


def stage_neighbours(args):
    from astrounsup.latent import SimilaritySearch

    z = latents(args.n_kmeans, args.dim)
    res = {}
    for algorithm in ("brute", "kd_tree"):
        t0 = time.perf_counter()
        search = SimilaritySearch(n_neighbors=10, algorithm=algorithm).fit(z)
        res[f"{algorithm}_build"] = time.perf_counter() - t0
        rng = np.random.default_rng(1)
        queries = z[rng.integers(0, len(z), 20)] + 0.01
        times = []
        for q in queries:
            t0 = time.perf_counter()
            search.kneighbors(q[None])
            times.append(time.perf_counter() - t0)
        res[f"{algorithm}_query_median"] = float(np.median(times))
        t0 = time.perf_counter()
        search.kneighbors(z[:1000])
        res[f"{algorithm}_batch1000"] = time.perf_counter() - t0
    return res


STAGES = {"kmeans": stage_kmeans, "umap": stage_umap, "neighbours": stage_neighbours}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-kmeans", type=int, default=1_000_000)
    parser.add_argument("--n-umap", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--stage", choices=("all", *STAGES), default="all")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        res = STAGES[args.stage](args)
        res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return 0
    stages = list(STAGES) if args.stage == "all" else [args.stage]
    report = {}
    for stage in stages:
        cmd = [sys.executable, __file__, "--child", "--stage", stage]
        cmd += ["--n-kmeans", str(args.n_kmeans), "--n-umap", str(args.n_umap)]
        cmd += ["--dim", str(args.dim)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        report[stage] = json.loads(out.strip().splitlines()[-1])
    d = args.dim
    if "kmeans" in report:
        r = report["kmeans"]
        print(
            f"k-means k=20 on {args.n_kmeans:,} x {d}: Lloyd {r['kmeans']:.1f} s, mini-batch "
            f"{r['minibatch-kmeans']:.1f} s; peak RSS {r['peak_rss_mib']:.0f} MiB; target "
            f"< 60 s -> {'met' if r['kmeans'] < 60 else 'NOT met'}"
        )
    if "umap" in report:
        r = report["umap"]
        print(
            f"UMAP to 2-D on {args.n_umap:,} x {d}: {r['umap']:.1f} s (numba compilation "
            f"included); peak RSS {r['peak_rss_mib']:.0f} MiB; target < 180 s -> "
            f"{'met' if r['umap'] < 180 else 'NOT met'}"
        )
    if "neighbours" in report:
        r = report["neighbours"]
        for alg in ("brute", "kd_tree"):
            print(
                f"10-NN over {args.n_kmeans:,} x {d} ({alg}): build {r[f'{alg}_build']:.2f} s, "
                f"one query {1e3 * r[f'{alg}_query_median']:.1f} ms (median of 20), 1000 "
                f"queries {r[f'{alg}_batch1000']:.2f} s"
            )
        print(f"  peak RSS {r['peak_rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
