"""``astrounsup cluster``, ``rank``, ``reduce``, ``anomalies`` and ``similar``: the
latent-space steps of :mod:`astrounsup.pipeline` on latents files, with their outputs
written to a folder."""

from __future__ import annotations

from pathlib import Path

from astrounsup.cli._common import add_output_options, comma_list, print_paths

_LATENTS = "LATENTS.h5 from astrounsup embed"


def add_arguments(name, parser):
    {
        "cluster": _cluster_arguments,
        "rank": _rank_arguments,
        "reduce": _reduce_arguments,
        "anomalies": _anomaly_arguments,
        "similar": _similar_arguments,
    }[name](parser)


# --- cluster ----------------------------------------------------------------------------


def _cluster_arguments(p):
    from astrounsup.latent import METHODS, REDUCE_COMPONENTS, REDUCER_METRICS
    from astrounsup.pipeline import CLUSTER_DEFAULTS as D

    p.add_argument("latents", type=Path, help=_LATENTS)
    p.add_argument("--method", choices=METHODS, default=D["method"], help="clustering method")
    p.add_argument("--k", type=int, default=D["k"], help="clusters / mixture components")
    p.add_argument(
        "--choose-k", default=D["choose_k"], metavar="LO:HI",
        help="also tabulate inertia and silhouette for k in LO..HI (k_selection table)",
    )  # fmt: skip
    p.add_argument(
        "--min-cluster-size", type=int, default=D["min_cluster_size"],
        help="smallest cluster of HDBSCAN",
    )  # fmt: skip
    p.add_argument(
        "--reduce", choices=tuple(REDUCE_COMPONENTS), default=D["reduce"],
        help="cluster a PCA or UMAP embedding of the latents instead (pca: the recipe for "
        "SimCLR latents)",
    )  # fmt: skip
    p.add_argument(
        "--n-components", type=int, default=D["n_components"],
        help="dimensions of the --reduce embedding (None: "
        + ", ".join(f"{k} for {m}" for m, k in REDUCE_COMPONENTS.items()) + ")",
    )  # fmt: skip
    p.add_argument(
        "--metric", choices=REDUCER_METRICS, default=D["metric"],
        help="distance between latents for --reduce umap",
    )  # fmt: skip
    p.add_argument(
        "--fit-size", type=int, default=D["fit_size"],
        help="with --reduce: fit on this many random objects (None: all)",
    )  # fmt: skip
    p.add_argument(
        "--backend", choices=("sklearn", "faiss"), default=D["backend"],
        help="k-means engine: faiss (the 'scale' extra) for millions of objects",
    )  # fmt: skip
    p.add_argument(
        "--kmeans-fit-size", type=int, default=D["kmeans_fit_size"],
        help="fit the k-means centres on this many random objects, then assign all "
        "(None: fit on all)",
    )  # fmt: skip
    p.add_argument(
        "--labels-column", default=D["labels_column"],
        help="catalog column of known labels (bool, 0/1 or text; None: no naming)",
    )  # fmt: skip
    p.add_argument(
        "--positive", default=D["positive"],
        help="the label of interest (None: True, or 1 in a 0/1 column)",
    )  # fmt: skip
    p.add_argument(
        "--labeled-fraction", "--labelled-fraction", type=float,
        default=D["labeled_fraction"],
        help="use only this random share of the known labels; the rest score the result "
        "(None: all)",
    )  # fmt: skip
    p.add_argument(
        "--known-positives", metavar="FILE", default=D["known_positives"],
        help="ids of known positives only (one per line, or a catalog's first column), "
        "instead of --labels-column: every object is scored against them",
    )  # fmt: skip
    p.add_argument(
        "--id-column", default=D["id_column"],
        help="catalog column that --known-positives ids are matched against",
    )  # fmt: skip
    p.add_argument(
        "--name", default=D["name"],
        help="stem of the score columns (None: the labels column without 'is_', or "
        "'lens' with --known-positives)",
    )  # fmt: skip
    p.add_argument(
        "--threshold", type=float, default=D["threshold"],
        help="probability above which an object is a candidate, and positive fraction "
        "above which a cluster is named positive",
    )  # fmt: skip
    p.add_argument(
        "--arc-features", type=Path, default=None, metavar="FILE",
        help="arc features of the same objects (astrounsup features): scored beside the "
        "latents; their arc_score and arc_rank are carried",
    )  # fmt: skip
    add_output_options(p)
    p.set_defaults(func=_cluster)


