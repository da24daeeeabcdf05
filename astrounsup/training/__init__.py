"""Training: named recipes with defaults for every setting, a plain PyTorch loop with
checkpoints that resume exactly, and the trained model that embeds new cutouts."""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "checkpoint": ["load_checkpoint", "save_checkpoint"],
        "distributed": ["init_from_environment", "is_main_process", "shutdown"],
        "fit": ["NORMALIZER_FIT_CUTOUTS", "fit_normalizer", "train"],
        "fitted": ["TrainedModel", "embed_dataset", "iter_embeddings"],
        "pretrained": ["PRETRAINED", "load_pretrained", "pretrained_card", "write_pretrained"],
        "objectives": [
            "contrastive_objective",
            "denoising_objective",
            "reconstruction_objective",
            "rotation_objective",
            "inpainting_objective",
        ],
        "recipes": [
            "DEFAULT_MAX_STEPS",
            "LOSS_LABELS",
            "MODELS",
            "VIEWS",
            "build_model",
            "contrastive_view_settings",
            "default_config",
            "describe_config",
            "load_config",
            "resolve_config",
        ],
        "trainer": [
            "Trainer",
            "TrainingHistory",
            "check_training_settings",
            "select_device",
            "short_run_warmup",
            "warmup_cosine",
        ],
    },
)
