import io

import pytest
import torch

from astrounsup.training import load_checkpoint, save_checkpoint


def _state():
    return {"format": "astrounsup.checkpoint", "model": {"w": torch.arange(6.0).reshape(2, 3)},
            "extra": {"bands": ["g", "r"], "scale": [1.0, 2.0]}, "step": 3}  # fmt: skip


def test_a_checkpoint_round_trips_with_its_checksum(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", _state())
    state = load_checkpoint(path)
    assert state["checksum"].startswith("xxh3_64:")
    assert torch.equal(state["model"]["w"], _state()["model"]["w"])


@pytest.mark.parametrize("change", ["weight", "step", "band"])
def test_a_changed_value_is_found_by_the_checksum(tmp_path, change):
    state = torch.load(save_checkpoint(tmp_path / "c.pt", _state()), weights_only=False)
    if change == "weight":
        state["model"]["w"][1, 2] = 5.000001
    elif change == "step":
        state["step"] = 4
    else:
        state["extra"]["bands"] = ["g", "i"]
    torch.save(state, tmp_path / "changed.pt")
    with pytest.raises(ValueError, match=r"changed\.pt: a damaged checkpoint"):
        load_checkpoint(tmp_path / "changed.pt")


def test_a_checkpoint_without_a_checksum_is_read_as_it_is(tmp_path):
    buffer = io.BytesIO()
    torch.save(_state(), buffer)
    (tmp_path / "old.pt").write_bytes(buffer.getvalue())
    assert load_checkpoint(tmp_path / "old.pt")["step"] == 3
