"""Latent-space science: embeddings, clusters, reductions, anomalies and neighbours.

Every analysis object is a scikit-learn estimator (``fit`` returns ``self``, fitted
attributes end in ``_``), so it also works on any feature table, not only on latents.
"""

from astrounsup.latent.anomaly import (
    SCORERS,
    AnomalyScorer,
    combine_ranks,
    context_model_scores,
    contextual_scores,
    model_scores,
    negative_elbo,
    rank_scores,
    reconstruction_error,
)
from astrounsup.latent.cluster import METHODS, LatentClusterer, choose_k
from astrounsup.latent.embed import (
    embed_dataset,
    embed_images,
    embed_store,
    model_and_dataset,
    read_latents,
    write_latents,
)
from astrounsup.latent.evaluate import ClusterLabeller, binary_metrics, purity
from astrounsup.latent.main_sequence import (
    BINARY_OFFSET,
    EXTINCTION_COLUMNS,
    GAIA_COLUMNS,
    MEMBERSHIPS,
    MainSequence,
    gaia_cmd,
    main_sequence_catalog,
)
from astrounsup.latent.neighbours import SimilaritySearch
from astrounsup.latent.reduce import REDUCER_METRICS, REDUCERS, TSNE_MAX_OBJECTS, Reducer

__all__ = [
    "BINARY_OFFSET",
    "EXTINCTION_COLUMNS",
    "GAIA_COLUMNS",
    "MEMBERSHIPS",
    "METHODS",
    "REDUCERS",
    "REDUCER_METRICS",
    "SCORERS",
    "TSNE_MAX_OBJECTS",
    "AnomalyScorer",
    "ClusterLabeller",
    "LatentClusterer",
    "MainSequence",
    "Reducer",
    "SimilaritySearch",
    "binary_metrics",
    "choose_k",
    "combine_ranks",
    "context_model_scores",
    "contextual_scores",
    "embed_dataset",
    "embed_images",
    "embed_store",
    "gaia_cmd",
    "main_sequence_catalog",
    "model_and_dataset",
    "model_scores",
    "negative_elbo",
    "purity",
    "rank_scores",
    "read_latents",
    "reconstruction_error",
    "write_latents",
]
