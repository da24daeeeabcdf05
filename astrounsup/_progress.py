"""Progress bars for long work: ``tqdm.auto`` (a widget in notebooks, text elsewhere)."""

from __future__ import annotations


def progress_bar(*, total, desc, unit, enabled=True, initial=0):
    """A tqdm bar, or a silent stand-in with the same methods when ``enabled`` is false.

    Every long step of the package (simulating, ingesting, training, embedding, scoring)
    shows one by default; its ``progress=False`` option, or ``TQDM_DISABLE=1`` in the
    environment, turns them off.
    """
    import os

    from tqdm.auto import tqdm

    # tqdm reads TQDM_DISABLE only for a disable it is not given: it is read here.
    quiet = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")
    return tqdm(total=total, desc=desc, unit=unit, initial=initial,
                disable=quiet or not enabled)  # fmt: skip
