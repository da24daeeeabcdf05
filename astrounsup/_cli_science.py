"""The latent-science commands of ``astrounsup``: cluster, reduce, anomalies, similar.

They only compose :mod:`astrounsup.latent`, :mod:`astrounsup.catalog` and
:mod:`astrounsup.plotting`; every number comes from there.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_FORMATS = {"ecsv": ".ecsv", "fits": ".fits", "vot": ".vot", "hdf5": ".h5"}


def add_parsers(sub):
    """Add the four sub-commands to ``sub`` (an argparse sub-parser collection)."""
    from astrounsup.latent import METHODS, REDUCER_METRICS, REDUCERS, SCORERS

    def common(p, *, seed=True):
        p.add_argument("--out", type=Path, required=True, help="output directory")
        p.add_argument("--format", choices=sorted(_FORMATS), default="ecsv")
        p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
        if seed:
            p.add_argument("--seed", type=int, default=0, help="random seed")

    cl = sub.add_parser("cluster", help="cluster latents; with labels, name and score clusters")
    cl.add_argument("latents", type=Path, help="LATENTS.h5 from astrounsup embed")
    cl.add_argument("--method", choices=METHODS, default="kmeans")
    cl.add_argument("--k", type=int, default=20, help="clusters / mixture components")
    cl.add_argument(
        "--choose-k",
        default=None,
        metavar="LO:HI",
        help="also tabulate inertia and silhouette for k in LO..HI (k_selection table)",
    )
    cl.add_argument("--min-cluster-size", type=int, default=25, help="HDBSCAN")
    cl.add_argument(
        "--reduce",
        choices=("umap", "pca"),
        default=None,
        help="cluster a UMAP or PCA embedding of the latents instead of the latents",
    )
    cl.add_argument("--n-components", type=int, default=5, help="with --reduce")
    cl.add_argument(
        "--metric", choices=REDUCER_METRICS, default="euclidean", help="with --reduce umap"
    )
    cl.add_argument("--fit-size", type=int, default=None, help="with --reduce: fit on a subsample")
    cl.add_argument("--labels-column", default=None, help="catalog column with known labels")
    cl.add_argument("--positive", default="True", help="the label of interest (default True)")
    cl.add_argument(
        "--labelled-fraction",
        type=float,
        default=None,
        help="use only this random share of the known labels; the rest score the result",
    )
    cl.add_argument("--threshold", type=float, default=0.5, help="cluster positive fraction")
    common(cl)
    cl.set_defaults(func=cluster_command)

    rd = sub.add_parser("reduce", help="PCA/UMAP/t-SNE of latents or a table; the main sequence")
    rd.add_argument("input", type=Path, help="LATENTS.h5, or a table (ECSV/FITS/VOTable/CSV)")
    rd.add_argument("--method", choices=REDUCERS, default="pca")
    rd.add_argument("--n-components", type=int, default=2)
    rd.add_argument("--columns", default=None, help="comma-separated feature columns (tables)")
    rd.add_argument("--fit-size", type=int, default=None, help="fit on a random subsample")
    rd.add_argument(
        "--main-sequence",
        action="store_true",
        help="INPUT is a Gaia-like star table: find the main sequence (reducer pca or umap)",
    )
    rd.add_argument("--min-parallax-over-error", type=float, default=10.0)
    rd.add_argument(
        "--no-deredden", action="store_true", help="ignore ag_gspphot / ebpminrp_gspphot"
    )
    common(rd)
    rd.set_defaults(func=reduce_command)

    an = sub.add_parser("anomalies", help="rank objects by anomaly scores")
    an.add_argument("latents", type=Path, help="LATENTS.h5 from astrounsup embed")
    an.add_argument(
        "--methods",
        default=",".join(SCORERS),
        help=f"comma-separated latent-space scorers among {','.join(SCORERS)} (or none)",
    )
    an.add_argument(
        "--recon",
        action="store_true",
        help="add reconstruction error (and a VAE's negative ELBO) from the checkpoint",
    )
    an.add_argument("--checkpoint", type=Path, default=None, help="default: the latents'")
    an.add_argument("--data", type=Path, default=None, help="store; default: the latents'")
    an.add_argument(
        "--context",
        type=Path,
        default=None,
        help="LATENTS.h5 of the same objects (e.g. a SimCLR embedding): with --recon, also "
        "give each model score relative to those of the objects most alike there "
        "(columns *_context) and LOF in the joint space of those latents and the log "
        "reconstruction errors (context_lof), and combine those instead of the raw ones",
    )
    an.add_argument(
        "--context-neighbors", type=int, default=50, help="neighbours per object for --context"
    )
    an.add_argument(
        "--context-components",
        type=int,
        default=16,
        help="principal components of the --context latents searched for neighbours "
        "(0: all dimensions)",
    )
    an.add_argument(
        "--combine",
        choices=("mean", "max"),
        default="max",
        help="how the scorers' percentiles are combined: max (default; an object odd to any "
        "one scorer ranks high, as artefacts are found by different scorers) or mean",
    )
    an.add_argument("--n-neighbors", type=int, default=20)
    an.add_argument("--gallery", type=int, default=32, help="cutouts in the figure (0: none)")
    an.add_argument("--device", default=None)
    common(an)
    an.set_defaults(func=anomalies_command)

    si = sub.add_parser("similar", help="nearest neighbours of objects or of a new cutout")
    si.add_argument("latents", type=Path, help="LATENTS.h5 from astrounsup embed")
    what = si.add_mutually_exclusive_group(required=True)
    what.add_argument("--id", action="append", help="object id to query (repeatable)")
    what.add_argument("--cutout", type=Path, help="a FITS cutout to embed and query")
    si.add_argument("--checkpoint", type=Path, default=None, help="default: the latents'")
    si.add_argument("--k", type=int, default=10, help="neighbours per query")
    si.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    si.add_argument("--id-column", default="object_id")
    common(si, seed=False)
    si.set_defaults(func=similar_command)


def _output(args, name):
    return Path(args.out) / f"{name}{_FORMATS[args.format]}"


def _write(args, table, name):
    from astrounsup.catalog import write_catalog

    return write_catalog(table, _output(args, name), overwrite=args.overwrite)


def _check_outputs(args, names):
    """Refuse before any work if an output exists and --overwrite is not given."""
    if args.overwrite:
        return
    for name in names:
        path = name if isinstance(name, Path) else _output(args, name)
        if path.exists():
            msg = f"{path} exists; pass --overwrite to replace it"
            raise FileExistsError(msg)


def _save(fig, path):
    from astrounsup.plotting import save_figure

    save_figure(fig, path, dpi=110)
    return path


def _parse_label(value, column):
    """``--positive`` as a value of the label column's type."""
    dtype = np.asarray(column).dtype
    if dtype.kind == "b":
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        msg = f"--positive must be True or False for a boolean column; got {value!r}"
        raise ValueError(msg)
    if np.issubdtype(dtype, np.integer):
        return int(value)
    if np.issubdtype(dtype, np.floating):
        return float(value)
    return value


