"""Latent-space science; for now, computing and storing the latent vectors."""

from astrounsup.latent.embed import embed_dataset, embed_store, read_latents, write_latents

__all__ = ["embed_dataset", "embed_store", "read_latents", "write_latents"]
