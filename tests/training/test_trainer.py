import pytest
import torch

from astrounsup.io import CutoutDataset
from astrounsup.models import VAE, ConvAutoencoder
from astrounsup.training import (
    Trainer,
    build_model,
    load_checkpoint,
    select_device,
    warmup_cosine,
)
from astrounsup.training.recipes import MODELS

from ..models.test_models import _data

SMALL = {"size": 32, "latent_dim": 8, "widths": (8, 16)}


@pytest.fixture(scope="module")
def dataset():
    return CutoutDataset(_data(n=48).numpy())


def _trainer(model, tmp_path=None, **kw):
    args = {
        "max_steps": 20,
        "batch_size": 8,
        "lr": 3e-3,
        "warmup_steps": 3,
        "val_fraction": 0.25,
        "eval_every": 5,
        "device": "cpu",
        "seed": 7,
    }
    if tmp_path is not None:
        args["out_dir"] = tmp_path
    return Trainer(model, **(args | kw))


class TestFit:
    def test_loss_falls_and_history_is_kept(self, dataset):
        torch.manual_seed(0)
        t = _trainer(ConvAutoencoder(3, **SMALL), max_steps=40)
        h = t.fit(dataset)
        assert len(h.loss) == 40
        assert h.step[-1] == 40
        assert sum(h.loss[-5:]) / 5 < 0.5 * sum(h.loss[:5]) / 5
        assert h.val_step == [5, 10, 15, 20, 25, 30, 35, 40]

    def test_vae(self, dataset):
        torch.manual_seed(0)
        h = _trainer(VAE(3, **SMALL), max_steps=10).fit(dataset)
        assert all(map(torch.isfinite, map(torch.tensor, h.loss)))

    def test_early_stopping(self, dataset):
        torch.manual_seed(0)
        t = _trainer(ConvAutoencoder(3, **SMALL), max_steps=200, lr=0.0, patience=2)
        t.fit(dataset)  # a zero learning rate never improves: stop after 3 validations
        assert t.step == 15

    def test_resume_gives_identical_weights(self, dataset, tmp_path):
        torch.manual_seed(0)
        straight = ConvAutoencoder(3, **SMALL)
        start = {k: v.clone() for k, v in straight.state_dict().items()}
        _trainer(straight).fit(dataset)

        first = ConvAutoencoder(3, **SMALL)
        first.load_state_dict(start)
        # The same 20-step run (same schedule), cut after its step-10 checkpoint.
        cut = _trainer(first, tmp_path, checkpoint_every=10)
        cut.max_steps = 10
        cut.fit(dataset)
        resumed_model = ConvAutoencoder(3, **SMALL)
        t2 = _trainer(resumed_model, tmp_path).resume(tmp_path / "last.pt")
        assert t2.step == 10
        t2.fit(dataset)
        for key, value in straight.state_dict().items():
            torch.testing.assert_close(resumed_model.state_dict()[key], value, rtol=0, atol=0)

    def test_resume_refuses_weights_of_another_architecture(self, dataset, tmp_path):
        t = _trainer(ConvAutoencoder(3, **SMALL), tmp_path, max_steps=4)
        t.fit(dataset)
        wider = ConvAutoencoder(3, **(SMALL | {"latent_dim": 9}))
        with pytest.raises(ValueError, match=r"last\.pt: its weights do not fit the Conv"):
            _trainer(wider, tmp_path).resume(tmp_path / "last.pt")

    def test_checkpoint_contents(self, dataset, tmp_path):
        t = _trainer(
            ConvAutoencoder(3, **SMALL),
            tmp_path,
            max_steps=4,
            extra_state={"bands": ["g", "r", "i"]},
        )
        t.fit(dataset)
        state = load_checkpoint(tmp_path / "last.pt")
        assert state["step"] == 4
        assert state["model_class"] == "ConvAutoencoder"
        assert state["model_config"]["latent_dim"] == 8
        assert state["extra"]["bands"] == ["g", "r", "i"]
        again = ConvAutoencoder(**state["model_config"])
        again.load_state_dict(state["model"])