def _known(column):
    """Rows with a label: not masked, and not NaN for float columns."""
    known = ~np.asarray(getattr(column, "mask", np.zeros(len(column), bool)), bool)
    values = np.asarray(column)
    if np.issubdtype(values.dtype, np.floating):
        known &= np.isfinite(values)
    return known


def cluster_command(args):
    from astrounsup.catalog import provenance, result_catalog
    from astrounsup.latent import LatentClusterer, Reducer, choose_k, read_latents
    from astrounsup.plotting import latent_map_figure

    if args.labelled_fraction is not None and not args.labels_column:
        msg = "--labelled-fraction needs --labels-column (which column holds the labels)"
        raise ValueError(msg)
    if args.reduce is None and (args.metric != "euclidean" or args.fit_size is not None):
        msg = "--metric and --fit-size choose how --reduce embeds the latents; add --reduce"
        raise ValueError(msg)
    latents, table, attrs = read_latents(args.latents)
    names = ["clusters"]
    if args.labels_column:
        names.append("cluster_summary")
        if args.labels_column not in table.colnames:
            msg = (
                f"{args.latents}: no column {args.labels_column!r} in its catalog; it has "
                f"{table.colnames}"
            )
            raise ValueError(msg)
    if args.choose_k:
        names.append("k_selection")
    _check_outputs(args, names)
    meta = provenance(
        "astrounsup cluster",
        latents=args.latents,
        method=args.method,
        k=args.k,
        reduce=args.reduce or "none",
        **({"n_components": args.n_components, "metric": args.metric} if args.reduce else {}),
        seed=args.seed,
        checkpoint=attrs.get("checkpoint"),
        store=attrs.get("store"),
    )
    features = latents
    if args.reduce:
        # UMAP with min_dist 0 packs each group tightly, which is what clustering wants.
        features = Reducer(
            args.reduce, n_components=args.n_components, metric=args.metric,
            standardize=False, fit_size=args.fit_size, min_dist=0.0, random_state=args.seed,
        ).fit_transform(latents)  # fmt: skip
    out = {}
    if args.choose_k:
        lo, _, hi = args.choose_k.partition(":")
        try:
            ks = range(int(lo), int(hi) + 1)
        except ValueError as err:
            msg = f"--choose-k must be LO:HI (integers); got {args.choose_k!r}"
            raise ValueError(msg) from err
        ksel = choose_k(features, ks, random_state=args.seed)
        ksel.meta.update(meta)
        out["k_selection"] = _write(args, ksel, "k_selection")
        print(
            f"k by silhouette: {ksel.meta['k_silhouette']}; by the inertia elbow: "
            f"{ksel.meta['k_elbow']}"
        )
    est = LatentClusterer(
        args.method, n_clusters=args.k, min_cluster_size=args.min_cluster_size,
        random_state=args.seed,
    ).fit(features)  # fmt: skip
    columns = {"cluster": est.labels_}
    memberships = est.labels_
    if args.method in ("gmm", "bayes-gmm"):
        memberships = est.predict_proba(features)
        columns["cluster_probability"] = memberships.max(1)
    print(f"{args.method}: {est.n_clusters_} clusters of {len(latents)} objects")
    if args.labels_column:
        summary, metrics = _label_clusters(args, table, est.labels_, memberships, columns)
        summary.meta.update(meta | metrics)
        out["cluster_summary"] = _write(args, summary, "cluster_summary")
        meta |= metrics
    result = result_catalog(table, columns, meta=meta)
    out["clusters"] = _write(args, result, "clusters")
    xy = Reducer("pca", n_components=2, random_state=args.seed).fit_transform(latents)
    fig = latent_map_figure(
        xy, groups=est.labels_, title=f"{args.method}: clusters", axis_label="PC"
    )
    out["figure"] = _save(fig, Path(args.out) / "latent_map.png")
    for key, path in out.items():
        print(f"  {key:16s} {path}")
    return 0


