"""Benchmark: the figures a GPU gives, for sizing a survey (one script, a few minutes).

    python bench/gpu_figures.py [--device cuda] [--n 8192] [--steps 30] [--batch 256]
                                [--vectors 10000000] [--dim 32] [--queries 1000]

Prints, for 3x64x64 cutouts held in memory (simulated, tiled to ``n``):

1. training throughput of the SimCLR recipe (cutouts/s of optimiser steps: ``steps``
   steps timed less 5 steps timed, after a warm-up run, so set-up is not counted), with
   bf16 autocast and in fp32 (``training.amp``);
2. embedding throughput of its encoder (``TrainedModel.embed``, cutouts/s);
3. faiss on the GPU, where the installed faiss has GPU support: k-means (k = 20) and exact
   10-NN over ``vectors`` x ``dim`` float32; otherwise it says so and measures exact 10-NN
   with torch on the device instead (named as such).

Run where a GPU is; on a CPU it runs the same steps (``--device cpu``, tiny sizes in the
tests). The figures feed the sizing page of the docs (``docs/scaling.rst``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch


def cutouts(n, seed=0):
    from astrounsup.simulate import simulate_lens_survey

    base = simulate_lens_survey(min(n, 512), seed=seed, progress=False)
    reps = -(-n // len(base.images))
    return np.tile(base.images, (reps, 1, 1, 1))[:n], base


def train_rate(images, base, *, device, steps, batch, amp):
    from astrounsup.training import train

    def run(k):
        config = {
            "training": {"max_steps": k, "batch_size": batch, "amp": amp, "eval_every": 10**6},
        }
        t0 = time.perf_counter()
        fitted = train(images, model="simclr", config=config, bands=base.bands,
                       pixel_scale=base.pixel_scale, device=device, progress=False)  # fmt: skip
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0, fitted

    run(1)  # warm-up: imports, kernels, caches
    short, _ = run(5)
    long, fitted = run(steps)
    return (steps - 5) * batch / max(long - short, 1e-9), fitted


def embed_rate(fitted, images, *, device, batch):
    fitted.embed(images[:batch], batch_size=batch, device=device, progress=False)  # warm-up
    t0 = time.perf_counter()
    fitted.embed(images, batch_size=batch, device=device, progress=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - t0)


def search_figures(n, dim, queries, device):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((n, dim), dtype=np.float32)
    q = z[rng.integers(0, n, queries)] + 0.01
    out = {}
    try:
        import faiss

        gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    except ImportError:
        gpus = None
    out["faiss_gpus"] = gpus
    if gpus:
        t0 = time.perf_counter()
        km = faiss.Kmeans(dim, 20, niter=20, gpu=True, max_points_per_centroid=n + 1)
        km.train(z)
        out["faiss_gpu_kmeans_20_iterations_s"] = time.perf_counter() - t0
        index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatL2(dim))
        index.add(z)
        t0 = time.perf_counter()
        index.search(q, 10)
        out["faiss_gpu_flat_10nn_per_query_ms"] = 1e3 * (time.perf_counter() - t0) / queries
        return out
    zt = torch.from_numpy(z).to(device)
    qt = torch.from_numpy(q).to(device)
    norms = (zt * zt).sum(1)
    torch.topk(norms[:10], 1)  # warm-up
    t0 = time.perf_counter()
    for lo in range(0, queries, 100):
        d = norms[None] - 2 * qt[lo : lo + 100] @ zt.T
        torch.topk(d, 10, largest=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    out["torch_exact_10nn_per_query_ms"] = 1e3 * (time.perf_counter() - t0) / queries
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--vectors", type=int, default=10_000_000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args(argv)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    print(f"device {args.device} ({name}), torch {torch.__version__}")
    images, base = cutouts(args.n)
    res = {}
    amps = ("bf16", "off") if args.device.startswith("cuda") else ("off",)
    fitted = None
    for amp in amps:
        rate, fitted = train_rate(images, base, device=args.device, steps=args.steps,
                                  batch=args.batch, amp=amp)  # fmt: skip
        res[f"train_simclr_{amp}_cutouts_per_s"] = rate
        print(f"SimCLR training, amp {amp}: {rate:,.0f} cutouts/s (batch {args.batch})")
    res["embed_cutouts_per_s"] = embed_rate(fitted, images, device=args.device, batch=1024)
    print(f"embedding (SimCLR encoder): {res['embed_cutouts_per_s']:,.0f} cutouts/s")
    s = search_figures(args.vectors, args.dim, args.queries, args.device)
    res.update(s)
    if s["faiss_gpus"]:
        print(f"faiss GPU k-means (k=20, 20 iterations) on {args.vectors:,} x {args.dim}: "
              f"{s['faiss_gpu_kmeans_20_iterations_s']:.2f} s; exact 10-NN "
              f"{s['faiss_gpu_flat_10nn_per_query_ms']:.3f} ms per query")  # fmt: skip
    else:
        why = "not installed" if s["faiss_gpus"] is None else "a build without GPU support"
        print(f"faiss on the GPU: not measured (faiss is {why}); exact 10-NN with torch on "
              f"{args.device}: {s['torch_exact_10nn_per_query_ms']:.3f} ms per query over "
              f"{args.vectors:,} x {args.dim}")  # fmt: skip
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
