"""Reliability probes: what a careful operator does to a fresh install, and the exit code and
message each must give (full disks, concurrent writers, partial state)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from astrounsup.io import read_store, write_fits_cutouts, write_store

# A command run in-process under growing file-size limits (RLIMIT_FSIZE, with SIGXFSZ
# ignored, so a write past the limit fails with EFBIG as a write on a full disk fails with
# ENOSPC) until it completes, the last time without a limit; prints one JSON line per run:
# the limit, exit status and stderr.
_WORKER = textwrap.dedent(
    """
    import contextlib, io, json, resource, signal, sys, tempfile
    # Their first import writes caches and probes (joblib, tempfile): not what is tested.
    import joblib.parallel, matplotlib.pyplot, sklearn.cluster, torch
    from astrounsup.cli import main
    tempfile.gettempdir()

    argv, limits = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    for limit in limits + [None]:
        soft = hard if limit is None else limit
        err = io.StringIO()
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                rc = main(argv)
        except BaseException as exc:  # anything escaping main is a failure of the probe
            rc = f"escaped: {type(exc).__name__}: {exc}"
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        print(json.dumps({"limit": limit, "rc": rc, "stderr": err.getvalue()}), flush=True)
        if rc == 0:  # complete: later runs would (rightly) refuse the existing output
            break
    """
)

#: File-size limits (bytes): before anything is written, inside the first file, and
#: part-way through the larger ones.
LIMITS = [0, 500, 2_000, 30_000, 300_000]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, small_survey, tiny_config):
    """A store, its FITS files, a tiny model and its latents."""
    from astrounsup.pipeline import embed_latents
    from astrounsup.training import train

    root = tmp_path_factory.mktemp("reliability")
    s = small_survey
    write_store(root / "s.h5", s.images, s.table, bands=s.bands, pixel_scale=s.pixel_scale)
    write_fits_cutouts(root / "fits", s.images, s.table, bands=s.bands, pixel_scale=0.263)
    config = {"model": {"latent_dim": 6, "widths": [8, 16]},
              "training": {"max_steps": 2, "batch_size": 8}}  # fmt: skip
    train(root / "s.h5", model="cae", config=config, out_dir=root / "run", progress=False)
    embed_latents(root / "run" / "last.pt", root / "s.h5", out=root / "latents.h5", progress=False)
    (root / "tiny.toml").write_text(tiny_config.read_text())
    (root / "an_id.txt").write_text(str(s.table["object_id"][3]))
    return root


def _command(name, root, out):
    data, lat = str(root / "s.h5"), str(root / "latents.h5")
    return {
        "simulate": ["simulate", "lenses", "--n", "70", "--seed", "1", "--out", out, "--quiet"],
        "ingest": ["ingest", str(root / "fits"), out, "--quiet"],
        "train": ["train", "--data", data, "--model", "cae", "--config", str(root / "tiny.toml"),
                  "--out", out, "--steps", "2", "--quiet"],
        "embed": ["embed", "--checkpoint", str(root / "run" / "last.pt"), "--data", data,
                  "--out", out, "--quiet"],
        "cluster": ["cluster", lat, "--k", "3", "--out", out],
        "reduce": ["reduce", lat, "--method", "pca", "--out", out],
        "anomalies": ["anomalies", lat, "--out", out],
        "similar": ["similar", lat, "--id", (root / "an_id.txt").read_text(), "--k", "5",
                    "--out", out],
    }[name]  # fmt: skip


#: Each command's output, when not a folder named ``result``.
_OUTPUT = {"ingest": "store.h5", "embed": "latents.h5"}


def _partials(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.partial"))


def _writers(default, every):
    """``every`` command, those outside ``default`` marked slow (the default run checks
    one of each kind of writer: a resumable store, an HDF5 file, a catalog folder)."""
    return [n if n in default else pytest.param(n, marks=pytest.mark.slow) for n in every]


@pytest.mark.parametrize(
    "name",
    _writers(("ingest", "embed", "cluster"),
             ("simulate", "ingest", "train", "embed", "cluster", "reduce", "anomalies",
              "similar")),
)  # fmt: skip
def test_a_full_disk_is_one_line_naming_the_file_and_the_rerun_completes(name, workspace):
    out = workspace / f"out-{name}" / _OUTPUT.get(name, "result")
    argv = _command(name, workspace, str(out))
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, json.dumps(argv), json.dumps(LIMITS)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    *failures, last = runs
    assert last["rc"] == 0, last
    assert len(failures) >= 2, runs  # the small limits hit some write
    for r in failures:
        lines = r["stderr"].strip().splitlines()
        assert r["rc"] == 2, r
        assert len(lines) == 1, r
        assert lines[0].startswith(f"astrounsup {name}: error: "), r
        assert "no space left" in lines[0], r
        assert f"out-{name}" in lines[0], r
    assert _partials(workspace) == []
    if name == "ingest":  # resumed after each failure: every object once, the same pixels
        images, table, _ = read_store(out)
        reference, ref_table, _ = read_store(workspace / "s.h5")
        order = np.argsort(np.asarray(table["object_id"]))
        assert list(table["object_id"][order]) == sorted(ref_table["object_id"])
        ref_order = np.argsort(np.asarray(ref_table["object_id"]))
        np.testing.assert_array_equal(images[order], reference[ref_order])


_HOLDER = textwrap.dedent(
    """
    import sys
    from astrounsup._locks import output_lock
    with output_lock(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()
    """
)


@pytest.mark.parametrize("name", ["ingest", "embed", "train", "anomalies"])
def test_a_second_writer_of_the_same_output_is_refused_in_one_line(name, workspace, capsys):
    from astrounsup.cli import main

    out = workspace / f"busy-{name}" / _OUTPUT.get(name, "result")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(_command(name, workspace, str(out))) == 2
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"astrounsup {name}: error: {out}: another process is writing")
    assert not out.exists()


def test_recon_scores_join_the_store_by_object_id_not_by_row(workspace, capsys):
    from astropy.table import QTable

    from astrounsup.cli import main

    images, table, _ = read_store(workspace / "s.h5")
    perm = np.random.default_rng(0).permutation(len(table))
    write_store(workspace / "shuffled.h5", images[perm], QTable(table)[perm],
                bands=("g", "r", "i"), pixel_scale=0.263)  # fmt: skip
    lat = str(workspace / "latents.h5")
    tables = {}
    for store in ("s.h5", "shuffled.h5"):
        out = workspace / f"recon-{store}"
        argv = ["anomalies", lat, "--recon", "--data", str(workspace / store), "--quiet",
                "--gallery", "4", "--out", str(out)]  # fmt: skip
        assert main(argv) == 0, capsys.readouterr().err
        tables[store] = QTable.read(out / "anomalies.ecsv")
    a, b = tables["s.h5"], tables["shuffled.h5"]
    assert list(a["object_id"]) == list(b["object_id"])
    np.testing.assert_allclose(a["score_chi2"], b["score_chi2"], rtol=1e-5)
    # A store lacking some of the latents' objects is refused, naming them.
    write_store(workspace / "fewer.h5", images[:50], QTable(table)[:50],
                bands=("g", "r", "i"), pixel_scale=0.263)  # fmt: skip
    argv = ["anomalies", lat, "--recon", "--data", str(workspace / "fewer.h5"), "--quiet",
            "--out", str(workspace / "recon-fewer")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "10 objects of" in err[0]
    assert "are not in" in err[0]
    assert "fewer.h5" in err[0]


def test_similar_cutout_refuses_a_model_other_than_the_latents_one(workspace, capsys):
    from astrounsup.cli import main
    from astrounsup.training import train

    config = {"model": {"latent_dim": 6, "widths": [8, 16]},
              "training": {"max_steps": 2, "batch_size": 8, "seed": 7}}  # fmt: skip
    other = workspace / "other-run"
    train(workspace / "s.h5", model="cae", config=config, out_dir=other, progress=False)
    cutout = str(sorted((workspace / "fits").glob("*.fits"))[0])
    lat = str(workspace / "latents.h5")
    argv = ["similar", lat, "--cutout", cutout, "--k", "3"]
    assert main([*argv, "--checkpoint", str(other / "last.pt"), "--out", str(other / "q")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{other / 'last.pt'} is not the model that embedded {lat}" in err[0]
    assert main([*argv, "--out", str(other / "q")]) == 0  # the latents' own checkpoint


def test_cutouts_without_good_pixels_are_flagged_and_never_ranked_as_normal(
    workspace, small_survey, capsys
):
    from astropy.table import QTable

    from astrounsup.cli import main
    from astrounsup.pipeline import embed_latents

    s = small_survey
    images = s.images.copy()
    images[:20] = np.nan  # 20 empty cutouts
    images[20, 1] = np.nan  # one band missing
    store = write_store(workspace / "empty.h5", images, s.table, bands=s.bands,
                        pixel_scale=s.pixel_scale)  # fmt: skip
    lat = workspace / "empty-latents.h5"
    embed_latents(workspace / "run" / "last.pt", store, out=lat, progress=False)
    out = workspace / "empty-anomalies"
    assert main(["anomalies", str(lat), "--out", str(out), "--gallery", "0"]) == 0
    assert "21 flagged (bad_pixel_flag or constant): not scored" in capsys.readouterr().out
    cat = QTable.read(out / "anomalies.ecsv")
    flagged = np.asarray(cat["bad_pixel_flag"])
    assert flagged.sum() == 21
    assert list(cat["anomaly_rank"]) == list(range(1, len(cat) + 1))
    assert not flagged[:-21].any()  # listed last
    assert np.isnan(np.asarray(cat["anomaly_score"])[flagged]).all()
    assert set(cat["object_id"][flagged]) == set(s.table["object_id"][:21])


def test_constant_cutouts_are_flagged_ranked_last_and_shown_so(workspace, small_survey, capsys):
    from astropy.table import QTable

    from astrounsup.cli import main
    from astrounsup.pipeline import cluster_latents, embed_latents
    from astrounsup.report import write_report

    s = small_survey
    images = s.images.copy()
    images[:3] = 0.0  # all zero
    images[3, 2] = 7.5  # one saturated band
    store = write_store(workspace / "constant.h5", images, s.table, bands=s.bands,
                        pixel_scale=s.pixel_scale)  # fmt: skip
    lat = workspace / "constant-latents.h5"
    z, table = embed_latents(workspace / "run" / "last.pt", store, out=lat, progress=False)
    assert np.flatnonzero(np.asarray(table["constant"])).tolist() == [0, 1, 2, 3]
    out = workspace / "constant-anomalies"
    assert main(["anomalies", str(lat), "--out", str(out), "--gallery", "0"]) == 0
    assert "4 flagged (bad_pixel_flag or constant): not scored" in capsys.readouterr().out
    cat = QTable.read(out / "anomalies.ecsv")
    assert set(cat["object_id"][-4:]) == set(s.table["object_id"][:4])  # last, not least odd
    assert np.isnan(np.asarray(cat["anomaly_score"])[-4:]).all()
    clusters = cluster_latents(z, table, {"k": 3}).tables["clusters"]
    page = write_report(workspace / "constant-report", store, z, clusters, cat)
    text = page.read_text()
    assert text.count("flag a band of one value (blank?): ranked last") >= 1
    # A cutout with a coverage gap shows its share of bad pixels.
    images[5, :, :, :16] = np.nan  # 25% of each band
    store = write_store(workspace / "gap.h5", images, s.table, bands=s.bands,
                        pixel_scale=s.pixel_scale)  # fmt: skip
    page = write_report(workspace / "gap-report", store, z, clusters, cat,
                        config={"top": len(s.table)})  # fmt: skip
    assert "flag bad pixels (25% of a band)" in page.read_text()


def test_stamps_cut_at_the_survey_edge_are_scored_by_the_detectors_only(
    workspace, small_survey, capsys
):
    from astropy.table import QTable

    from astrounsup.cli import main
    from astrounsup.pipeline import embed_latents

    s = small_survey
    images = s.images.copy()
    images[[2, 9, 17], :, :, :20] = np.nan  # 31% of each band: a survey edge
    store = write_store(workspace / "edge.h5", images, s.table, bands=s.bands,
                        pixel_scale=s.pixel_scale)  # fmt: skip
    lat = workspace / "edge-latents.h5"
    embed_latents(workspace / "run" / "last.pt", store, out=lat, progress=False)
    out = workspace / "edge-anomalies"
    assert main(["anomalies", str(lat), "--data", str(store), "--out", str(out),
                 "--gallery", "0"]) == 0  # fmt: skip
    said = capsys.readouterr().out
    assert "3 with a coverage gap (more than 0.02 of a band without data): scored by the " \
           "detectors only" in said  # fmt: skip
    cat = QTable.read(out / "anomalies.ecsv")
    cut = np.isin(cat["object_id"], s.table["object_id"][[2, 9, 17]])
    assert np.asarray(cat["coverage_gap"])[cut].all()
    assert np.isnan(np.asarray(cat["score_lof"])[cut]).all()
    assert np.isfinite(np.asarray(cat["score_trail"])[cut]).all()


# Runs a command once cleanly, then for each kill point k: kills it (SIGKILL, at the k-th
# commit: a file moved into place or an HDF5 flush) and runs it again; each in a forked
# child, so the probe pays for one start. Prints one JSON line per run.
_KILLER = textwrap.dedent(
    """
    import json, os, signal, sys
    import joblib.parallel, matplotlib.pyplot, sklearn.cluster, torch
    from astrounsup import _h5write
    from astrounsup.cli import main

    argv, slot, outs, points = (json.loads(a) for a in sys.argv[1:5])

    def child(out, kill_at):
        pid = os.fork()
        if pid == 0:
            if kill_at:
                calls = [0]

                def counted(real):
                    def call(*args, **kwargs):
                        calls[0] += 1
                        if calls[0] == kill_at:
                            os.kill(os.getpid(), signal.SIGKILL)
                        return real(*args, **kwargs)
                    return call

                os.replace = counted(os.replace)
                _h5write.GuardedFile.flush = counted(_h5write.GuardedFile.flush)
            args = list(argv)
            args[slot] = out
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os._exit(main(args))
        _, status = os.waitpid(pid, 0)
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    print(json.dumps({"clean": child(outs[0], 0)}), flush=True)
    for k, out in zip(points, outs[1:]):
        killed = child(out, k)
        rerun = child(out, 0) if killed == -signal.SIGKILL else None  # else it completed
        print(json.dumps({"k": k, "killed": killed, "rerun": rerun}), flush=True)
    """
)

#: Kill points: the first, second, third and fifth commit of the run.
KILL_POINTS = [1, 2, 3, 5]


def _same_outputs(a, b):
    """The files under folders or files ``a`` and ``b`` hold the same data (provenance
    dates and run times aside)."""
    from astropy.table import QTable

    from astrounsup.latent import is_latents_file, read_latents

    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()) if a.is_dir() else [""]
    other = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) if b.is_dir() else [""]
    assert files == other
    for rel in files:
        x, y = (a / rel, b / rel) if rel else (a, b)
        if x.suffix == ".ecsv":
            tx, ty = QTable.read(x), QTable.read(y)
            assert tx.colnames == ty.colnames
            for col in tx.colnames:
                np.testing.assert_array_equal(np.asarray(tx[col]), np.asarray(ty[col]))
        elif x.suffix == ".h5" and is_latents_file(x):
            np.testing.assert_array_equal(read_latents(x)[0], read_latents(y)[0])
        elif x.suffix == ".h5":
            (ix, txs, _), (iy, tys, _) = read_store(x), read_store(y)
            np.testing.assert_array_equal(ix, iy)
            assert list(txs["object_id"]) == list(tys["object_id"])
        elif x.name == "history.json":
            hx, hy = json.loads(x.read_text()), json.loads(y.read_text())
            assert hx["loss"] == hy["loss"]


@pytest.mark.parametrize(
    "name",
    _writers(("ingest", "cluster"), ("ingest", "embed", "train", "cluster", "anomalies",
                                      "simulate")),
)  # fmt: skip
def test_a_killed_command_reruns_to_the_outputs_of_an_uninterrupted_run(name, workspace):
    base = workspace / f"kill-{name}"
    out_name = _OUTPUT.get(name, "result")
    outs = [str(base / f"run{k}" / out_name) for k in [0, *KILL_POINTS]]
    argv = _command(name, workspace, outs[0])
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, json.dumps(argv), json.dumps(argv.index(outs[0])),
         json.dumps(outs), json.dumps(KILL_POINTS)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert runs[0] == {"clean": 0}, proc.stderr[-3000:]
    killed = 0
    for run, out in zip(runs[1:], outs[1:], strict=True):
        assert run["killed"] in (-9, 0), run
        killed += run["killed"] == -9
        assert run["rerun"] == (0 if run["killed"] else None), (run, proc.stderr[-3000:])
        _same_outputs(Path(outs[0]), Path(out))
    assert killed >= 2  # most points fall inside the run
    assert _partials(base) == []


# --- The probe table: one row per failure the issue lists, run through the command line. ---


def _damaged_store(root, tmp):
    from tests.io.test_checksums import _data_offset, _flip

    path = tmp / "damaged.h5"
    path.write_bytes((root / "s.h5").read_bytes())
    _flip(path, _data_offset(path, "images", 3) + 64)
    return path


def _damaged_index(root, tmp):
    """The workspace's store with random bytes over the chunk addresses of its first
    extensible-array index block (the ``/images`` chunk index)."""
    from astropy.table import vstack

    # A store of several chunks, so that its chunk index is an index block.
    images, table, meta = read_store(root / "s.h5")[:3]
    k = -(-300 // len(images))
    table = vstack([table] * k)
    table["object_id"] = [f"o{i}" for i in range(len(table))]
    path = write_store(tmp / "index.h5", np.concatenate([images] * k), table,
                       bands=meta["bands"], pixel_scale=meta["pixel_scale"])  # fmt: skip
    data = bytearray(path.read_bytes())
    at = data.find(b"EAIB")
    assert at > 0
    data[at + 14 : at + 14 + 64] = np.random.default_rng(0).bytes(64)
    path.write_bytes(bytes(data))
    return path


def _store_as_float64(name):
    """The workspace's store with its ``/name`` rewritten as float64 by h5py."""

    def make(root, tmp):
        import h5py

        path = _copy(root, tmp, "s.h5")
        with h5py.File(path, "a") as f:
            old = f[name]
            data, attrs, chunks = old[...], dict(old.attrs), old.chunks
            del f[name]
            new = f.create_dataset(name, data=data.astype(np.float64), chunks=chunks,
                                   maxshape=(None, *data.shape[1:]))  # fmt: skip
            new.attrs.update(attrs)
        return path

    return make


def _store_without(what):
    def make(root, tmp):
        import h5py

        path = tmp / "lacking.h5"
        path.write_bytes((root / "s.h5").read_bytes())
        with h5py.File(path, "a") as f:
            if what.startswith("/"):
                del f[what[1:]]
            else:
                del f.attrs[what]
        return path

    return make


def _latents(kind):
    def make(root, tmp):
        from astrounsup.latent import read_latents, write_latents

        z, table, _ = read_latents(root / "latents.h5")
        if kind == "nan":
            z[4, 1] = np.nan
        elif kind == "duplicate":
            table["object_id"][5] = table["object_id"][6]
        path = write_latents(tmp / f"{kind}.h5", z, table)
        if kind == "truncated":
            data = (root / "latents.h5").read_bytes()
            path.write_bytes(data[: len(data) // 2])
        return path

    return make


def _toml(text):
    def make(root, tmp):
        path = tmp / "c.toml"
        path.write_text(text)
        return path

    return make


def _catalog(ra_or_file):
    def make(root, tmp):
        from astropy.table import Table

        files = sorted(p.name for p in (root / "fits").glob("*.fits"))[:4]
        cat = Table({"file": files, "ra": [150.0] * 4, "dec": [2.0] * 4})
        if ra_or_file == "ra":
            cat["ra"] = ["150.0", "150.1", "east", "150.3"]
        else:
            cat["file"][1] = ra_or_file
        cat.write(root / "fits" / "probe.csv", overwrite=True)
        return root / "fits" / "probe.csv"

    return make


def _linked(kind):
    """A source folder holding a link to a folder outside it (``catalog``: a catalog row
    names a file through it; ``folder``: the folder itself is the source, with a link to
    a file outside)."""

    def make(root, tmp):
        from astropy.table import Table

        secret = tmp / "outside"
        secret.mkdir()
        name = sorted(p.name for p in (root / "fits").glob("*.fits"))[0]
        (secret / "secret.fits").write_bytes((root / "fits" / name).read_bytes())
        src = tmp / "src"
        src.mkdir()
        if kind == "folder":
            (src / "secret.fits").symlink_to(secret / "secret.fits")
            return src
        (src / "outdir").symlink_to(secret)
        Table({"file": ["outdir/secret.fits"]}).write(src / "cat.csv")
        return src / "cat.csv"

    return make


def _odd_fits(n_odd):
    """The workspace's FITS folder with ``n_odd`` 65-px cubes sorting first (``"as many"``:
    as many 65-px and as many 66-px ones as there are 64-px ones)."""

    def make(root, tmp):
        import shutil

        from astropy.io import fits

        d = tmp / "mixed"
        shutil.copytree(root / "fits", d)
        n_good = len(list(d.glob("*.fits")))
        header = fits.Header({"BANDS": "g,r,i"})
        sizes = [65, 66] if n_odd == "as many" else [65]
        for size in sizes:
            for k in range(n_good if n_odd == "as many" else n_odd):
                fits.PrimaryHDU(np.ones((3, size, size), np.float32), header=header).writeto(
                    d / f"0_{size}_{k}.fits"
                )
        return d

    return make


def _stamps(side):
    """The workspace's cutouts cut to their central ``side`` px."""

    def make(root, tmp):
        images, table, meta = read_store(root / "s.h5")[:3]
        lo = (images.shape[-1] - side) // 2
        cut = images[..., lo : lo + side, lo : lo + side]
        return write_store(tmp / f"s{side}.h5", cut, table, bands=meta["bands"],
                           pixel_scale=meta["pixel_scale"])  # fmt: skip

    return make


def _simclr_on(side):
    return lambda r, t: [
        "train", "--data", str(_stamps(side)(r, t)), "--model", "simclr", "--config",
        str(_toml("[training]\nbatch_size = 8\nmax_steps = 2\n")(r, t)), "--out",
        str(t / "out"), "--quiet",
    ]  # fmt: skip


class _Pickled:
    """A class a crafted checkpoint pickles an instance of."""


def _pickled_checkpoint(root, tmp):
    """A checkpoint holding a pickled object of a class of its own."""
    path = tmp / "pickled.pt"
    torch.save({"format": "astrounsup.checkpoint", "x": _Pickled()}, path)
    return path


def _one_label_latents(root, tmp):
    """The workspace's latents with every object of one ``kind``."""
    from astrounsup.latent import read_latents, write_latents

    z, table, _ = read_latents(root / "latents.h5")
    table["kind"] = "galaxy"
    return write_latents(tmp / "one-label.h5", z, table)


def _copy(root, tmp, name):
    """A copy of the workspace's ``name`` in ``tmp``."""
    (tmp / name).write_bytes((root / name).read_bytes())
    return tmp / name


def _checkpoint(kind):
    """The workspace's checkpoint damaged or crafted: ``bytes`` (256 random bytes over a
    weight tensor in the file), ``nan-scale`` (a NaN normalisation scale, written with a
    valid checksum), ``huge`` (weights scaled by 1e30, valid checksum)."""

    def make(root, tmp):
        from astrounsup.training import load_checkpoint, save_checkpoint

        src = root / "run" / "last.pt"
        path = tmp / f"{kind}.pt"
        if kind == "bytes":
            state = load_checkpoint(src)
            weight = max(state["model"].values(), key=lambda t: t.numel())
            data = bytearray(src.read_bytes())
            at = data.find(weight.contiguous().numpy().tobytes()[:64])
            assert at > 0
            data[at : at + 256] = np.random.default_rng(0).bytes(256)
            path.write_bytes(bytes(data))
            return path
        state = load_checkpoint(src)
        if kind == "nan-scale":
            norm = dict(state["extra"]["normalization"])
            norm["scale"] = [float("nan")] * len(norm["scale"])
            state["extra"] = dict(state["extra"]) | {"normalization": norm}
        else:
            state["model"] = {k: v * 1e30 if v.is_floating_point() else v
                              for k, v in state["model"].items()}  # fmt: skip
        return save_checkpoint(path, state)

    return make


def _embed_with(checkpoint_maker):
    return lambda r, t: ["embed", "--checkpoint", str(checkpoint_maker(r, t)), "--data",
                         str(r / "s.h5"), "--out", str(t / "out"), "--quiet"]  # fmt: skip


def _crafted_checkpoint(root, tmp):
    from astrounsup.training import load_checkpoint, save_checkpoint

    state = load_checkpoint(root / "run" / "last.pt")
    state["model_config"] = dict(state["model_config"]) | {"bands": 10**9}
    return save_checkpoint(tmp / "crafted.pt", state)


def _train(config_maker, *extra):
    return lambda r, t: [
        "train", "--data", str(r / "s.h5"), "--model", "cae", "--config", str(config_maker(r, t)),
        "--out", str(t / "out"), "--quiet", *extra,
    ]  # fmt: skip


_HAS_CUDA = torch.cuda.is_available()
_TINY = "[model]\nlatent_dim = 6\nwidths = [8, 16]\n[training]\nbatch_size = 8\n"
_T = _toml(_TINY)

#: (issue item, probe, argv from (workspace, tmp), exit status, pattern of the one line).
PROBES = [
    ("5", "a store with a changed byte", lambda r, t: ["embed", "--checkpoint",
     str(r / "run" / "last.pt"), "--data", str(_damaged_store(r, t)), "--out", str(t / "out"),
     "--quiet"], 2, r"damaged\.h5: 1 cutout damaged \(object_id \S+\): pixels differ"),
    ("5", "info --verify of it", lambda r, t: ["info", str(_damaged_store(r, t)), "--verify"],
     1, None),
    ("6", "cluster --choose-k 2:3 --k 0", lambda r, t: ["cluster", str(r / "latents.h5"),
     "--choose-k", "2:3", "--k", "0", "--out", str(t / "out")], 2,
     r"n_clusters must be an integer >= 1; got 0"),
    ("7", "a catalog naming ../", lambda r, t: ["ingest", str(_catalog("../s.h5")(r, t)),
     str(t / "out"), "--quiet"], 2, r"probe\.csv: catalog row 1: file '\.\./s\.h5' is outside"),
    ("8", "a checkpoint claiming 10**9 bands", lambda r, t: ["embed", "--checkpoint",
     str(_crafted_checkpoint(r, t)), "--data", str(r / "s.h5"), "--out", str(t / "out"),
     "--quiet"], 2, r"crafted\.pt: .*1000000000 bands"),
    ("36.1", "a catalog row through a link out of its folder", lambda r, t: [
     "ingest", str(_linked("catalog")(r, t)), str(t / "out"), "--quiet"], 2,
     r"cat\.csv: catalog row 0: file 'outdir/secret\.fits' is outside the source folder"),
    ("36.1", "a folder holding a link to a file outside", lambda r, t: [
     "ingest", str(_linked("folder")(r, t)), str(t / "out"), "--quiet"], 2,
     r"secret\.fits: a link to \S+outside/secret\.fits, outside the source folder"),
    ("36.4", "embed --out the input store --overwrite", lambda r, t: [
     "embed", "--checkpoint", str(r / "run" / "last.pt"), "--data", str(_copy(r, t, "s.h5")),
     "--out", str(t / "s.h5"), "--overwrite", "--quiet"], 2,
     r"s\.h5: the output is the input \(data\); choose another output path"),
    ("36.4", "anomalies --out the latents file", lambda r, t: [
     "anomalies", str(_copy(r, t, "latents.h5")), "--out", str(t / "latents.h5"),
     "--overwrite"], 2, r"latents\.h5: the output is the input \(latents\)"),
    ("36.2", "256 random bytes in a checkpoint's weights", _embed_with(_checkpoint("bytes")), 2,
     r"bytes\.pt: a damaged checkpoint: its contents differ from the checksum"),
    ("36.2", "a NaN normalisation scale", _embed_with(_checkpoint("nan-scale")), 2,
     r"nan-scale\.pt: its normalisation is refused \(normalization scale must be finite"),
    ("36.2", "weights scaled by 1e30", _embed_with(_checkpoint("huge")), 2,
     r"huge\.pt: \d+ cutouts \(rows \[.*\]\) embed to latent values that are not finite "
     r"or exceed 1e\+06"),
    ("36.3", "a 65-px file sorting first", lambda r, t: [
     "ingest", str(_odd_fits(1)(r, t)), str(t / "store.h5"), "--quiet"], 0, None),
    ("36.3", "as many 65-px and 66-px files as 64-px ones", lambda r, t: [
     "ingest", str(_odd_fits("as many")(r, t)), str(t / "out"), "--quiet"], 2,
     r"mixed: the cutouts differ and no kind is a majority \(\d+ with bands g,r,i, shape "),
    ("36.5", "embed a store whose chunk index is damaged", lambda r, t: [
     "embed", "--checkpoint", str(r / "run" / "last.pt"), "--data", str(_damaged_index(r, t)),
     "--out", str(t / "out"), "--quiet"], 2,
     r"index\.h5: a damaged store: its structure cannot be read \(.*\); restore the file"),
    ("36.5", "train on it", lambda r, t: [
     "train", "--data", str(_damaged_index(r, t)), "--model", "cae", "--config",
     str(_T(r, t)), "--out", str(t / "out"), "--quiet"], 2,
     r"index\.h5: a damaged store: its structure cannot be read"),
    ("36.5", "info of it", lambda r, t: ["info", str(_damaged_index(r, t))], 2,
     r"index\.h5: a damaged store: its chunk index cannot be read"),
    ("36.7", "embed a store of float64 images", lambda r, t: [
     "embed", "--checkpoint", str(r / "run" / "last.pt"), "--data",
     str(_store_as_float64("images")(r, t)), "--out", str(t / "out"), "--quiet"], 2,
     r"s\.h5: /images holds float64, not float32: not a store astrounsup wrote"),
    ("36.7", "info --verify of float64 checksums", lambda r, t: [
     "info", str(_store_as_float64("checksums")(r, t)), "--verify"], 2,
     r"s\.h5: /checksums holds float64, not uint64: not a store astrounsup wrote"),
    ("36.12", "cluster --out an existing file", lambda r, t: [
     "cluster", str(r / "latents.h5"), "--out", str(_copy(r, t, "an_id.txt"))], 2,
     r"an_id\.txt: a file; the outputs are written into a folder"),
    ("36.12", "a one-valued label column with --positive", lambda r, t: [
     "cluster", str(_one_label_latents(r, t)), "--labels-column", "kind", "--positive",
     "galaxy", "--out", str(t / "out")], 2,
     r"one-label\.h5: column 'kind' holds one label \('galaxy'\) for every labelled object"),
    ("36.12", "a checkpoint of pickled objects", lambda r, t: [
     "embed", "--checkpoint", str(_pickled_checkpoint(r, t)), "--data", str(r / "s.h5"),
     "--out", str(t / "out"), "--quiet"], 2,
     r"pickled\.pt: holds pickled Python objects, which no astrounsup checkpoint has; "
     r"refused unread"),
    ("36.20", "anomalies --gap-fraction 2", lambda r, t: [
     "anomalies", str(r / "latents.h5"), "--gap-fraction", "2", "--out", str(t / "out")], 2,
     r"anomalies: gap_fraction must be a finite number in \[0\.0, 1\.0\]; got 2\.0"),
    ("36.13", "SimCLR on 32-px stamps", _simclr_on(32), 0, None),
    ("36.13", "SimCLR on 20-px stamps", _simclr_on(20), 2,
     r"model 'simclr': its views of 20-px cutouts are 14 px .* give larger cutouts, fewer "
     r"\[model\] widths, or a recipe without crops"),
    ("9", "--device bogus", _train(_T, "--device", "bogus"), 2,
     r"device must be 'cpu', 'cuda', 'cuda:N' or 'mps'; got 'bogus'"),
    pytest.param("9", "embed --device cuda without CUDA", lambda r, t: ["embed", "--checkpoint",
                 str(r / "run" / "last.pt"), "--data", str(r / "s.h5"), "--out",
                 str(t / "out"), "--device", "cuda", "--quiet"], 2, r"CUDA",
                 marks=pytest.mark.skipif(_HAS_CUDA, reason="CUDA is here")),
    ("9", "lr = 1e30", _train(_toml(_TINY + "lr = 1e30\n")), 2,
     r"c\.toml: config\['training'\]: lr must be a number in \[0, 10\]; got 1e\+30"),
    ("9", 'lr = "fast"', _train(_toml(_TINY + 'lr = "fast"\n')), 2,
     r"c\.toml: config\['training'\]: lr must be a number in \[0, 10\]; got 'fast'"),
    ("9", "a broken TOML", _train(_toml("[model\nlatent_dim = 6\n")), 2,
     r"c\.toml: not a TOML file \(.*line 1"),
    ("9", "[normalization] foo", _train(_toml(_TINY + "[normalization]\nfoo = 1\n")), 2,
     r"c\.toml: config\['normalization'\]: unknown key 'foo'"),
    ("9", "batch_size = true", _train(_toml(_TINY.replace("batch_size = 8", "batch_size = true"))),
     2, r"c\.toml: config\['training'\]: batch_size must be a positive integer; got True"),
    ("9", "checkpoint_every = -3", _train(_toml(_TINY + "checkpoint_every = -3\n")), 2,
     r"c\.toml: config\['training'\]: checkpoint_every must be a positive number of steps "
     r"or none; got -3"),
    ("9", "--resume without a checkpoint", _train(_T, "--resume"), 2,
     r"out/last\.pt: no checkpoint to resume from"),
    ("9", "a store lacking /catalog", lambda r, t: ["info", str(_store_without("/catalog")(r, t))],
     2, r"lacking\.h5: a damaged store: it lacks /catalog"),
    ("9", "a store lacking /images", lambda r, t: ["info", str(_store_without("/images")(r, t))],
     2, r"lacking\.h5: a damaged store: it lacks /images"),
    ("9", "a store lacking bands", lambda r, t: ["info", str(_store_without("bands")(r, t))],
     2, r"lacking\.h5: a damaged store: it lacks the 'bands' attribute"),
    ("9", "truncated latents", lambda r, t: ["cluster", str(_latents("truncated")(r, t)),
     "--out", str(t / "out")], 2, r"truncated\.h5: damaged latents file"),
    ("9", "latents with NaN", lambda r, t: ["anomalies", str(_latents("nan")(r, t)), "--out",
     str(t / "out")], 2, r"nan\.h5: 1 latent vectors are not finite"),
    ("9", "latents with a repeated id", lambda r, t: ["cluster", str(_latents("duplicate")(r, t)),
     "--out", str(t / "out")], 2, r"duplicate\.h5: 1 object ids repeat"),
    ("9", "text in the catalog's ra", lambda r, t: ["ingest", str(_catalog("ra")(r, t)),
     str(t / "out"), "--quiet"], 2, r"probe\.csv: column 'ra' must hold numbers \(degrees\); "
     r"row 2 has 'east'"),
    ("9", "--gallery -5", lambda r, t: ["anomalies", str(r / "latents.h5"), "--gallery", "-5",
     "--out", str(t / "out")], 2, r"gallery must be an integer >= 0; got -5"),
    ("9", "--id-column nope", lambda r, t: ["ingest", str(_catalog("x")(r, t)), str(t / "out"),
     "--id-column", "nope", "--quiet"], 2, r"probe\.csv: catalog has no id column 'nope'"),
    ("9", "embed onto an existing output", lambda r, t: ["embed", "--checkpoint",
     str(r / "run" / "last.pt"), "--data", str(r / "s.h5"), "--out", str(r / "latents.h5"),
     "--quiet"], 2, r"latents\.h5.*exists.*overwrite"),
]  # fmt: skip


def _probe_id(p):
    values = getattr(p, "values", p)
    return f"{values[0]}: {values[1]}"


@pytest.mark.parametrize(
    ("item", "probe", "argv", "status", "pattern"),
    PROBES,
    ids=[_probe_id(p) for p in PROBES],
)
def test_probe(item, probe, argv, status, pattern, workspace, tmp_path, capsys):
    from astrounsup.cli import main

    args = argv(workspace, tmp_path)
    capsys.readouterr()
    assert main(args) == status, capsys.readouterr().err
    err = capsys.readouterr().err
    if status == 2:
        assert err.count("\n") == 1, err  # one line, no traceback
        assert re.search(pattern, err), err
        assert not (tmp_path / "out").exists()  # refused before writing anything
