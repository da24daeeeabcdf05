"""The lens search of a survey without labels: train, embed, cluster and name the clusters,
then rank every object by anomaly scores."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from astrounsup import __version__
from astrounsup._config import merge_config
from astrounsup._locks import output_lock
from astrounsup._provenance import _PACKAGES, _version
from astrounsup.catalog import grade_labels, read_grades
from astrounsup.io import as_dataset, read_catalog
from astrounsup.latent import read_latents
from astrounsup.pipeline._manifest import RunManifest, file_hash
from astrounsup.pipeline.anomalies import ANOMALY_DEFAULTS, score_anomalies
from astrounsup.pipeline.cluster import CLUSTER_DEFAULTS, check_labels, cluster_latents
from astrounsup.pipeline.embed import embed_latents
from astrounsup.pipeline.features import (
    FEATURES_DEFAULTS,
    arc_features_skipped,
    measure_arc_features,
)
from astrounsup.pipeline.rank import grades_alone, rerank_candidates
from astrounsup.pipeline.simulate import make_survey
from astrounsup.pipeline.train import train_model
from astrounsup.report import write_report
from astrounsup.training import TrainedModel, short_run_warmup

__all__ = [
    "LENS_SEARCH_ANOMALY_DEFAULTS",
    "LENS_SEARCH_CONFIG",
    "LENS_SEARCH_FULL_CONFIG",
    "MIN_OBJECTS",
    "fit_to_survey",
    "run_lens_search",
]

#: The anomaly settings of :func:`run_lens_search`: those of
#: :func:`astrounsup.pipeline.score_anomalies` and, with ``recon_recipe``, the
#: autoencoder or VAE trained beside the main model whose reconstruction errors are scored
#: relative to the objects most alike in the main latents.
LENS_SEARCH_ANOMALY_DEFAULTS = {"recon_recipe": None, "recon_steps": None, "recon_config": {}}

_SECTIONS = ("survey", "model", "features", "cluster", "anomalies", "report")

_TRAINING = {"batch_size": 128, "lr": 0.002, "warmup_steps": 40}
#: The lens search's settings for your data, as ``astrounsup search`` runs it (those of
#: ``pipelines/configs/lens_search.toml``, the README main job, without its survey): the
#: encoder shipped with the package, untrained; k-means on 12 principal components; the
#: arc features; LOF and the four pixel detectors.
LENS_SEARCH_CONFIG = {
    "model": {"recipe": "simclr", "init": "pretrained", "steps": 0,
              "config": {"training": dict(_TRAINING)}},
    "features": {"arc_features": True},
    "cluster": {"method": "kmeans", "k": 20, "reduce": "pca", "n_components": 12, "seed": 0},
    "anomalies": {"methods": ["lof"], "detectors": ["trail", "sharp", "ghost", "ring"],
                  "combine": "tail", "seed": 0},
}  # fmt: skip
#: :data:`LENS_SEARCH_CONFIG` with SimCLR trained from scratch for 1,200 steps (those of
#: ``pipelines/configs/lens_search_full.toml``): for cutouts the shipped encoder refuses.
LENS_SEARCH_FULL_CONFIG = copy.deepcopy(LENS_SEARCH_CONFIG) | {
    "model": {"recipe": "simclr", "steps": 1200, "config": {"training": dict(_TRAINING)}},
}


def _with_steps(model_config, steps):
    """``model_config`` with ``steps`` replacing its steps; a short run keeps its warm-up
    within the run (:func:`astrounsup.training.short_run_warmup`)."""

    cfg = copy.deepcopy(model_config)
    cfg["steps"] = steps or cfg.get("steps")
    if cfg["steps"] is not None:
        training = cfg.setdefault("config", {}).setdefault("training", {})
        training["warmup_steps"] = short_run_warmup(training.get("warmup_steps", 0), cfg["steps"])
    return cfg


def run_lens_search(store, out, config=None, *, steps=None, device=None, progress=True,
                    log=print, fresh=False, vetted=None, any_run=False,
                    overwrite=False):  # fmt: skip
    """Search a cutout store for strong lenses and anomalies, writing every output in ``out``.

    1. With a ``survey`` section and no ``store`` yet, simulate the survey there;
    2. train the ``model`` (``out/run``) and embed every cutout (``out/latents.h5``);
       measure the arc features of every cutout (``out/features``,
       :func:`astrounsup.pipeline.measure_arc_features`; a ``features`` section with
       ``arc_features = false`` leaves them out);
    3. cluster the latents; with ``labels_column`` or ``known_positives``, name the
       clusters and rank every object (``out/cluster``); with ``vetted`` grades, fold
       them into the labels and rank again (``out/rank``,
       :func:`astrounsup.pipeline.rerank_candidates`);
    4. rank every object by anomaly scores (``out/anomalies``): the detectors on the
       pixels and the latent-space scorers; with ``recon_recipe``, after training that
       model too (``out/recon_run``, ``out/recon_latents.h5``) and scoring its
       reconstruction errors against look-alikes in the main latents; with ``vetted``
       grades of kind ``anomaly``, the graded anomalies first and the graded ``not``
       after the ungraded (:func:`astrounsup.latent.rank_with_grades`);
    5. write the browsable report (``out/report/index.html``,
       :func:`astrounsup.report.write_report`; settings in a ``report`` section).

    The labels are checked against the store's catalog before anything is trained. Each
    finished step is recorded in ``out/manifest.json`` with a hash of its inputs' contents
    and settings; a re-run reuses a step whose inputs and settings are unchanged and whose
    outputs are intact, and redoes the others (and so every step after a redone one).

    Parameters
    ----------
    store : str or pathlib.Path
        The cutout store.
    out : str or pathlib.Path
        The output folder.
    config : dict, optional
        Sections ``survey`` (:func:`astrounsup.pipeline.make_survey`), ``model``
        (:data:`astrounsup.pipeline.TRAIN_DEFAULTS`), ``features``
        (:data:`astrounsup.pipeline.FEATURES_DEFAULTS`), ``cluster``
        (:data:`astrounsup.pipeline.CLUSTER_DEFAULTS`) and ``anomalies``
        (:data:`astrounsup.pipeline.ANOMALY_DEFAULTS` and
        :data:`LENS_SEARCH_ANOMALY_DEFAULTS`), ``report``
        (:data:`astrounsup.report.REPORT_DEFAULTS`).
    steps : int, optional
        Training steps of every model, replacing the configured ones.
    device : str, optional
        Where to train and embed.
    progress : bool, optional
        Show progress bars.
    log : callable or None, optional
        Called with a line of text as each step ends.
    fresh : bool, optional
        Redo every step, whatever the manifest says.
    vetted : str or pathlib.Path, optional
        Grades exported from an earlier run's report (:func:`astrounsup.catalog.read_grades`):
        folded into the labels, or, in a run without labels, the labels themselves.
    any_run : bool, optional
        Fold in ``vetted`` grades made on another set of objects (their ``run``), which
        are refused otherwise.
    overwrite : bool, optional
        Replace what ``out`` holds when it is a run on other data (another store's
        contents) or files of something else; refused otherwise.

    A survey too small for the configured settings has them lowered, said in one line
    before anything is trained (:func:`fit_to_survey`): the training batch, the number
    of clusters and the anomaly scorers' neighbours.

    Returns
    -------
    dict
        The paths written by each step (``survey``, ``features``, ``cluster``, ``rank`` with
        ``vetted``, ``anomalies``, ``report``), the
        clustering ``metrics`` (None without labels), ``reused`` (the steps taken from an
        earlier run) and ``timings`` (seconds per step).

    The whole run holds the lock of ``out``: a second run into the same folder is
    refused (:class:`OSError` naming it) while the first runs.

    Raises
    ------
    OSError
        Another run writes into ``out`` now.
    ValueError
        An unknown config section, labels that do not match the store's catalog, or an
        unreadable manifest (naming it).
    """
    with output_lock(out):
        return _run_lens_search(store, out, config, steps=steps, device=device,
                                progress=progress, log=log, fresh=fresh, vetted=vetted,
                                any_run=any_run, overwrite=overwrite)  # fmt: skip


#: Fewest objects a lens search runs on.
MIN_OBJECTS = 10


def fit_to_survey(n, model_config, cluster_cfg, anomaly_cfg):
    """Settings too large for a survey of ``n`` objects, lowered: the training batch to
    the largest power of two in the training split (80% of ``n``, at most), ``k`` to
    ``n // 5`` clusters (at least 2), the LOF/k-NN ``n_neighbors`` to ``n // 3`` and the
    look-alikes of ``context_neighbors`` to ``n // 2``.

    Parameters
    ----------
    n : int
        Objects in the survey, at least :data:`MIN_OBJECTS`.
    model_config : dict
        The ``[model]`` section; a changed copy is returned.
    cluster_cfg, anomaly_cfg : dict
        Merged ``[cluster]`` and ``[anomalies]`` settings, changed in place.

    Returns
    -------
    model_config : dict
    changed : list of str
        ``"setting old -> new"`` for each one lowered.

    Examples
    --------
    >>> cl, an = {"k": 20}, {"n_neighbors": 20, "context_neighbors": 50}
    >>> fit_to_survey(30, {"config": {"training": {"batch_size": 128}}}, cl, an)[1]
    ['batch_size 128 -> 16', 'k 20 -> 6', 'n_neighbors 20 -> 10', 'context_neighbors 50 -> 15']
    """
    if n < MIN_OBJECTS:
        msg = f"a lens search needs at least {MIN_OBJECTS} objects; the survey has {n}"
        raise ValueError(msg)
    changed = []
    model_config = copy.deepcopy(dict(model_config))
    training = model_config.get("config", {}).get("training", {})
    batch = training.get("batch_size")
    n_train = int(0.8 * n)
    if isinstance(batch, int) and batch > n_train:
        new = 2 ** int(np.log2(max(n_train, 2)))
        model_config["config"]["training"]["batch_size"] = new
        changed.append(f"batch_size {batch} -> {new}")
    for cfg, key, limit in ((cluster_cfg, "k", max(2, n // 5)),
                            (anomaly_cfg, "n_neighbors", max(1, n // 3)),
                            (anomaly_cfg, "context_neighbors", max(1, n // 2))):  # fmt: skip
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            cfg[key] = limit
            changed.append(f"{key} {value} -> {limit}")
    return model_config, changed


def _run_lens_search(store, out, config=None, *, steps=None, device=None, progress=True,
                    log=print, fresh=False, vetted=None, any_run=False,
                    overwrite=False):  # fmt: skip
    """:func:`run_lens_search` with the lock of ``out`` held."""

    say = log or (lambda _line: None)
    config = dict(config or {})
    unknown = sorted(set(config) - set(_SECTIONS))
    if unknown:
        msg = f"lens search: unknown config sections {unknown}; allowed: {list(_SECTIONS)}"
        raise ValueError(msg)
    anomaly_cfg = merge_config(
        ANOMALY_DEFAULTS | LENS_SEARCH_ANOMALY_DEFAULTS, config.get("anomalies"), owner="anomalies"
    )
    recon = {k: anomaly_cfg.pop(k) for k in LENS_SEARCH_ANOMALY_DEFAULTS}
    cluster_cfg = merge_config(CLUSTER_DEFAULTS, config.get("cluster"), owner="cluster")
    features_cfg = merge_config(FEATURES_DEFAULTS, config.get("features"), owner="features")
    t0 = time.perf_counter()
    store, out = Path(store), Path(out)
    manifest = RunManifest(out, fresh=fresh)
    done = {"reused": [], "timings": {}}
    if not store.exists() and config.get("survey") is not None:
        survey, paths = make_survey(config["survey"], store.parent, progress=progress)
        store = paths["store"]
        say(survey.summary())
        if "known_lenses" in paths:
            say(f"known lenses: {paths['known_lenses'].read_text().splitlines()[0][2:]}; "
                f"listed in {paths['known_lenses']}")  # fmt: skip
        done["survey"] = paths
    # Before anything is trained: the labels are those of the store's objects.
    store_table = as_dataset(store).table
    labels = check_labels(store_table, cluster_cfg, where=str(store))
    if vetted is not None:
        graded = grade_labels(read_grades(vetted, any_run=any_run), store_table, where=str(store))
        if labels == (None, None):  # the grades are the only labels
            grades_alone(graded, f"vetted grades {vetted}: this run has no labels and")
    if cluster_cfg["known_positives"] is not None and not isinstance(
        cluster_cfg["known_positives"], (str, Path)
    ):
        cluster_cfg["known_positives"] = [str(v) for v in cluster_cfg["known_positives"]]
    config = dict(config)
    config["model"], changed = fit_to_survey(len(store_table), config.get("model", {}),
                                             cluster_cfg, anomaly_cfg)  # fmt: skip
    if changed:
        say(f"small survey ({len(store_table)} objects): " + ", ".join(changed))
    store_hash = file_hash(store)
    manifest.check_data({"path": str(store.resolve()), "sha256": store_hash},
                        overwrite=overwrite, inputs=[store])  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)

    def step(name, key, run, outputs, reuse):
        """Reuse step ``name`` when the manifest allows, else ``run()`` and record it."""
        t = time.perf_counter()
        entry = manifest.reusable(name, key)
        if entry is not None:
            done["reused"].append(name)
            say(f"{name}: unchanged since {entry['finished']}; reused")
            result = reuse(entry)
        else:
            manifest.forget(name)
            result, info = run()
            manifest.record(name, key, outputs(result), **info)
        done["timings"][name] = round(time.perf_counter() - t, 1)
        return result

    def train_and_embed(prefix, model_config):
        cfg = _with_steps(model_config, steps)
        run_dir, path = out / f"{prefix}run", out / f"{prefix}latents.h5"

        def train():
            trained = train_model(store, cfg, out=run_dir, device=device, progress=progress)
            say(f"{prefix}train: {trained.describe()}; wrote {run_dir}")
            return trained, {"recipe": trained.recipe, "steps": trained.steps}

        trained = step(
            f"{prefix}train", manifest.key(step="train", store=store_hash, model=cfg), train,
            lambda t: {"checkpoint": t.checkpoint},
            lambda _e: TrainedModel.load(run_dir / "last.pt"),
        )  # fmt: skip

        def embed():
            latents, table = embed_latents(trained, store, out=path, device=device,
                                           progress=progress)  # fmt: skip
            say(f"{prefix}embed: {len(latents)} objects; wrote {path}")
            return (latents, table), {}

        def reuse_latents(_entry):
            latents, table, _ = read_latents(path)
            return latents, table

        key = manifest.key(step="embed", store=store_hash,
                           checkpoint=file_hash(trained.checkpoint))  # fmt: skip
        latents, table = step(f"{prefix}embed", key, embed, lambda _r: {"latents": path},
                              reuse_latents)  # fmt: skip
        return trained, path, latents, table

    main, latents_path, latents, table = train_and_embed("", config.get("model", {}))
    latents_hash = file_hash(latents_path)
    arcs, arcs_hash = None, None
    skipped = None
    if features_cfg["arc_features"]:
        skipped = arc_features_skipped(main.bands, main.pixel_scale)
    if skipped:
        say(f"features: not measured: {skipped}")
    if features_cfg["arc_features"] and not skipped:

        def features():
            result = measure_arc_features(store, features_cfg, inputs={"store": store},
                                          progress=progress)  # fmt: skip
            paths = result.write(out / "features", overwrite=True)
            if result.summary["note"]:
                say(f"features: {result.summary['note']}")
            say(f"features: {result.summary['n_features']} arc features of {len(table)} "
                f"objects; wrote {paths['arc_features']}")  # fmt: skip
            return paths, {}

        key = manifest.key(step="features", store=store_hash, config=features_cfg)
        done["features"] = step(
            "features", key, features, lambda paths: paths,
            lambda entry: {k: manifest.output("features", k) for k in entry["outputs"]},
        )  # fmt: skip
        arcs = read_catalog(done["features"]["arc_features"])
        arcs_hash = file_hash(done["features"]["arc_features"])
    else:
        manifest.forget("features")
    inputs = {"latents": latents_path, "checkpoint": main.checkpoint, "store": store}
    known = cluster_cfg["known_positives"]
    known_hash = file_hash(known) if isinstance(known, (str, Path)) else None

    def cluster():
        clusters = cluster_latents(latents, table, cluster_cfg, inputs=inputs,
                                   arc_features=arcs)  # fmt: skip
        paths = clusters.write(out / "cluster", overwrite=True)
        metrics = clusters.summary.get("metrics")
        line = f"cluster: {clusters.summary['n_clusters']} clusters of {len(latents)} objects"
        if metrics and "accuracy" in metrics:
            line += (
                f"; on {metrics['evaluated_on']} ({metrics['n']}): accuracy "
                f"{metrics['accuracy']:.3f}, completeness {metrics['completeness']:.3f}"
            )
        elif metrics and metrics.get("regime") == "positive-unlabeled":
            line += f"; every other object ranked from {metrics['n_labeled']} known positives"
        say(line)
        return (paths, metrics), {"metrics": metrics}

    def reuse_cluster(entry):
        names = entry["outputs"]
        return {k: manifest.output("cluster", k) for k in names}, entry.get("metrics")

    key = manifest.key(step="cluster", latents=latents_hash, config=cluster_cfg,
                       known_positives=known_hash, arc_features=arcs_hash)  # fmt: skip
    done["cluster"], done["metrics"] = step("cluster", key, cluster, lambda r: r[0],
                                            reuse_cluster)  # fmt: skip

    clusters_path = done["cluster"]["clusters"]
    if vetted is not None:

        def rank():
            result = rerank_candidates(
                latents, table, read_catalog(clusters_path), read_grades(vetted, any_run=any_run),
                inputs={"latents": latents_path, "clusters": clusters_path, "grades": vetted},
            )  # fmt: skip
            paths = result.write(out / "rank", overwrite=True)
            counts = result.summary["n_grades"]
            say("rank: re-ranked with the grades of " + str(vetted) + " ("
                + ", ".join(f"{k} {v}" for k, v in counts.items() if v) + ")")  # fmt: skip
            return paths, {"grades": counts}

        key = manifest.key(step="rank", latents=latents_hash, clusters=file_hash(clusters_path),
                           grades=file_hash(vetted))  # fmt: skip
        done["rank"] = step(
            "rank", key, rank, lambda paths: paths,
            lambda entry: {k: manifest.output("rank", k) for k in entry["outputs"]},
        )  # fmt: skip
        clusters_path = done["rank"]["clusters"]
    else:
        manifest.forget("rank")

    if anomaly_cfg["detectors"] and not np.isfinite(main.pixel_scale):
        say("anomalies: detectors not measured: the pixel scale is unknown (they measure "
            "in arcsec)")  # fmt: skip
        anomaly_cfg["detectors"] = []
    scored, model, context = (latents, table), None, None
    inputs = {"latents": latents_path, "store": store}
    parts = {"latents": latents_hash}
    if recon["recon_recipe"]:
        recon_config = {"recipe": recon["recon_recipe"], "steps": recon["recon_steps"],
                        "config": recon["recon_config"]}  # fmt: skip
        model, scored_path, *scored = train_and_embed("recon_", recon_config)
        context = (latents, table)
        anomaly_cfg["recon"] = True
        inputs |= {"latents": scored_path, "checkpoint": model.checkpoint,
                   "context": latents_path}  # fmt: skip
        parts = {"latents": file_hash(scored_path), "checkpoint": file_hash(model.checkpoint),
                 "context": latents_hash}  # fmt: skip

    if vetted is not None:
        inputs["grades"] = vetted
        parts["grades"] = file_hash(vetted)

    def anomalies():
        result = score_anomalies(
            *scored, anomaly_cfg, model=model, data=store, context=context,
            grades=None if vetted is None else read_grades(vetted, any_run=any_run), inputs=inputs,
            progress=progress,
        )  # fmt: skip
        paths = result.write(out / "anomalies", overwrite=True)
        say(f"anomalies: {len(table)} objects ranked by {', '.join(result.summary['scorers'])}")
        return paths, {"scorers": result.summary["scorers"]}

    key = manifest.key(step="anomalies", store=store_hash, config=anomaly_cfg, **parts)
    done["anomalies"] = step(
        "anomalies", key, anomalies, lambda paths: paths,
        lambda entry: {k: manifest.output("anomalies", k) for k in entry["outputs"]},
    )  # fmt: skip

    report_cfg = config.get("report") or {}
    facts = _facts(store, table, main, model, device, done)
    if vetted is not None:
        facts["lens ranking"] = f"re-ranked with the grades of {vetted} (rank/)"

    def report():
        from astropy.table import QTable

        links = {f"latents ({latents_path.name})": latents_path}
        for group in ("cluster", "rank", "anomalies"):
            links |= {f"{group}: {Path(p).name}": p for p in done.get(group, {}).values()}
        for prefix in ("", "recon_"):
            for name in ("loss_curve.png", "history.json"):
                if (out / f"{prefix}run" / name).exists():
                    links[f"{prefix}run/{name}"] = out / f"{prefix}run" / name
        links["manifest.json"] = manifest.path
        page = write_report(
            out / "report", store, latents, QTable.read(clusters_path),
            QTable.read(done["anomalies"]["anomalies"]), summary=facts, links=links,
            config=report_cfg,
        )  # fmt: skip
        say(f"report: {page}")
        return page, {}

    key = manifest.key(step="report", store=store_hash, latents=latents_hash,
                       clusters=file_hash(clusters_path),
                       anomalies=file_hash(done["anomalies"]["anomalies"]),
                       config=report_cfg)  # fmt: skip
    done["report"] = step("report", key, report, lambda page: {"index": page},
                          lambda _e: out / "report" / "index.html")  # fmt: skip
    say(f"done in {time.perf_counter() - t0:.0f} s; outputs in {out}")
    return done


def _facts(store, table, main, recon, device, done):
    """The run summary at the top of the report."""
    import torch

    facts = {"data": str(store), "objects": len(table), "bands": ", ".join(main.bands),
             "model": main.describe()}  # fmt: skip
    if recon is not None:
        facts["anomaly model"] = f"{recon.recipe}, {recon.steps} steps"
    facts["device"] = device or ("cuda" if torch.cuda.is_available() else "cpu")
    facts["step times (s)"] = ", ".join(f"{k} {v:g}" for k, v in done["timings"].items())
    if done["reused"]:
        facts["reused from an earlier run"] = ", ".join(done["reused"])
    metrics = done.get("metrics") or {}
    for key in ("accuracy", "completeness", "precision", "score_auroc"):
        if metrics.get(key) is not None:
            facts[f"lens {key.replace('_', ' ')} ({metrics.get('evaluated_on')})"] = metrics[key]
    facts["versions"] = "; ".join(
        [f"astrounsup {__version__}"] + [f"{p} {_version(p)}" for p in _PACKAGES]
    )
    return facts
