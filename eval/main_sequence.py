"""Evaluation: recovering the stellar main sequence from a Gaia-like table.

    python eval/main_sequence.py [--n 100000] [--reducer pca|umap] [--seed 0]

Simulates ``n`` stars (``astrounsup.simulate.simulate_stars``: main sequence, equal-mass
binaries, subgiants, red giants and clump, white dwarfs; Gaia-like parallax, photometric
and extinction-estimate errors), runs ``astrounsup.stars.main_sequence_catalog`` (parallax
over error >= 10, dereddened with the table's extinction estimates) and compares with the
truth: the Spearman correlation of the coordinate along the sequence with the true Teff of
main-sequence stars (target |rho| >= 0.95) and the share of correct membership flags
(main sequence; above: binaries, subgiants, giants; below: white dwarfs; target >= 95%).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy.stats import spearmanr

from astrounsup.simulate import STAGE_PLACE, simulate_stars
from astrounsup.stars import main_sequence_catalog


def main(argv=None):
    parser = argparse.ArgumentParser(description="main-sequence recovery")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--reducer", choices=("pca", "umap"), default="pca")
    parser.add_argument("--no-deredden", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    stars = simulate_stars(args.n, seed=args.seed)
    t_sim = time.perf_counter() - t0
    cat = main_sequence_catalog(
        stars,
        reducer=args.reducer,
        deredden=False if args.no_deredden else None,
        random_state=args.seed,
    )
    t_fit = time.perf_counter() - t0 - t_sim
    use = np.asarray(cat["ms_usable"])
    stage = np.asarray(cat["stage"])
    truth = np.array([STAGE_PLACE[s] for s in stage])
    flag = np.asarray(cat["ms_membership"])
    ms = use & (stage == "main_sequence")
    rho = spearmanr(np.asarray(cat["ms_coordinate"])[ms], np.asarray(cat["teff"])[ms]).statistic
    correct = np.mean(flag[use] == truth[use])
    print(
        f"{args.n} stars simulated in {t_sim:.1f} s; {use.sum()} with parallax_over_error "
        f">= 10 analysed in {t_fit:.1f} s (reducer {args.reducer}, "
        f"dereddened: {cat.meta['ms_dereddened']})"
    )
    for s in STAGE_PLACE:
        k = use & (stage == s)
        counts = {m: int(np.sum(flag[k] == m)) for m in ("main_sequence", "above", "below")}
        print(
            f"  {s:14s} {k.sum():6d}  flagged {counts}  correct {np.mean(flag[k] == truth[k]):.3f}"
        )
    print(f"Spearman rho(coordinate, Teff) on main-sequence stars: {rho:+.4f}")
    print(f"membership flags correct: {correct:.4f}")
    met = abs(rho) >= 0.95 and correct >= 0.95
    print(f"target |rho| >= 0.95 and membership >= 95% -> {'met' if met else 'NOT met'}")
    print(f"runtime {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