def _label_clusters(args, table, labels, memberships, columns):
    """Name clusters from the known labels; add the score columns; the summary table and
    the metrics (on the known labels not used for naming, when there are any)."""
    from astrounsup.latent import ClusterLabeller, binary_metrics, purity

    col = table[args.labels_column]
    y = np.asarray(col)
    positive = _parse_label(args.positive, col)
    known = _known(col)
    labelled = known.copy()
    if args.labelled_fraction is not None:
        if not 0.0 < args.labelled_fraction <= 1.0:
            msg = f"--labelled-fraction must be in (0, 1]; got {args.labelled_fraction}"
            raise ValueError(msg)
        rng = np.random.default_rng(args.seed)
        labelled &= rng.random(len(y)) < args.labelled_fraction
    name = args.labels_column.removeprefix("is_")
    names = {True: name, False: f"not_{name}"} if y.dtype == bool else None
    lab = ClusterLabeller(positive=positive, threshold=args.threshold, class_names=names)
    lab.fit(memberships, y, labelled=labelled)
    score = lab.lens_score(memberships)
    predicted = lab.predict(memberships)
    columns[f"{name}_score"] = score
    columns[f"{name}_candidate"] = predicted
    order = np.argsort(-np.nan_to_num(score, nan=-1.0), kind="stable")
    rank = np.empty(len(score), dtype=np.int64)
    rank[order] = np.arange(1, len(score) + 1)
    columns[f"{name}_rank"] = rank
    columns["labelled"] = labelled
    held_out = known & ~labelled
    scored = held_out if held_out.any() else labelled
    metrics = binary_metrics(predicted[scored], y[scored] == positive)
    metrics = {
        "evaluated_on": "held-out known labels" if held_out.any() else "the labelled rows",
        "n_labelled": int(labelled.sum()),
        "purity": purity(labels[scored], y[scored]),
    } | metrics
    print(
        f"{args.labels_column}: {int(labelled.sum())} labelled; on {metrics['evaluated_on']} "
        f"({metrics['n']}): accuracy {metrics['accuracy']:.3f}, precision "
        f"{metrics['precision']:.3f}, completeness {metrics['completeness']:.3f}, purity "
        f"{metrics['purity']:.3f}"
    )
    return lab.table_, {k: (float(v) if isinstance(v, float) else v) for k, v in metrics.items()}