class TestPieces:
    def test_warmup_cosine(self):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        sched = warmup_cosine(opt, warmup_steps=4, total_steps=12)
        rates = []
        for _ in range(12):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
        assert rates[4] == pytest.approx(1.0)
        assert rates[-1] < 0.05
        with pytest.raises(ValueError, match="warmup_steps must be in"):
            warmup_cosine(opt, warmup_steps=20, total_steps=10)

    def test_device_selection(self):
        assert select_device("cpu").type == "cpu"
        if not torch.cuda.is_available():
            assert select_device().type in ("cpu", "mps")
            with pytest.raises(ValueError, match="CUDA is not available"):
                select_device("cuda")

    def test_checkpoint_errors(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="no such checkpoint"):
            load_checkpoint(tmp_path / "none.pt")
        (tmp_path / "junk.pt").write_bytes(b"junk")
        with pytest.raises(ValueError, match=r"junk\.pt: not a readable astrounsup checkpoint"):
            load_checkpoint(tmp_path / "junk.pt")

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"max_steps": 0}, "max_steps must be a positive integer"),
            ({"batch_size": -1}, "batch_size must be a positive integer"),
            ({"val_fraction": 1.0}, r"val_fraction must be a number in \[0, 1\)"),
            ({"amp": "fp8"}, "amp must be"),
            ({"checkpoint_every": 5}, "checkpoint_every needs out_dir"),
        ],
    )
    def test_bad_settings(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            _trainer(ConvAutoencoder(3, **SMALL), **kwargs)

    def test_batch_larger_than_training_split(self, dataset):
        with pytest.raises(ValueError, match="fewer than batch_size=64"):
            _trainer(ConvAutoencoder(3, **SMALL), batch_size=64).fit(dataset)


@pytest.mark.needs_cuda
def test_cuda_mixed_precision_steps(dataset):
    t = _trainer(ConvAutoencoder(3, **SMALL), max_steps=3, device="cuda", amp="auto")
    h = t.fit(dataset)
    assert t.amp_dtype in (torch.bfloat16, torch.float16)
    assert all(map(torch.isfinite, map(torch.tensor, h.loss)))


@pytest.mark.needs_cuda
@pytest.mark.parametrize("recipe", sorted(MODELS))
def test_every_recipe_trains_on_cuda(recipe):
    # The trainer hands objectives a CPU generator: every random draw (VAE noise, views)
    # must still work with the model and batch on the GPU.
    data = CutoutDataset(_data(n=24, size=48).numpy())
    model, objective, _ = build_model(
        recipe, bands=("g", "r", "i"), size=48, pixel_scale=0.263,
        model_config={"widths": (8, 16), "latent_dim": 8}, asinh_scale=[3.0, 3.0, 3.0],
    )  # fmt: skip
    t = _trainer(
        model, objective=objective, max_steps=2, warmup_steps=1, val_fraction=0.0, device="cuda"
    )
    h = t.fit(data)
    assert len(h.loss) == 2
    assert all(map(torch.isfinite, map(torch.tensor, h.loss)))
    assert next(model.parameters()).device.type == "cuda"


@pytest.mark.needs_cuda
def test_simclr_decorrelation_under_cuda_mixed_precision():
    # The correlation penalty is computed in float32 from bf16/fp16 representations.
    data = CutoutDataset(_data(n=24, size=48).numpy())
    model, objective, _ = build_model(
        "simclr", bands=("g", "r", "i"), size=48, pixel_scale=0.263, asinh_scale=[3.0] * 3,
        model_config={"widths": (8, 16), "latent_dim": 8, "decorrelation_weight": 5.0},
    )  # fmt: skip
    t = _trainer(
        model, objective=objective, max_steps=2, warmup_steps=1, val_fraction=0.0,
        device="cuda", amp="auto",
    )  # fmt: skip
    h = t.fit(data)
    assert t.amp_dtype in (torch.bfloat16, torch.float16)
    assert all(map(torch.isfinite, map(torch.tensor, h.loss)))


@pytest.mark.slow
# torch's own compilation path still calls its deprecated torch.jit.script_method.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_step_trains(dataset):
    torch.manual_seed(0)
    h = _trainer(ConvAutoencoder(3, **SMALL), max_steps=6, compile=True).fit(dataset)
    assert h.loss[-1] < h.loss[0]


def test_a_checkpoint_is_written_every_few_minutes_by_default(dataset, tmp_path, monkeypatch):
    assert Trainer(ConvAutoencoder(bands=3, **SMALL), max_steps=1).checkpoint_minutes == 5.0
    clock = iter(range(0, 10_000, 200))  # 200 s pass between readings of the clock
    monkeypatch.setattr("astrounsup.training.trainer.time.monotonic", lambda: next(clock))
    trainer = _trainer(ConvAutoencoder(bands=3, **SMALL), tmp_path, max_steps=6)
    saved = []
    monkeypatch.setattr(trainer, "save", lambda path: saved.append(trainer.step))
    trainer.fit(dataset)
    assert saved[:-1]  # some before the end, as minutes passed
    assert saved[-1] == 6
    assert len(saved) < 7  # not at every step


def test_training_settings_of_the_wrong_type_are_refused():
    model = ConvAutoencoder(bands=3, **SMALL)
    with pytest.raises(ValueError, match="batch_size must be a positive integer; got True"):
        Trainer(model, max_steps=2, batch_size=True)
    with pytest.raises(ValueError, match="checkpoint_minutes must be a positive number"):
        Trainer(model, max_steps=2, checkpoint_minutes=-1)
