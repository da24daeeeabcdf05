"""The embedding step: the latent vectors of a survey's cutouts, in one process
(:func:`embed_latents`) or shard by shard across the processes of ``torchrun``
(:func:`embed_survey`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from astrounsup._checksums import array_checksum
from astrounsup._ranks import in_process_group, rank_and_world
from astrounsup.io import is_sharded, open_store, shard_paths, source_kind
from astrounsup.io.hdf5 import read_checked
from astrounsup.latent import LatentsWriter, merge_latents, write_latents, write_latents_set
from astrounsup.training import TrainedModel, embed_dataset, iter_embeddings

__all__ = ["check_latents_model", "embed_latents", "embed_survey", "part_name"]


def embed_latents(model, data, *, out=None, batch_size=256, device=None, progress=True):
    """Latent vectors of every cutout of ``data``.

    Parameters
    ----------
    model : astrounsup.training.TrainedModel or path
        A trained model, or its checkpoint.
    data : path, numpy.ndarray or astrounsup.io.CutoutDataset
        In the model's bands.
    out : str or pathlib.Path, optional
        Also write them as a latents file (:func:`astrounsup.latent.write_latents`),
        recording the checkpoint, recipe and cutouts.
    batch_size : int, optional
    device : str, optional
    progress : bool, optional

    Returns
    -------
    latents : numpy.ndarray of shape (n, latent_dim)
    table : astropy.table.QTable
        The cutouts' catalog, one row per latent vector, with a ``noise_floored`` column
        ``(n, bands)``: True where the cutout's border had no measurable noise and the
        band's reference noise normalised it (:meth:`astrounsup.io.CutoutDataset.noise_flags`),
        and a ``constant`` column ``(n,)``: True where a band has one value everywhere
        (:meth:`astrounsup.io.CutoutDataset.constant_flags`; the steps after rank those
        objects last).
    """
    import os

    trained = model if isinstance(model, TrainedModel) else TrainedModel.load(model)
    dataset = trained.dataset(data)
    # Not TrainedModel.embed, which warns of constant cutouts: the table flags them here.
    latents = embed_dataset(trained.model, dataset, batch_size=batch_size, device=device,
                            input_size=trained.input_size, progress=progress,
                            where=trained.checkpoint)  # fmt: skip
    table = dataset.table.copy()
    table["noise_floored"] = dataset.noise_flags()
    table["constant"] = dataset.constant_flags()
    if out is not None:
        meta = {
            "checkpoint": trained.checkpoint,
            "recipe": trained.recipe,
            "store": data if isinstance(data, (str, os.PathLike)) else None,
            "model_class": type(trained.model).__name__,
            "model_fingerprint": trained.fingerprint(),
        }
        write_latents(out, latents, table, meta=meta, step="astrounsup embed")
    return latents, table


def check_latents_model(trained, attrs, *, latents="the latents", checkpoint="the checkpoint"):
    """Refuse a model other than the one that embedded a latents file (new vectors from
    another model do not live in that space).

    Parameters
    ----------
    trained : astrounsup.training.TrainedModel
    attrs : dict
        The latents file's attributes (:func:`astrounsup.latent.read_latents`); a file
        without a ``model_fingerprint`` is checked by its model class only.
    latents, checkpoint : str, optional
        Their names, for the message.

    Raises
    ------
    ValueError
        Naming both files.
    """
    saved = attrs.get("model_fingerprint")
    other = (saved is not None and str(saved) != trained.fingerprint()) or attrs.get(
        "model_class", type(trained.model).__name__
    ) != type(trained.model).__name__
    if other:
        msg = (
            f"{checkpoint} is not the model that embedded {latents} (its weights differ); "
            "give that model's checkpoint, or embed the store with this one"
        )
        raise ValueError(msg)


def part_name(k):
    """The latents file of shard ``k`` (from 0): ``part-00000.h5``."""
    return f"part-{k:05d}.h5"


def _barrier():
    if in_process_group():
        import torch.distributed as dist

        dist.barrier()


def _shard_identity(path):
    """What names a shard's contents: its row count and the checksum of its cutouts'
    checksums (its size and modification time for a store without checksums)."""

    with open_store(path) as f:
        n = int(f["images"].shape[0])
        if "checksums" in f:
            return f"{n}:{array_checksum(read_checked(f, 'checksums'))}"
    st = os.stat(path)
    return f"{n}:{st.st_size}:{st.st_mtime_ns}"


def _part_is_done(part, identity, fingerprint):
    """Whether ``part`` is a complete latents file of this shard and this model."""
    import h5py

    if not part.is_file():
        return False
    try:
        with h5py.File(part, "r") as f:
            attrs = dict(f.attrs.items())
    except OSError:
        return False
    return (
        str(attrs.get("shard_identity")) == identity
        and str(attrs.get("model_fingerprint")) == fingerprint
    )


def _embed_part(trained, shard, part, meta, *, batch_size, device, progress):
    """Embed the store ``shard`` into the latents file ``part``, a batch at a time."""

    dataset = trained.dataset(shard)
    with LatentsWriter(part, len(dataset), meta=meta, step="astrounsup embed") as w:
        for z in iter_embeddings(
            trained.model, dataset, batch_size=batch_size, device=device,
            input_size=trained.input_size, progress=progress, where=trained.checkpoint,
        ):  # fmt: skip
            w.append(z)
        table = dataset.table.copy()
        table["noise_floored"] = dataset.noise_flags()
        table["constant"] = dataset.constant_flags()
        w.finish(table)


def embed_survey(model, data, out, *, batch_size=256, device=None, progress=True):
    """Embed every cutout of a store or a sharded store, shard by shard, writing a latents
    file (``out.h5``) or a latents set (``out`` a folder).

    Under ``torchrun`` the shards are dealt to the processes in turn (shard ``k`` to rank
    ``k % world``); each process embeds its shards one batch at a time, each into its own
    latents file, written atomically (``part-00000.h5``, ...: in ``out.h5.parts/`` for one
    output file, in the folder itself for a set). When every part is written, rank 0
    merges them into ``out.h5`` in store order (and removes the parts) or writes the set's
    ``latents.json``. Run again after a process was killed, it embeds only the shards
    without a complete part of this model; the others are kept. Memory per process is one
    batch and one shard's catalog, whatever the size of the survey.

    Parameters
    ----------
    model : astrounsup.training.TrainedModel or path
        A trained model, or its checkpoint.
    data : path or sequence of paths
        A store (one shard), or a sharded store (:mod:`astrounsup.io.shards`).
    out : str or pathlib.Path
        ``.h5``/``.hdf5``: one latents file; anything else: the folder of a latents set.
    batch_size : int, optional
    device : str, optional
        Default: under ``torchrun`` with CUDA, the process's GPU (``LOCAL_RANK``); else the
        best available.
    progress : bool, optional
        Show a progress bar per shard on rank 0.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        More processes than shards (naming both and ``--nproc_per_node``), data that is not
        a store, or cutouts in other bands than the model's.
    """
    import torch

    if is_sharded(data):
        shards = shard_paths(data)[0]
    elif source_kind(data) == "store":
        shards = [Path(data)]
    else:
        msg = f"data: a cutout store or a sharded store to embed shard by shard; got {data!r}"
        raise ValueError(msg)
    rank, world = rank_and_world()
    if world > len(shards):
        msg = (
            f"--nproc_per_node: {world} processes for the {len(shards)} shard"
            f"{'s' if len(shards) != 1 else ''} of {data}; start at most {len(shards)} (or "
            "ingest with a smaller --shard-size)"
        )
        raise ValueError(msg)
    if device is None and world > 1 and torch.cuda.is_available():
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank)) % torch.cuda.device_count()}"
    trained = model if isinstance(model, TrainedModel) else TrainedModel.load(model)
    fingerprint = trained.fingerprint()
    out = Path(out)
    one_file = out.suffix.lower() in (".h5", ".hdf5")
    parts_dir = out.with_name(out.name + ".parts") if one_file else out
    parts = [parts_dir / part_name(k) for k in range(len(shards))]
    meta = {
        "checkpoint": trained.checkpoint,
        "recipe": trained.recipe,
        "store": data if isinstance(data, (str, os.PathLike)) else None,
        "model_class": type(trained.model).__name__,
        "model_fingerprint": fingerprint,
    }
    new_folder = not parts_dir.exists()
    try:
        for k in range(rank, len(shards), world):
            identity = _shard_identity(shards[k])
            if not _part_is_done(parts[k], identity, fingerprint):
                _embed_part(trained, shards[k], parts[k], {**meta, "shard": str(shards[k]),
                            "shard_identity": identity}, batch_size=batch_size, device=device,
                            progress=progress and rank == 0)  # fmt: skip
    except BaseException:
        # Complete parts stay for the next run; a folder this run made and left empty goes.
        if new_folder and parts_dir.is_dir() and not any(parts_dir.glob("part-*.h5")):
            shutil.rmtree(parts_dir, ignore_errors=True)
        raise
    _barrier()  # every part is written
    if rank == 0:
        if one_file:
            merged = {**meta, "shards": len(shards)}
            merge_latents(parts, out, meta=merged, step="astrounsup embed")
            shutil.rmtree(parts_dir)
        else:
            write_latents_set(out, parts, shards=shards)
    _barrier()  # the output is complete before any process returns
    return out