def reduce_command(args):
    from astropy.table import QTable

    from astrounsup.catalog import provenance, result_catalog
    from astrounsup.latent import Reducer, main_sequence_catalog, read_latents
    from astrounsup.plotting import latent_map_figure, main_sequence_figure

    if args.main_sequence:
        _check_outputs(args, ["main_sequence"])
        if args.method == "tsne":
            msg = "--main-sequence takes --method pca or umap (t-SNE cannot place stars)"
            raise ValueError(msg)
        stars = _read_table(args.input)
        cat = main_sequence_catalog(
            stars,
            reducer=args.method,
            min_parallax_over_error=args.min_parallax_over_error,
            deredden=False if args.no_deredden else None,
            random_state=args.seed,
        )
        cat.meta.update(provenance("astrounsup reduce --main-sequence", input=args.input))
        path = _write(args, cat, "main_sequence")
        fig_path = _save(main_sequence_figure(cat), Path(args.out) / "main_sequence.png")
        counts = {m: int((cat["ms_membership"] == m).sum()) for m in _MS_NAMES}
        print(f"main sequence of {len(cat)} stars: {counts}")
        print(f"  catalog {path}\n  figure  {fig_path}")
        return 0
    _check_outputs(args, ["reduced"])
    if _is_latents(args.input):
        features, table, _ = read_latents(args.input)
    else:
        table = QTable(_read_table(args.input))
        if not args.columns:
            msg = f"{args.input} is a table: name its feature columns with --columns a,b,c"
            raise ValueError(msg)
        cols = [c.strip() for c in args.columns.split(",")]
        missing = [c for c in cols if c not in table.colnames]
        if missing:
            msg = f"{args.input}: no columns {missing}; it has {table.colnames}"
            raise ValueError(msg)
        features = np.column_stack(
            [np.asarray(getattr(table[c], "value", table[c])) for c in cols]
        )
    red = Reducer(
        args.method, n_components=args.n_components, fit_size=args.fit_size,
        random_state=args.seed,
    )  # fmt: skip
    emb = red.fit_transform(features)
    meta = provenance(
        "astrounsup reduce", input=args.input, method=args.method, seed=args.seed,
        fit_size=args.fit_size,
    )  # fmt: skip
    if args.method == "pca":
        meta["explained_variance_ratio"] = json.dumps(
            [round(float(v), 6) for v in red.explained_variance_ratio_]
        )
        print(f"explained variance ratio: {meta['explained_variance_ratio']}")
    columns = {f"{args.method}_{k + 1}": emb[:, k] for k in range(emb.shape[1])}
    path = _write(args, result_catalog(table, columns, meta=meta), "reduced")
    print(f"  catalog {path}")
    if emb.shape[1] >= 2:
        fig = latent_map_figure(
            emb, title=f"{args.method} of {args.input.name}", axis_label=args.method.upper()
        )
        print(f"  figure  {_save(fig, Path(args.out) / 'reduced.png')}")
    return 0


