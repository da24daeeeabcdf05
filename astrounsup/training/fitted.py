"""A trained model with what it needs to embed new cutouts: normalisation, bands, scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from astrounsup import models
from astrounsup._devices import model_device
from astrounsup._progress import progress_bar
from astrounsup._provenance import provenance
from astrounsup.io import AsinhNormalizer, CutoutDataset, as_dataset
from astrounsup.training.checkpoint import _load_weights, load_checkpoint, save_checkpoint
from astrounsup.training.trainer import TrainingHistory
from astrounsup.transforms.functional import center_crop

__all__ = ["TrainedModel", "embed_dataset", "iter_embeddings"]


@torch.no_grad()
def embed_dataset(model, dataset, *, batch_size=256, device=None, input_size=None, progress=True,
                  where=None):  # fmt: skip
    """``model.encode`` of every cutout of ``dataset``, in order.

    Parameters
    ----------
    model : torch.nn.Module
        Any astrounsup model (all have ``encode``).
    dataset : astrounsup.io.CutoutDataset
        Normalised as the model's training data.
    batch_size : int, optional
    device : str or torch.device, optional
        Default: the model's device.
    input_size : int, optional
        Centre-crop the cutouts to this side first (a SimCLR encoder trained on crops).
    progress : bool, optional
        Show a progress bar.
    where : str or path, optional
        The model's file, named in the errors.

    Returns
    -------
    numpy.ndarray of shape (n, latent_dim), float32

    Raises
    ------
    ValueError
        A latent value is not finite or exceeds :data:`LATENT_BOUND` (damaged or diverged
        weights).
    """
    out = list(
        iter_embeddings(
            model, dataset, batch_size=batch_size, device=device, input_size=input_size,
            progress=progress, where=where,
        )
    )  # fmt: skip
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)


#: The largest latent value an embedding may hold; above it the model is damaged or has
#: diverged, and its latents would rank nonsense.
LATENT_BOUND = 1e6


def _normalizer(extra, checkpoint):
    try:
        return AsinhNormalizer.from_dict(extra["normalization"])
    except (KeyError, TypeError, ValueError) as err:
        msg = f"{checkpoint}: its normalisation is refused ({err})"
        raise ValueError(msg) from None


@torch.no_grad()
def iter_embeddings(model, dataset, *, batch_size=256, device=None, input_size=None,
                    progress=True, where=None):  # fmt: skip
    """:func:`embed_dataset` batch by batch: yields ``(batch, latent_dim)`` float32 arrays
    in order, so a survey is embedded in the memory of one batch; a latent value that is
    not finite or exceeds :data:`LATENT_BOUND` raises a ValueError naming ``where``."""

    device = model_device(model, device)
    model = model.to(device).eval()
    with progress_bar(
        total=len(dataset), desc="embedding", unit="cutout", enabled=progress
    ) as bar:
        for images, _masks, _index in dataset.loader(batch_size):
            if input_size is not None and images.shape[-1] != input_size:
                images, _ = center_crop(images, input_size)
            z = model.encode(images.to(device)).float().cpu().numpy()
            bad = ~(np.abs(z) <= LATENT_BOUND).all(1)  # NaN fails too
            if bad.any():
                rows = np.asarray(_index)[bad]
                msg = (
                    f"{where or 'the model'}: {int(bad.sum())} cutouts (rows "
                    f"{rows[:5].tolist()}) embed to latent "
                    f"values that are not finite or exceed {LATENT_BOUND:g}: the model's "
                    "weights are damaged or diverged"
                )
                raise ValueError(msg)
            yield z
            bar.update(len(images))


def _with_model_bands(dataset, bands):
    """``dataset`` with only the planes of ``bands`` when it holds them all in another
    arrangement (more bands, another order), else ``dataset`` itself (whose bands the
    caller then checks)."""
    if tuple(dataset.bands) != tuple(bands) and set(bands) <= set(dataset.bands):
        return dataset.with_bands(bands)
    return dataset


class TrainedModel:
    """A trained model and the normalisation, bands and pixel scale of its training data.

    :func:`astrounsup.training.train` returns one; :meth:`load` reads one from a
    checkpoint. Everything stays in memory until :meth:`save` writes it.

    Parameters
    ----------
    model : torch.nn.Module
        An astrounsup model (:mod:`astrounsup.models`).
    recipe : str
        Its recipe (:data:`astrounsup.training.MODELS`).
    bands : sequence of str
        The band of each input plane, in order.
    pixel_scale : float
        Arcsec per pixel of the training cutouts (NaN if unknown).
    input_size : int
        Side of the cutouts the encoder takes (larger ones are centre-cropped).
    normalizer : astrounsup.io.AsinhNormalizer
        Fitted on the training cutouts; applied to every cutout embedded.
    history : astrounsup.training.TrainingHistory, optional
    config : dict, optional
        The resolved training config.
    source : str, optional
        The store or files it was trained on.
    checkpoint : pathlib.Path, optional
        The checkpoint it was read from or written to.
    init : str, optional
        Where its initial weights came from (``"pretrained simclr-gri"``, a checkpoint);
        None for random ones.

    Attributes
    ----------
    model, recipe, bands, pixel_scale, input_size, normalizer, history, config, source,
    checkpoint, init
        As given.
    latent_dim : int
        Length of the latent vectors :meth:`embed` returns.
    """

    def __init__(
        self,
        model,
        *,
        recipe,
        bands,
        pixel_scale,
        input_size,
        normalizer,
        history=None,
        config=None,
        source=None,
        checkpoint=None,
        init=None,
    ):
        self.model = model
        self.init = None if init is None else str(init)
        self.recipe = recipe
        self.bands = tuple(str(b) for b in bands)
        self.pixel_scale = float(pixel_scale)
        self.input_size = int(input_size)
        self.normalizer = normalizer
        self.history = history
        self.config = config
        self.source = source
        self.checkpoint = None if checkpoint is None else Path(checkpoint)

    @property
    def steps(self):
        """Training steps taken (0 when it was not trained after its initial weights)."""
        h = self.history
        return int(h.step[-1]) if h is not None and h.step else 0

    def describe(self):
        """One line: the recipe, its steps and last loss, and where it started from.

        Examples
        --------
        >>> import numpy as np
        >>> from astrounsup.training import train
        >>> images = np.random.default_rng(0).normal(size=(16, 1, 32, 32)).astype("f4")
        >>> train(images, model="cae", bands=("r",), progress=False,
        ...       config={"model": {"latent_dim": 2, "widths": [4, 4]},
        ...               "training": {"max_steps": 2, "batch_size": 8}}).describe()[:14]
        'cae, 2 steps, '
        """
        h = self.history
        text = f"{self.recipe}, {self.steps} steps"
        if h is not None and h.loss:
            text += f", loss {h.loss[-1]:.4g}"
        if self.init:
            text += f", from {self.init}"
        return text

    @property
    def input_planes(self):
        """What each plane the encoder takes is: the band names, then, with SimCLR's
        ``colour_residuals``, ``"b-a*red"`` for each other band ``b`` (that band with the
        central object's light in band ``red`` removed,
        :class:`astrounsup.models.ColourResiduals`).

        Examples
        --------
        >>> import numpy as np
        >>> from astrounsup.training import train
        >>> images = np.random.default_rng(0).normal(size=(16, 2, 48, 48)).astype("f4")
        >>> train(images, model="simclr", bands=("g", "i"), pixel_scale=0.263, progress=False,
        ...       config={"model": {"latent_dim": 2, "projection_dim": 2, "widths": [4, 4],
        ...                         "colour_residuals": True},
        ...               "training": {"max_steps": 1, "batch_size": 8}}).input_planes
        ['g', 'i', 'g-a*i']
        """
        bands = [str(b) for b in self.bands]
        inputs = getattr(self.model, "inputs", None)
        if inputs is None:
            return bands
        red = bands[inputs.red]
        return bands + [f"{bands[b]}-a*{red}" for b in inputs.others]

    @property
    def latent_dim(self):
        return int(self.model.config["latent_dim"])

    def dataset(self, data, *, table=None):
        """``data`` as a dataset normalised as the training cutouts were.

        Parameters
        ----------
        data : path, numpy.ndarray or astrounsup.io.CutoutDataset
            A store, FITS cutouts, a dataset, or an array ``(n, bands, ny, nx)`` in the
            training bands. Cutouts that hold the training bands among others (a g, r, i,
            z, y store for a g, r, i model) give the training bands' planes, in their order.
        table : astropy.table.Table, optional
            Metadata rows of an array.

        Returns
        -------
        astrounsup.io.CutoutDataset

        Raises
        ------
        ValueError
            When the cutouts lack a training band (naming both sets of bands).
        """

        if isinstance(data, (np.ndarray, torch.Tensor)):
            shape = tuple(data.shape)
            if len(shape) != 4 or shape[1] != len(self.bands):
                msg = (
                    f"cutouts must have shape (n, {len(self.bands)}, ny, nx) for the bands "
                    f"{list(self.bands)} of this {self.recipe} model; got {shape}"
                )
                raise ValueError(msg)
            dataset = as_dataset(data, bands=self.bands, pixel_scale=self.pixel_scale, table=table)
        else:
            dataset = (
                as_dataset(data, table=table) if not isinstance(data, CutoutDataset) else data
            )
            dataset = _with_model_bands(dataset, self.bands)
            if tuple(dataset.bands) != self.bands:
                where = data if not isinstance(data, CutoutDataset) else "the dataset"
                msg = (
                    f"{where}: bands {list(dataset.bands)} differ from the training bands "
                    f"{list(self.bands)} of {self.checkpoint or 'this model'}"
                )
                raise ValueError(msg)
        side, size = int(dataset.shape[-1]), self.input_size
        if size is not None and (side < size or (side - size) % 2):
            where = data if isinstance(data, (str, Path)) else "the cutouts"
            msg = (
                f"{where}: cutouts of {side} px, but {self.checkpoint or 'this model'} takes "
                f"{size} px (a centred crop of larger cutouts, {size} + 2k px): give cutouts "
                "of such a side, or train a model on these"
            )
            raise ValueError(msg)
        return dataset.with_normalizer(self.normalizer)

    def embed(self, data, *, batch_size=256, device=None, progress=True):
        """Latent vectors of cutouts, in their order.

        Parameters
        ----------
        data : path, numpy.ndarray or astrounsup.io.CutoutDataset
            As :meth:`dataset` takes.
        batch_size : int, optional
        device : str, optional
            Default: where the model is.
        progress : bool, optional
            Show a progress bar.

        Returns
        -------
        numpy.ndarray of shape (n, latent_dim), float32
        """
        import warnings

        dataset = self.dataset(data)
        latents = embed_dataset(
            self.model,
            dataset,
            batch_size=batch_size,
            device=device,
            input_size=self.input_size,
            progress=progress,
            where=self.checkpoint,
        )
        constant = np.flatnonzero(dataset.constant_flags())  # noted while embedding
        if constant.size:
            warnings.warn(
                f"{constant.size} cutouts (rows {constant[:5].tolist()}) have a band of one "
                "value (blank, all NaN or all zero): their latents describe nothing of them; "
                "embed_latents' table flags them (constant) and the rankings put them last",
                stacklevel=2,
            )
        return latents

    def extra_state(self):
        """What a checkpoint keeps beside the weights so that :meth:`load` can rebuild this
        model: recipe, bands, pixel scale, input size, normalisation, source and config."""
        return {
            "recipe": self.recipe,
            "bands": list(self.bands),
            "pixel_scale": self.pixel_scale,
            "input_size": self.input_size,
            "normalization": self.normalizer.to_dict(),
            "store": self.source,
            "config": self.config,
            "init": self.init,
        }

    def fingerprint(self):
        """A SHA-256 of the weights and the normalisation (hex): the same for the same trained
        model wherever it is loaded, different for any other.

        Examples
        --------
        >>> import numpy as np
        >>> from astrounsup.training import train
        >>> images = np.random.default_rng(0).normal(size=(16, 1, 32, 32)).astype("f4")
        >>> fitted = train(images, model="cae", bands=("r",), progress=False,
        ...                config={"model": {"latent_dim": 2, "widths": [4, 4]},
        ...                        "training": {"max_steps": 1, "batch_size": 8}})
        >>> len(fitted.fingerprint())
        64
        """
        import hashlib
        import json

        h = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        h.update(json.dumps(self.normalizer.to_dict(), sort_keys=True, default=str).encode())
        return h.hexdigest()

    def save(self, path):
        """Write the model and its settings as a checkpoint that :meth:`load` reads,
        atomically (without the optimiser state, so training cannot resume from it).

        Returns
        -------
        pathlib.Path
        """

        state = {
            "format": "astrounsup.checkpoint",
            "provenance": provenance("astrounsup.training.TrainedModel.save"),
            "model": self.model.state_dict(),
            "model_class": type(self.model).__name__,
            "model_config": dict(self.model.config),
            "history": None if self.history is None else self.history.as_dict(),
            "extra": self.extra_state(),
        }
        self.checkpoint = save_checkpoint(path, state)
        return self.checkpoint

    @classmethod
    def load(cls, checkpoint):
        """Rebuild a trained model (in eval mode, on the CPU) from a checkpoint written
        during training or by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            No such file.
        ValueError
            Not an astrounsup checkpoint, an unknown model class, or weights that do not
            fit the model its config describes (e.g. written by a version with another
            decoder); the message names the file.
        """

        state = load_checkpoint(checkpoint)
        kinds = (models.ConvAutoencoder, models.VAE, models.SimCLR, models.RotationPretext,
                 models.ContextEncoder)  # fmt: skip
        classes = {c.__name__: c for c in kinds}
        model_class = classes.get(state.get("model_class"))
        if model_class is None or "extra" not in state:
            msg = f"{checkpoint}: holds no astrounsup model (class {state.get('model_class')!r})"
            raise ValueError(msg)
        extra = state["extra"]
        cfg = state.get("model_config")
        if not isinstance(cfg, dict) or "bands" not in cfg or not isinstance(extra, dict):
            msg = f"{checkpoint}: its model config is missing or not a table of settings"
            raise ValueError(msg)
        cfg = dict(cfg)
        bands = cfg.pop("bands")
        if isinstance(extra.get("bands"), (list, tuple)) and bands != len(extra["bands"]):
            msg = (
                f"{checkpoint}: its model has {bands!r} bands but it names "
                f"{len(extra['bands'])} ({extra['bands']})"
            )
            raise ValueError(msg)
        # The saved config is checked as a new model's would be (bounds included) before
        # anything is allocated: a corrupt or crafted one is refused, not built.
        try:
            model = model_class(bands, **cfg)
        except (TypeError, ValueError) as err:
            msg = f"{checkpoint}: its {model_class.__name__} config is refused ({err})"
            raise ValueError(msg) from None
        _load_weights(model, state, checkpoint)
        history = state.get("history")
        return cls(
            model.eval(),
            recipe=extra.get("recipe", ""),
            bands=extra["bands"],
            pixel_scale=extra["pixel_scale"],
            input_size=extra.get("input_size", cfg.get("size")),
            normalizer=_normalizer(extra, checkpoint),
            history=None if history is None else TrainingHistory(**history),
            config=extra.get("config"),
            source=extra.get("store"),
            checkpoint=checkpoint,
            init=extra.get("init"),
        )

    def __repr__(self):
        steps = f", {len(self.history.step)} steps" if self.history is not None else ""
        return (
            f"TrainedModel({self.recipe!r}, {type(self.model).__name__}, bands "
            f"{','.join(self.bands)}, input {self.input_size} px, latent_dim "
            f"{self.latent_dim}{steps})"
        )
