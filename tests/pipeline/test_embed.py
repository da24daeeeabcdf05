import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import astrounsup.pipeline.embed as embed_module
from astrounsup.io import write_manifest, write_store
from astrounsup.latent import LatentsWriter, is_latents_file, read_latents
from astrounsup.pipeline import embed_latents, embed_survey, train_model

TINY = {"model": {"latent_dim": 6, "widths": [8, 16]}, "training": {"batch_size": 8}}


@pytest.fixture(scope="module")
def survey_parts(small_survey, tmp_path_factory):
    """The small survey as one store and as three shards (20, 25, 15), and a model."""
    root = tmp_path_factory.mktemp("embed")
    s = small_survey

    def store(path, rows):
        return write_store(path, s.images[rows], s.table[rows], bands=s.bands,
                           pixel_scale=s.pixel_scale)  # fmt: skip

    whole = store(root / "whole.h5", slice(None))
    bounds = [0, 20, 45, 60]
    parts = [
        store(root / "shards" / f"s{k}.h5", slice(bounds[k], bounds[k + 1])) for k in range(3)
    ]
    write_manifest(root / "shards", parts)
    trained = train_model(whole, {"recipe": "cae", "steps": 2, "config": TINY}, out=root / "run",
                          progress=False)  # fmt: skip
    return whole, root / "shards", root / "run" / "last.pt", trained


def test_shard_by_shard_equals_the_whole_store_in_memory(survey_parts, tmp_path):
    whole, shards, checkpoint, trained = survey_parts
    z, table = embed_latents(trained, whole, progress=False)
    out = embed_survey(checkpoint, shards, tmp_path / "z.h5", batch_size=7, progress=False)
    z2, table2, attrs = read_latents(out)
    np.testing.assert_allclose(z2, z, rtol=0, atol=1e-6)
    assert list(table2["object_id"]) == list(table["object_id"])
    np.testing.assert_array_equal(table2["noise_floored"], table["noise_floored"])
    assert attrs["model_fingerprint"] == trained.fingerprint()
    assert int(attrs["shards"]) == 3
    assert not (tmp_path / "z.h5.parts").exists()  # merged, then removed


def test_a_latents_set_reads_as_the_one_file(survey_parts, tmp_path):
    whole, shards, _, trained = survey_parts
    z, _ = embed_latents(trained, whole, progress=False)
    out = embed_survey(trained, shards, tmp_path / "set", progress=False)
    assert is_latents_file(out)
    assert sorted(p.name for p in out.iterdir()) == [
        "latents.json", "part-00000.h5", "part-00001.h5", "part-00002.h5",
    ]  # fmt: skip
    z2, table2, _ = read_latents(out)
    np.testing.assert_allclose(z2, z, rtol=0, atol=1e-6)
    assert len(table2) == 60
    (out / "part-00001.h5").unlink()
    with pytest.raises(
        ValueError, match=r"part part-00001.h5 \(the latents of shard .*s1.h5\) is"
    ):
        read_latents(out)