_MS_NAMES = ("main_sequence", "above", "below", "unmeasured")


def _is_latents(path):
    import h5py

    from astrounsup.latent.embed import LATENTS_FORMAT

    if Path(path).suffix.lower() not in (".h5", ".hdf5"):
        return False
    with h5py.File(path, "r") as f:
        return f.attrs.get("format") == LATENTS_FORMAT


def _read_table(path):
    from astropy.table import QTable, Table

    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such file"
        raise FileNotFoundError(msg)
    fmt = "ascii.csv" if path.suffix.lower() == ".csv" else None
    try:
        table = Table.read(path, format=fmt) if fmt else Table.read(path)
    except Exception as err:  # astropy raises many types for unreadable tables
        msg = f"{path}: cannot read as a table ({err})"
        raise ValueError(msg) from err
    return QTable(table)


def anomalies_command(args):
    from astrounsup.catalog import provenance, result_catalog
    from astrounsup.latent import (
        SCORERS,
        AnomalyScorer,
        combine_ranks,
        context_model_scores,
        model_scores,
        rank_scores,
        read_latents,
    )

    _check_outputs(args, ["anomalies"])
    latents, table, attrs = read_latents(args.latents)
    methods = [m.strip() for m in args.methods.split(",") if m.strip() and m.strip() != "none"]
    unknown = [m for m in methods if m not in SCORERS]
    if unknown:
        msg = f"--methods: unknown scorers {unknown}; choose among {list(SCORERS)}"
        raise ValueError(msg)
    if args.context is not None and not args.recon:
        msg = "--context needs --recon (it compares each model score with the neighbours')"
        raise ValueError(msg)
    context = None if args.context is None else _context_latents(args, table)
    scores, shown = {}, {}
    for m in methods:
        est = AnomalyScorer(m, n_neighbors=args.n_neighbors, random_state=args.seed)
        scores[m] = est.fit_score(latents)
    checkpoint = args.checkpoint or attrs.get("checkpoint")
    store = args.data or attrs.get("store")
    if args.recon:
        if not checkpoint or not store:
            msg = "--recon needs --checkpoint and --data (the latents file names neither)"
            raise ValueError(msg)
        extra = model_scores(checkpoint, store, device=args.device)
        if len(extra["recon"]) != len(latents):
            msg = f"{store} has {len(extra['recon'])} cutouts; {args.latents} {len(latents)}"
            raise ValueError(msg)
        if context is None:
            scores.update(extra)
        else:
            shown = extra  # in the catalog, not in the combination
            scores |= context_model_scores(
                extra, context, n_neighbors=args.context_neighbors,
                n_components=args.context_components, seed=args.seed,
            )  # fmt: skip
    if not scores:
        msg = "no scorer: give --methods and/or --recon"
        raise ValueError(msg)
    combined = combine_ranks(scores, how=args.combine)
    columns = {}
    for name, s in (shown | scores).items():
        columns[f"score_{name}"] = s
        columns[f"percentile_{name}"] = rank_scores(s)
    columns["anomaly_score"] = combined
    order = np.argsort(-np.nan_to_num(combined, nan=-1.0), kind="stable")
    rank = np.empty(len(combined), dtype=np.int64)
    rank[order] = np.arange(1, len(combined) + 1)
    columns["anomaly_rank"] = rank
    meta = provenance(
        "astrounsup anomalies", latents=args.latents, scorers=",".join(scores),
        combine=args.combine, n_neighbors=args.n_neighbors, seed=args.seed,
        checkpoint=checkpoint if args.recon else None, store=store,
        context=args.context, context_neighbors=args.context_neighbors if args.context else None,
        context_components=args.context_components if args.context else None,
    )  # fmt: skip
    result = result_catalog(table, columns, meta=meta)[order]
    path = _write(args, result, "anomalies")
    print(f"{len(result)} objects ranked by {', '.join(scores)} ({args.combine} of ranks)")
    print(f"  catalog {path}")
    if args.gallery and store and Path(store).exists():
        print(f"  figure  {_gallery(store, table, order[: args.gallery], args.out)}")
    return 0