def _cluster(args):
    from astrounsup.latent import read_latents
    from astrounsup.pipeline import check_outputs, cluster_latents, cluster_outputs

    config = {
        key: getattr(args, key)
        for key in ("method", "k", "min_cluster_size", "reduce", "n_components", "metric",
                    "fit_size", "backend", "kmeans_fit_size", "choose_k", "labels_column",
                    "positive", "labeled_fraction", "known_positives", "id_column", "name",
                    "threshold", "seed")
    }  # fmt: skip
    latents, table, attrs = read_latents(args.latents)
    check_outputs(args.out, cluster_outputs(config), fmt=args.format, overwrite=args.overwrite)
    inputs = {
        "latents": args.latents, "checkpoint": attrs.get("checkpoint"), "store": attrs.get("store")
    }  # fmt: skip
    arcs = None
    if args.arc_features is not None:
        from astrounsup.io import read_catalog

        arcs = read_catalog(args.arc_features)
        inputs["arc_features"] = args.arc_features
    result = cluster_latents(latents, table, config, inputs=inputs, arc_features=arcs)
    s = result.summary
    if "k_silhouette" in s:
        print(f"k by silhouette: {s['k_silhouette']}; by the inertia elbow: {s['k_elbow']}")
    print(f"{args.method}: {s['n_clusters']} clusters of {len(latents)} objects")
    m = s.get("metrics", {})
    if m.get("regime") == "labeled":
        print(
            f"{args.labels_column}: {m['n_labeled']} labeled; on {m['evaluated_on']} "
            f"({m['n']}): the call (each object's score) accuracy {m['accuracy']:.3f}, "
            f"precision {m['precision']:.3f}, completeness {m['completeness']:.3f}; score "
            f"AUROC {m['score_auroc']:.3f}; the named clusters' call accuracy "
            f"{m['cluster_call_accuracy']:.3f}, purity {m['purity']:.3f}"
        )
    elif m:
        print(
            f"{m['n_labeled']} known positives; estimated share of all positives that are "
            f"known {m['label_frequency']:.3f}"
        )
    print_paths(result.write(args.out, fmt=args.format, overwrite=args.overwrite))
    return 0


# --- rank -------------------------------------------------------------------------------


def _rank_arguments(p):
    p.add_argument("latents", type=Path, help=_LATENTS)
    p.add_argument(
        "--clusters", type=Path, required=True,
        help="clusters catalog of astrounsup cluster run with labels on these latents",
    )  # fmt: skip
    p.add_argument(
        "--vetted", type=Path, required=True,
        help="grades exported from the report (CSV or ECSV: object_id, grade, kind, time, run)",
    )  # fmt: skip
    p.add_argument(
        "--vetted-any-run", action="store_true",
        help="use grades made on another set of objects (their run column), refused otherwise",
    )  # fmt: skip
    add_output_options(p, seed=False)
    p.set_defaults(func=_rank)


