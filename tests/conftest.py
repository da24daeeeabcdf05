"""Seeded synthetic fixtures shared by the test suite, and the opt-in markers."""

from __future__ import annotations

import pytest
import torch

from astrounsup.simulate import simulate_lens_survey


def pytest_collection_finish(session):
    """Start the docs build in the background when its tests are to run: it takes a
    minute or two, mostly on one core, while the rest of the suite runs."""
    if any(
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
