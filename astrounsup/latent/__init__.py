"""Latent-space science: clusters, reductions, anomalies, neighbours and the files of
latents they read.

Every analysis object is a scikit-learn estimator (``fit`` returns ``self``, fitted
attributes end in ``_``), so it also works on any feature table, not only on latents.
"""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "anomaly": [
            "ARTEFACT_SCORES",
            "CONTEXT_ERRORS",
            "SCORERS",
            "AnomalyScorer",
            "context_model_scores",
            "contextual_scores",
            "model_scores_to_rank",
        ],
        "cluster": [
            "DEFAULT_N_CLUSTERS",
            "METHODS",
            "REDUCE_COMPONENTS",
            "LatentClusterer",
            "choose_k",
        ],
        "latents_file": [
            "LATENTS_FORMAT",
            "LATENTS_MANIFEST",
            "LatentsWriter",
            "is_latents_file",
            "merge_latents",
            "read_latents",
            "write_latents",
            "write_latents_set",
        ],
        "evaluate": [
            "ClusterLabeler",
            "binary_metrics",
            "draw_labeled",
            "known_labels",
            "label_clusters",
            "parse_positive",
            "purity",
        ],
        "reconstruction": [
            "LINE_STEP",
            "RECONSTRUCTION_REDUCTIONS",
            "inpainting_scores",
            "model_scores",
            "negative_elbo",
            "reconstruction_error",
        ],
        "neighbors": ["SimilaritySearch"],
        "labels": ["LENS_GRADES", "fold_grades", "labels_from_catalog"],
        "rank": [
            "COMBINE_RULES",
            "combine_ranks",
            "descending_rank",
            "flagged_last",
            "rank_anomalies",
            "rank_scores",
            "rank_with_grades",
            "tail_scaled",
        ],
        "score": ["C_GRID", "LabelScorer"],
        "summary": ["LatentSummary", "summarize_latents"],
        "reduce": [
            "DEFAULT_FIT_SIZE",
            "REDUCERS",
            "REDUCER_METRICS",
            "TSNE_MAX_OBJECTS",
            "Reducer",
        ],
    },
)