def test_a_killed_run_redoes_only_the_missing_parts(survey_parts, tmp_path, monkeypatch):
    whole, shards, _, trained = survey_parts
    real = LatentsWriter.finish
    calls = []

    def finish_then_die(self, table):
        calls.append(self.path.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while writing the second part
        return real(self, table)

    monkeypatch.setattr(LatentsWriter, "finish", finish_then_die)
    with pytest.raises(KeyboardInterrupt):
        embed_survey(trained, shards, tmp_path / "z.h5", progress=False)
    parts = tmp_path / "z.h5.parts"
    assert sorted(p.name for p in parts.iterdir() if not p.name.startswith(".")) == [
        "part-00000.h5"
    ]
    written = []
    monkeypatch.setattr(
        LatentsWriter,
        "finish",
        lambda self, table: written.append(self.path.name) or real(self, table),
    )
    embed_survey(trained, shards, tmp_path / "z.h5", progress=False)
    assert written == ["part-00001.h5", "part-00002.h5", "z.h5"]  # part 0 kept, then merged
    assert not parts.exists()
    z, _ = embed_latents(trained, whole, progress=False)
    np.testing.assert_allclose(read_latents(tmp_path / "z.h5")[0], z, rtol=0, atol=1e-6)


def test_a_part_of_another_model_is_redone(survey_parts, tmp_path):
    whole, shards, _, trained = survey_parts
    other = train_model(whole, {"recipe": "cae", "steps": 1, "config": TINY}, progress=False)
    embed_survey(other, shards, tmp_path / "set", progress=False)
    before = os.stat(tmp_path / "set" / "part-00000.h5").st_mtime_ns
    embed_survey(trained, shards, tmp_path / "set", progress=False)
    assert os.stat(tmp_path / "set" / "part-00000.h5").st_mtime_ns != before
    attrs = read_latents(tmp_path / "set" / "part-00000.h5")[2]
    assert attrs["model_fingerprint"] == trained.fingerprint()


def test_more_processes_than_shards_is_refused(survey_parts, tmp_path, monkeypatch):
    _, shards, _, trained = survey_parts
    monkeypatch.setattr(embed_module, "rank_and_world", lambda: (0, 4))
    with pytest.raises(ValueError, match=r"--nproc_per_node: 4 processes for the 3 shards of"):
        embed_survey(trained, shards, tmp_path / "z.h5", progress=False)
    with pytest.raises(ValueError, match=r"4 processes for the 1 shard of .*whole.h5; start at"):
        embed_survey(trained, survey_parts[0], tmp_path / "z.h5", progress=False)


def test_data_that_is_not_a_store_is_refused(survey_parts, tmp_path):
    with pytest.raises(ValueError, match=r"data: a cutout store or a sharded store"):
        embed_survey(survey_parts[3], tmp_path / "cutouts", tmp_path / "z.h5", progress=False)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args, nproc=1, extra=()):
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", *extra,
            "-m", "astrounsup", *args]  # fmt: skip


def test_torchrun_two_processes_give_the_one_process_latents(survey_parts, tmp_path):
    whole, shards, checkpoint, trained = survey_parts
    cmd = _torchrun("embed", "--checkpoint", str(checkpoint), "--data", str(shards), "--out",
                    str(tmp_path / "z.h5"), "--quiet", nproc=2,
                    extra=("--standalone",))  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count(f"wrote {tmp_path / 'z.h5'}") == 1  # rank 0 only
    z, table = embed_latents(trained, whole, progress=False)
    z2, table2, _ = read_latents(tmp_path / "z.h5")
    np.testing.assert_allclose(z2, z, rtol=0, atol=1e-6)
    assert list(table2["object_id"]) == list(table["object_id"])


@pytest.mark.slow  # 4 launchers; torchrun in one node stays in the default run
def test_two_nodes_on_localhost_train_and_embed(survey_parts, tmp_path):
    """Two torchrun launchers, one process each, meeting by c10d rendezvous on 127.0.0.1."""
    _, shards, _, _ = survey_parts
    config = tmp_path / "tiny.toml"
    config.write_text("[model]\nlatent_dim = 6\nwidths = [8, 16]\n\n[training]\nbatch_size = 8\n")
    jobs = {
        "train": ("train", "--data", str(shards), "--model", "cae", "--config", str(config),
                  "--steps", "2", "--out", str(tmp_path / "run"), "--quiet"),
        "embed": ("embed", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--data",
                  str(shards), "--out", str(tmp_path / "set"), "--quiet"),
    }  # fmt: skip
    for name, args in jobs.items():
        port = _free_port()
        launchers = [
            subprocess.Popen(
                _torchrun(
                    *args,
                    extra=(
                        "--nnodes=2",
                        f"--node_rank={node}",
                        "--rdzv_backend=c10d",
                        f"--rdzv_endpoint=127.0.0.1:{port}",
                        f"--rdzv_id={name}",
                    ),
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for node in (0, 1)
        ]
        results = [p.communicate(timeout=240) for p in launchers]
        for p, (_, err) in zip(launchers, results, strict=True):
            assert p.returncode == 0, f"{name}: {err[-3000:]}"
    z, table, _ = read_latents(tmp_path / "set")
    assert z.shape == (60, 6)
    assert len(set(table["object_id"])) == 60
