"""The lens search of a survey without labels: train, embed, cluster and name the clusters,
then rank every object by anomaly scores."""

from __future__ import annotations

import copy
import time
from pathlib import Path

from astrounsup.pipeline._config import merge_config

__all__ = ["LENS_SEARCH_ANOMALY_DEFAULTS", "run_lens_search"]

#: The anomaly settings of :func:`run_lens_search`: those of
#: :func:`astrounsup.pipeline.score_anomalies` and, with ``recon_recipe``, the
#: autoencoder or VAE trained beside the main model whose reconstruction errors are scored
#: relative to the objects most alike in the main latents.
LENS_SEARCH_ANOMALY_DEFAULTS = {"recon_recipe": None, "recon_steps": None, "recon_config": {}}

_SECTIONS = ("survey", "model", "cluster", "anomalies")


def _with_steps(model_config, steps):
    """``model_config`` with ``steps`` replacing its steps; a short run keeps its warm-up
    within the run (at most a fifth of it)."""
    cfg = copy.deepcopy(model_config)
    cfg["steps"] = steps or cfg.get("steps")
    if cfg["steps"] is not None:
        training = cfg.setdefault("config", {}).setdefault("training", {})
        training["warmup_steps"] = min(training.get("warmup_steps", 0), cfg["steps"] // 5)
    return cfg


def run_lens_search(store, out, config=None, *, steps=None, device=None, progress=True,
                    log=print):  # fmt: skip
    """Search a cutout store for strong lenses and anomalies, writing every output in ``out``.

    1. With a ``survey`` section and no ``store`` yet, simulate the survey there;
    2. train the ``model`` (``out/run``) and embed every cutout (``out/latents.h5``);
    3. cluster the latents; with ``labels_column``, name the clusters from a labeled share
       and rank every object (``out/cluster``);
    4. rank every object by anomaly scores (``out/anomalies``); with ``recon_recipe``,
       after training that model too (``out/recon_run``, ``out/recon_latents.h5``) and
       scoring its reconstruction errors against look-alikes in the main latents.

    Parameters
    ----------
    store : str or pathlib.Path
        The cutout store.
    out : str or pathlib.Path
        The output folder.
    config : dict, optional
        Sections ``survey`` (:func:`astrounsup.pipeline.make_survey`), ``model``
        (:data:`astrounsup.pipeline.TRAIN_DEFAULTS`), ``cluster``
        (:data:`astrounsup.pipeline.CLUSTER_DEFAULTS`) and ``anomalies``
        (:data:`astrounsup.pipeline.ANOMALY_DEFAULTS` and
        :data:`LENS_SEARCH_ANOMALY_DEFAULTS`).
    steps : int, optional
        Training steps of every model, replacing the configured ones.
    device : str, optional
        Where to train and embed.
    progress : bool, optional
        Show progress bars.
    log : callable or None, optional
        Called with a line of text as each step ends.

    Returns
    -------
    dict
        The paths written by each step (``survey``, ``cluster``, ``anomalies``), and the
        clustering ``metrics`` (None without labels).
    """
    from astrounsup.pipeline.anomalies import ANOMALY_DEFAULTS, score_anomalies
    from astrounsup.pipeline.cluster import cluster_latents
    from astrounsup.pipeline.survey import make_survey
    from astrounsup.pipeline.train import embed_latents, train_model

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
    t0 = time.perf_counter()
    store, out = Path(store), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    if not store.exists() and config.get("survey") is not None:
        survey, paths = make_survey(config["survey"], store.parent, progress=progress)
        store = paths["store"]
        say(survey.summary())
        done["survey"] = paths

    def train_and_embed(prefix, model_config):
        cfg = _with_steps(model_config, steps)
        run = out / f"{prefix}run"
        trained = train_model(store, cfg, out=run, device=device, progress=progress)
        path = out / f"{prefix}latents.h5"
        latents, table = embed_latents(trained, store, out=path, device=device, progress=progress)
        h = trained.history
        say(f"{prefix}train: {trained.recipe}, {h.step[-1]} steps, loss {h.loss[-1]:.4g}; "
            f"wrote {run} and {path}")  # fmt: skip
        return trained, path, latents, table

    main, latents_path, latents, table = train_and_embed("", config.get("model", {}))
    inputs = {"latents": latents_path, "checkpoint": main.checkpoint, "store": store}
    clusters = cluster_latents(latents, table, config.get("cluster"), inputs=inputs)
    done["cluster"] = clusters.write(out / "cluster", overwrite=True)
    done["metrics"] = metrics = clusters.summary.get("metrics")
    line = f"cluster: {clusters.summary['n_clusters']} clusters of {len(latents)} objects"
    if metrics:
        line += (
            f"; on {metrics['evaluated_on']} ({metrics['n']}): accuracy "
            f"{metrics['accuracy']:.3f}, completeness {metrics['completeness']:.3f}"
        )
    say(line)

    scored, model, context = (latents, table), None, None
    inputs = {"latents": latents_path, "store": store}
    if recon["recon_recipe"]:
        recon_config = {"recipe": recon["recon_recipe"], "steps": recon["recon_steps"],
                        "config": recon["recon_config"]}  # fmt: skip
        model, scored_path, *scored = train_and_embed("recon_", recon_config)
        context = (latents, table)
        anomaly_cfg["recon"] = True
        inputs |= {"latents": scored_path, "checkpoint": model.checkpoint,
                   "context": latents_path}  # fmt: skip
    anomalies = score_anomalies(
        *scored, anomaly_cfg, model=model, data=store, context=context, inputs=inputs,
        progress=progress,
    )  # fmt: skip
    done["anomalies"] = anomalies.write(out / "anomalies", overwrite=True)
    say(f"anomalies: {len(table)} objects ranked by {', '.join(anomalies.summary['scorers'])}")
    say(f"done in {time.perf_counter() - t0:.0f} s; outputs in {out}")
    return done
