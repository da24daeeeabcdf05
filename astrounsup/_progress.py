"""Progress bars for long work: ``tqdm.auto`` (a widget in notebooks, text elsewhere)."""

from __future__ import annotations


def progress_bar(*, total, desc, unit, enabled=True, initial=0):
    """A tqdm bar, or a silent stand-in with the same methods when ``enabled`` is false.

    Every long step of the package (simulating, ingesting, training, embedding, scoring)
    shows one by default; its ``progress=False`` option, or ``TQDM_DISABLE=1`` in the
    environment, turns them off.
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=not enabled)