def _context_latents(args, table):
    """The --context latents, checked against the scored objects before any scoring."""
    from astrounsup.latent import read_latents

    if args.context_components < 0:
        msg = f"--context-components must be >= 0; got {args.context_components}"
        raise ValueError(msg)
    if args.context_neighbors < 1:
        msg = f"--context-neighbors must be >= 1; got {args.context_neighbors}"
        raise ValueError(msg)
    context, ctable, _ = read_latents(args.context)
    if len(context) != len(table):
        msg = f"--context {args.context} has {len(context)} objects; {args.latents} {len(table)}"
        raise ValueError(msg)
    if "object_id" in table.colnames and "object_id" in ctable.colnames:
        ids, cids = np.asarray(table["object_id"]), np.asarray(ctable["object_id"])
        if not np.array_equal(ids, cids):
            first = int(np.argmax(ids != cids))
            msg = (
                f"--context {args.context} lists other objects than {args.latents} (row "
                f"{first}: object_id {cids[first]!r}, not {ids[first]!r}); embed the same store"
            )
            raise ValueError(msg)
    if len(context) <= args.context_neighbors:
        msg = (
            f"--context-neighbors {args.context_neighbors} needs more objects than that; "
            f"{args.context} has {len(context)}"
        )
        raise ValueError(msg)
    return context


def _gallery(store, table, rows, out_dir):
    from astrounsup.io import CutoutDataset
    from astrounsup.plotting import gallery

    data = CutoutDataset(store)
    images = data[[int(r) for r in rows]][0].numpy()
    ids = np.asarray(table["object_id"])[rows] if "object_id" in table.colnames else rows
    titles = [f"#{k + 1} {i}" for k, i in enumerate(ids)]
    return _save(gallery(images, data.bands, titles=titles), Path(out_dir) / "anomalies.png")


def similar_command(args):
    from astrounsup.catalog import provenance, write_catalog
    from astrounsup.latent import SimilaritySearch, embed_images, read_latents

    path = _output(args, "neighbours")
    _check_outputs(args, [path])
    latents, table, attrs = read_latents(args.latents)
    if args.id_column not in table.colnames:
        msg = f"{args.latents}: no id column {args.id_column!r}; it has {table.colnames}"
        raise ValueError(msg)
    ids = np.asarray(table[args.id_column])
    search = SimilaritySearch(n_neighbors=args.k, metric=args.metric).fit(latents, ids=ids)
    if args.id:
        try:
            result = search.query_ids(np.asarray(args.id, dtype=ids.dtype))
        except KeyError as err:
            msg = f"{args.latents}: {err.args[0]}"
            raise ValueError(msg) from err
    else:
        from astrounsup.io import read_cutout

        checkpoint = args.checkpoint or attrs.get("checkpoint")
        if not checkpoint:
            msg = "--cutout needs --checkpoint (the latents file names none)"
            raise ValueError(msg)
        from astrounsup.training import load_model

        _model, extra = load_model(checkpoint)
        cutout = read_cutout(args.cutout, bands=extra["bands"])
        vector = embed_images(checkpoint, cutout.image[None])
        result = search.query(vector, query_ids=[str(args.cutout)])
    rows = np.asarray(result["neighbour_row"])
    for name in ("ra", "dec"):
        if name in table.colnames:
            result[name] = table[name][rows]
    result.meta.update(
        provenance("astrounsup similar", latents=args.latents, k=args.k, metric=args.metric)
    )
    write_catalog(result, path, overwrite=args.overwrite)
    for row in result[: min(len(result), 3 * args.k)]:
        print(
            f"{row['query']!s:>20s} {row['rank']:3d} {row['neighbour_id']!s:>20s} "
            f"{row['distance']:.4f}"
        )
    print(f"  catalog {path}")
    return 0
