"""Seeded synthetic fixtures shared by the test suite, and the opt-in markers."""

from __future__ import annotations

import os

# Under pytest-xdist each worker gets its share of the cores, for itself and for the
# processes its tests start (torchrun, scripts), instead of every worker using all of them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _THREADS = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_name, _THREADS)

import pytest  # noqa: E402
import torch  # noqa: E402

if _WORKERS > 1:  # in case PyTorch was loaded before the variables above were set
    torch.set_num_threads(int(_THREADS))

from astrounsup.simulate import simulate_lens_survey  # noqa: E402 (threads set first)


def pytest_collection_finish(session):
    """Start the docs build in the background when its tests are to run: it takes a
    minute or two, mostly on one core, while the rest of the suite runs. Under
    pytest-xdist every worker collects every test, so the build starts in the docs
    tests' own fixture instead (once, on the worker that runs them)."""
    if _WORKERS == 1 and any(
        "site" in getattr(item, "fixturenames", ())
        and item.nodeid.startswith("tests/test_docs.py::")
        for item in session.items
    ):
        from tests.test_docs import start_build

        session.config._astrounsup_docs_build = start_build()


def pytest_unconfigure(config):
    build = getattr(config, "_astrounsup_docs_build", None)
    if build is not None:
        import shutil

        process, out, log = build
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(out, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "needs_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def small_survey():
    """60 cutouts with every kind of object, NaNs and anomalies over-represented."""
    return simulate_lens_survey(60, seed=11, anomaly_fraction=0.1, nan_fraction=0.1)


@pytest.fixture(scope="session")
def star_survey():
    """A survey rich in isolated stars (no field neighbours), for photometry and noise
    checks."""
    return simulate_lens_survey(
        240, seed=5, lens_fraction=0.0, anomaly_fraction=0.0, nan_fraction=0.0, neighbors=False
    )


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    """A training config small enough for a test: a 6-d code, two narrow layers."""
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(
        "[model]\nlatent_dim = 6\nwidths = [8, 16]\n\n"
        "[training]\nbatch_size = 8\neval_every = 2\nlr = 0.003\n"
    )
    return path
