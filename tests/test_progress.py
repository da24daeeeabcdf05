import pytest

from astrounsup._progress import progress_bar


@pytest.mark.parametrize(("value", "silent"), [("1", True), ("true", True), ("0", False),
                                                ("", False), (None, False)])  # fmt: skip
def test_tqdm_disable_in_the_environment_silences_every_bar(monkeypatch, value, silent):
    if value is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", value)
    with progress_bar(total=3, desc="x", unit="it") as bar:
        assert bar.disable is silent
    with progress_bar(total=3, desc="x", unit="it", enabled=False) as bar:
        assert bar.disable
