"""The steps of a survey search as library functions, composed by the command line and the
pipelines: each takes data and a config dict and returns its results, which are written
by an explicit call.

Steps: :func:`open_or_ingest`, :func:`make_survey` / :func:`make_stars`,
:func:`train_model`, :func:`embed_latents` / :func:`embed_survey`,
:func:`measure_arc_features`, :func:`cluster_latents`,
:func:`score_anomalies`, :func:`reduce_features`, :func:`find_main_sequence`,
:func:`find_similar`, :func:`rerank_candidates`; :func:`run_lens_search` composes the lens search.
"""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_results": ["FORMATS", "StepResult", "check_outputs", "output_path"],
        "anomalies": ["ANOMALY_DEFAULTS", "score_anomalies"],
        "cluster": ["CLUSTER_DEFAULTS", "check_labels", "cluster_latents", "cluster_outputs"],
        "data": ["open_or_ingest"],
        "embed": ["check_latents_model", "embed_latents", "embed_survey", "part_name"],
        "features": ["FEATURES_DEFAULTS", "arc_features_skipped", "measure_arc_features"],
        "pretrain": ["PRETRAIN_DEFAULTS", "pretrain_encoder", "pretrain_survey_settings"],
        "search": [
            "LENS_SEARCH_ANOMALY_DEFAULTS",
            "LENS_SEARCH_CONFIG",
            "LENS_SEARCH_FULL_CONFIG",
            "MIN_OBJECTS",
            "fit_to_survey",
            "run_lens_search",
        ],
        "rank": ["grades_alone", "rerank_candidates"],
        "reduce": [
            "MAIN_SEQUENCE_DEFAULTS",
            "REDUCE_DEFAULTS",
            "find_main_sequence",
            "reduce_features",
            "table_features",
        ],
        "similar": ["SIMILAR_DEFAULTS", "find_similar"],
        "simulate": [
            "make_stars",
            "make_survey",
            "star_defaults",
            "survey_defaults",
            "write_known_lenses",
        ],
        "train": ["TRAIN_DEFAULTS", "train_model"],
    },
)