def _rank(args):
    from astrounsup.catalog import read_grades
    from astrounsup.io import read_catalog
    from astrounsup.latent import read_latents
    from astrounsup.pipeline import check_outputs, rerank_candidates

    grades = read_grades(args.vetted, any_run=args.vetted_any_run)
    clusters = read_catalog(args.clusters)
    latents, table, _ = read_latents(args.latents)
    check_outputs(args.out, ["clusters", "cluster_summary"], fmt=args.format,
                  overwrite=args.overwrite)  # fmt: skip
    inputs = {"latents": args.latents, "clusters": args.clusters, "grades": args.vetted}
    result = rerank_candidates(latents, table, clusters, grades, inputs=inputs)
    counts = result.summary["n_grades"]
    print("grades: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if counts["anomaly anomaly"] + counts["anomaly not"]:
        print("  anomaly grades are kept in the catalog (anomaly_grade); they do not re-rank")
    m = result.summary["metrics"]
    if m.get("regime") == "labeled" and m.get("n"):
        print(
            f"{m['n_labeled']} labeled with the grades; on {m['evaluated_on']} ({m['n']}): "
            f"per-object score AUROC {m['score_auroc']:.3f}"
        )
    else:
        print(f"{m['n_labeled']} known positives with the graded lenses")
    print_paths(result.write(args.out, fmt=args.format, overwrite=args.overwrite))
    return 0


# --- reduce -----------------------------------------------------------------------------


def _reduce_arguments(p):
    from astrounsup.latent import REDUCERS
    from astrounsup.pipeline import MAIN_SEQUENCE_DEFAULTS as M
    from astrounsup.pipeline import REDUCE_DEFAULTS as D

    p.add_argument("input", type=Path, help="LATENTS.h5, or a table (ECSV, FITS, VOTable or CSV)")
    p.add_argument("--method", choices=REDUCERS, default=D["method"], help="reduction")
    p.add_argument("--n-components", type=int, default=D["n_components"], help="dimensions kept")
    p.add_argument(
        "--columns", default=None, help="comma-separated feature columns of a table input"
    )
    p.add_argument(
        "--fit-size", type=int, default=D["fit_size"],
        help="fit on this many random objects and place the rest (None: all)",
    )  # fmt: skip
    p.add_argument(
        "--main-sequence", action="store_true",
        help="INPUT is a Gaia-like star table: find the main sequence (--method pca or umap)",
    )  # fmt: skip
    p.add_argument(
        "--min-parallax-over-error", type=float, default=M["min_parallax_over_error"],
        help="with --main-sequence: stars with a parallax measured this well",
    )  # fmt: skip
    p.add_argument(
        "--no-deredden", action="store_true",
        help="with --main-sequence: ignore ag_gspphot and ebpminrp_gspphot",
    )  # fmt: skip
    add_output_options(p)
    p.set_defaults(func=_reduce)


def _reduce(args):
    from astrounsup.io import read_catalog
    from astrounsup.latent import is_latents_file, read_latents
    from astrounsup.pipeline import (
        check_outputs,
        find_main_sequence,
        reduce_features,
        table_features,
    )

    if args.main_sequence:
        check_outputs(args.out, ["main_sequence"], fmt=args.format, overwrite=args.overwrite)
        config = {
            "method": args.method, "min_parallax_over_error": args.min_parallax_over_error,
            "deredden": False if args.no_deredden else None, "seed": args.seed,
        }  # fmt: skip
        result = find_main_sequence(read_catalog(args.input), config, inputs={"input": args.input})
        cat = result.tables["main_sequence"]
        paths = result.write(args.out, fmt=args.format, overwrite=args.overwrite)
        print(f"main sequence of {len(cat)} stars: {result.summary['counts']}")
        print(f"  catalog {paths['main_sequence']}\n  figure  {paths['main_sequence_figure']}")
        return 0
    check_outputs(args.out, ["reduced"], fmt=args.format, overwrite=args.overwrite)
    if is_latents_file(args.input):
        features, table, _ = read_latents(args.input)
    else:
        table = read_catalog(args.input)
        features = table_features(table, comma_list(args.columns or ""), where=args.input)
    config = {
        "method": args.method, "n_components": args.n_components, "fit_size": args.fit_size,
        "seed": args.seed,
    }  # fmt: skip
    result = reduce_features(
        features, table, config, inputs={"input": args.input}, title=args.input.name
    )
    meta = result.tables["reduced"].meta
    if "explained_variance_ratio" in meta:
        print(f"explained variance ratio: {meta['explained_variance_ratio']}")
    paths = result.write(args.out, fmt=args.format, overwrite=args.overwrite)
    print(f"  catalog {paths['reduced']}")
    if "reduced_figure" in paths:
        print(f"  figure  {paths['reduced_figure']}")
    return 0


# --- anomalies --------------------------------------------------------------------------


def _anomaly_arguments(p):
    from astrounsup.latent import COMBINE_RULES, SCORERS
    from astrounsup.pipeline import ANOMALY_DEFAULTS as D

    p.add_argument("latents", type=Path, help=_LATENTS)
    p.add_argument(
        "--methods", default=",".join(D["methods"]),
        help=f"comma-separated latent-space scorers among {','.join(SCORERS)} (or none)",
    )  # fmt: skip
    p.add_argument(
        "--detectors", default=",".join(D["detectors"]),
        help="comma-separated detectors measured on the cutouts (--data) among "
        f"{','.join(D['detectors'])}: straight trails, hits sharper than the PSF, flat "
        "faint light off the object (ghosts), rings around it; or none",
    )  # fmt: skip
    p.add_argument(
        "--recon", action="store_true",
        help="add reconstruction errors (and a VAE's negative ELBO) from the checkpoint",
    )  # fmt: skip
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="the model (None: the latents' own)"
    )
    p.add_argument(
        "--data", type=Path, default=None, help="the cutout store (None: the latents' own)"
    )
    p.add_argument(
        "--context", type=Path, default=None,
        help="LATENTS.h5 of the same objects (e.g. a SimCLR embedding): with --recon, also "
        "give each model score relative to those of the objects most alike there "
        "(columns *_context) and LOF in the joint space of those latents and the log "
        "reconstruction errors (context_lof), and combine those instead of the raw ones",
    )  # fmt: skip
    p.add_argument(
        "--context-neighbors", type=int, default=D["context_neighbors"],
        help="neighbours per object for --context",
    )  # fmt: skip
    p.add_argument(
        "--context-components", type=int, default=D["context_components"],
        help="principal components of the --context latents searched for neighbours "
        "(0: all dimensions)",
    )  # fmt: skip
    p.add_argument(
        "--combine", choices=COMBINE_RULES, default=D["combine"],
        help="how the scorers are combined: tail (the largest score, each scaled to its "
        "own top per cent: a scorer adds its outliers, not its ordinary top), max (the "
        "largest percentile rank) or mean (the mean percentile rank)",
    )  # fmt: skip
    p.add_argument(
        "--gap-fraction", type=float, default=D["gap_fraction"],
        help="an object lacking data on more than this share of a band's pixels (a coverage "
        "gap: a survey or chip edge) is scored by the detectors only, not by the latents "
        "that saw the gap filled",
    )  # fmt: skip
    p.add_argument(
        "--n-neighbors", type=int, default=D["n_neighbors"], help="neighbours of LOF and k-NN"
    )
    p.add_argument(
        "--gallery", type=int, default=D["gallery"], help="cutouts in the figure (0: none)"
    )
    p.add_argument(
        "--device", default=D["device"], help="where the model runs (None: CUDA when present)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_output_options(p)
    p.set_defaults(func=_anomalies)


def _anomalies(args):
    from astrounsup.latent import read_latents
    from astrounsup.pipeline import check_outputs, score_anomalies

    check_outputs(args.out, ["anomalies"], fmt=args.format, overwrite=args.overwrite)
    latents, table, attrs = read_latents(args.latents)
    checkpoint = args.checkpoint or attrs.get("checkpoint")
    store = args.data or attrs.get("store")
    context = None
    if args.context is not None:
        vectors, ctable, _ = read_latents(args.context)
        context = (vectors, ctable)
    config = {
        "methods": comma_list(args.methods), "detectors": comma_list(args.detectors),
        "recon": args.recon,
        "context_neighbors": args.context_neighbors,
        "context_components": args.context_components, "combine": args.combine,
        "gap_fraction": args.gap_fraction, "n_neighbors": args.n_neighbors,
        "gallery": args.gallery, "seed": args.seed, "device": args.device,
    }  # fmt: skip
    inputs = {
        "latents": args.latents, "checkpoint": checkpoint, "store": store,
        "context": args.context,
    }  # fmt: skip
    # Without --recon or detectors the cutouts are only shown, when the store is there.
    needed = args.recon or any(d != "none" for d in config["detectors"])
    shown = store if needed or (store and Path(store).exists()) else None
    result = score_anomalies(
        latents, table, config, model=checkpoint if args.recon else None, data=shown,
        context=context, inputs=inputs, progress=not args.quiet,
    )  # fmt: skip
    paths = result.write(args.out, fmt=args.format, overwrite=args.overwrite)
    scorers = ", ".join(result.summary["scorers"])
    print(f"{len(latents)} objects ranked by {scorers} (combined: {args.combine})")
    if result.summary["n_flagged"]:
        print(
            f"  {result.summary['n_flagged']} flagged (bad_pixel_flag or constant): not "
            "scored, listed last"
        )
    if result.summary["n_coverage_gaps"]:
        print(
            f"  {result.summary['n_coverage_gaps']} with a coverage gap (more than "
            f"{args.gap_fraction:g} of a band without data): scored by the detectors only"
        )
    print(f"  catalog {paths['anomalies']}")
    if "anomalies_figure" in paths:
        print(f"  figure  {paths['anomalies_figure']}")
    return 0


# --- similar ----------------------------------------------------------------------------


def _similar_arguments(p):
    from astrounsup.pipeline import SIMILAR_DEFAULTS as D

    p.add_argument("latents", type=Path, help=_LATENTS)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--id", action="append", help="object id to query (repeatable)")
    what.add_argument("--cutout", type=Path, help="a FITS cutout to embed and query")
    p.add_argument(
        "--checkpoint", type=Path, default=None,
        help="the model that embeds --cutout (None: the latents' own)",
    )  # fmt: skip
    p.add_argument("--k", type=int, default=D["k"], help="neighbours per query")
    p.add_argument(
        "--metric", choices=("euclidean", "cosine"), default=D["metric"],
        help="distance between latents",
    )  # fmt: skip
    p.add_argument("--id-column", default=D["id_column"], help="catalog column of object ids")
    p.add_argument(
        "--backend", choices=("sklearn", "faiss"), default=D["backend"],
        help="search engine: scikit-learn, or an exact faiss index (pip install "
        "'astrounsup[scale]')",
    )  # fmt: skip
    add_output_options(p, seed=False)
    p.set_defaults(func=_similar)


def _similar(args):
    from astrounsup.latent import read_latents
    from astrounsup.pipeline import check_outputs, find_similar

    check_outputs(args.out, ["neighbors"], fmt=args.format, overwrite=args.overwrite)
    latents, table, attrs = read_latents(args.latents)
    config = {"k": args.k, "metric": args.metric, "id_column": args.id_column,
              "backend": args.backend}  # fmt: skip
    inputs = {"latents": args.latents}
    if args.id:
        result = find_similar(latents, table, config, ids=args.id, inputs=inputs)
    else:
        from astrounsup.io import read_cutout
        from astrounsup.pipeline import check_latents_model
        from astrounsup.training import TrainedModel

        checkpoint = args.checkpoint or attrs.get("checkpoint")
        if not checkpoint:
            msg = "--cutout needs --checkpoint (the latents file names none)"
            raise ValueError(msg)
        trained = TrainedModel.load(checkpoint)
        check_latents_model(trained, attrs, latents=args.latents, checkpoint=checkpoint)
        cutout = read_cutout(args.cutout, bands=trained.bands)
        vector = trained.embed(cutout.image[None], progress=False)
        result = find_similar(
            latents, table, config, vectors=vector, names=[str(args.cutout)], inputs=inputs
        )
    neighbors = result.tables["neighbors"]
    paths = result.write(args.out, fmt=args.format, overwrite=args.overwrite)
    for row in neighbors[: min(len(neighbors), 3 * args.k)]:
        print(
            f"{row['query']!s:>20s} {row['rank']:3d} {row['neighbor_id']!s:>20s} "
            f"{row['distance']:.4f}"
        )
    print(f"  catalog {paths['neighbors']}")
    return 0
