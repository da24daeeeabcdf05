"""End to end: simulate -> train -> embed -> cluster / anomalies / reduce / similar."""

import re

import numpy as np
import pytest
from astropy.table import QTable

from astrounsup.cli import main
from astrounsup.io import write_fits_cutouts, write_store
from astrounsup.latent import (
    AnomalyScorer,
    ClusterLabeler,
    LatentClusterer,
    Reducer,
    combine_ranks,
    contextual_scores,
    read_latents,
    tail_scaled,
    write_latents,
)
from astrounsup.simulate import simulate_stars


@pytest.fixture(scope="module")
def run(small_survey, tiny_config, tmp_path_factory):
    """A tiny VAE trained on the small survey, and its latents."""
    d = tmp_path_factory.mktemp("science")
    store = write_store(
        d / "s.h5",
        small_survey.images,
        small_survey.table,
        bands=small_survey.bands,
        pixel_scale=small_survey.pixel_scale,
    )
    args = ["train", "--data", str(store), "--model", "vae", "--config", str(tiny_config)]
    assert main([*args, "--out", str(d / "run"), "--steps", "4", "--quiet"]) == 0
    ckpt = d / "run" / "last.pt"
    assert (
        main(["embed", "--checkpoint", str(ckpt), "--data", str(store), "--out", str(d / "z.h5")])
        == 0
    )
    return {"dir": d, "store": store, "checkpoint": ckpt, "latents": d / "z.h5"}


def test_cluster_with_labels_matches_the_library(run, tmp_path, capsys):
    out = tmp_path / "c"
    code = main(
        ["cluster", str(run["latents"]), "--k", "4", "--labels-column", "is_lens",
         "--labeled-fraction", "0.5", "--seed", "3", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    cat = QTable.read(out / "clusters.ecsv")
    summary = QTable.read(out / "cluster_summary.ecsv")
    z, table, _ = read_latents(run["latents"])
    labels = LatentClusterer("kmeans", n_clusters=4, random_state=3).fit(z).labels_
    np.testing.assert_array_equal(cat["cluster"], labels)
    labeled = np.asarray(cat["labeled"])
    assert 0 < labeled.sum() < len(cat)
    lab = ClusterLabeler().fit(labels, np.asarray(table["is_lens"]), labeled=labeled)
    np.testing.assert_allclose(cat["lens_cluster_fraction"], lab.positive_score(labels))
    np.testing.assert_array_equal(sorted(cat["lens_rank"]), np.arange(1, len(cat) + 1))
    assert ((cat["lens_score"] >= 0) & (cat["lens_score"] <= 1)).all()
    assert {"frac_lens", "frac_not_lens", "positive_share"} <= set(summary.colnames)
    assert summary.meta["evaluated_on"] == "held-out known labels"
    assert list(cat["object_id"]) == list(table["object_id"])
    assert cat.meta["step"] == "astrounsup cluster"
    assert (out / "latent_map.png").stat().st_size > 0
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("labels", "positive"),
    [
        ("bool", None),
        ("int", None),  # 0/1, the most common label format in a CSV catalog
        ("int", "1"),
        ("int", "True"),
        ("float", None),
        ("text", "True"),  # "True"/"False" text, as a CSV reader may leave them
        ("kind", "lens"),
    ],
)
def test_cluster_takes_labels_of_any_type(run, tmp_path, capsys, labels, positive):
    z, table, _ = read_latents(run["latents"])
    is_lens = np.asarray(table["is_lens"])
    table["label"] = {
        "bool": is_lens,
        "int": is_lens.astype(int),
        "float": is_lens.astype(float),
        "text": np.where(is_lens, "True", "False"),
        "kind": np.where(is_lens, "lens", np.asarray(table["kind"])),
    }[labels]
    path = write_latents(tmp_path / "z.h5", z, table)
    args = ["cluster", str(path), "--k", "4", "--labels-column", "label", "--seed", "1"]
    args += ["--positive", positive] if positive else []
    assert main([*args, "--out", str(tmp_path / "c")]) == 0, capsys.readouterr().err
    cat = QTable.read(tmp_path / "c" / "clusters.ecsv")
    reference = QTable.read(_bool_clusters(run, tmp_path) / "clusters.ecsv")
    np.testing.assert_allclose(cat["label_score"], reference["lens_score"])
    np.testing.assert_array_equal(cat["label_rank"], reference["lens_rank"])
    np.testing.assert_array_equal(cat["labeled"], reference["labeled"])


def _bool_clusters(run, tmp_path):
    out = tmp_path / "ref"
    args = ["cluster", str(run["latents"]), "--k", "4", "--labels-column", "is_lens"]
    assert main([*args, "--seed", "1", "--out", str(out)]) == 0
    return out


def test_cluster_names_the_labels_when_the_positive_one_is_absent(run, tmp_path, capsys):
    args = ["cluster", str(run["latents"]), "--k", "4", "--labels-column", "kind"]
    assert main([*args, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "the positive label 'True' is not among the labels of column 'kind' [" in err
    assert "'lens'" in err


def test_cluster_refuses_existing_outputs_and_unknown_columns(run, tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["cluster", str(run["latents"]), "--k", "3", "--out", str(out)]) == 0
    assert main(["cluster", str(run["latents"]), "--k", "3", "--out", str(out)]) == 2
    assert "clusters.ecsv exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err
    bad = ["cluster", str(run["latents"]), "--labels-column", "is_quasar", "--out", str(out)]
    assert main([*bad, "--overwrite"]) == 2
    assert "no column 'is_quasar'" in capsys.readouterr().err
    bad = ["cluster", str(run["latents"]), "--labeled-fraction", "0.1", "--out", str(out)]
    assert main([*bad, "--overwrite"]) == 2
    assert "labeled_fraction needs labels_column" in capsys.readouterr().err


def test_cluster_a_umap_embedding(run, tmp_path, capsys):
    out = tmp_path / "u"
    code = main(
        ["cluster", str(run["latents"]), "--k", "3", "--reduce", "umap", "--n-components",
         "3", "--metric", "cosine", "--seed", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    cat = QTable.read(out / "clusters.ecsv")
    z, _, _ = read_latents(run["latents"])
    emb = Reducer(
        "umap", n_components=3, metric="cosine", standardize=False, min_dist=0.0,
        random_state=2,
    ).fit_transform(z)  # fmt: skip
    labels = LatentClusterer("kmeans", n_clusters=3, random_state=2).fit(emb).labels_
    np.testing.assert_array_equal(cat["cluster"], labels)
    assert (cat.meta["reduce"], cat.meta["n_components"], cat.meta["metric"]) == (
        "umap", 3, "cosine",
    )  # fmt: skip
    bad = ["cluster", str(run["latents"]), "--metric", "cosine", "--out", str(tmp_path / "x")]
    assert main(bad) == 2
    assert "metric and fit_size choose how the latents are reduced" in capsys.readouterr().err
    bad = ["cluster", str(run["latents"]), "--reduce", "pca", "--metric", "cosine"]
    assert main([*bad, "--out", str(tmp_path / "y")]) == 2
    assert "PCA is Euclidean" in capsys.readouterr().err


def test_mixture_clusters_with_fits_output(run, tmp_path):
    out = tmp_path / "b"
    args = ["cluster", str(run["latents"]), "--method", "bayes-gmm", "--k", "5"]
    assert main([*args, "--labels-column", "is_lens", "--format", "fits", "--out", str(out)]) == 0
    cat = QTable.read(out / "clusters.fits")
    assert np.all((cat["cluster_probability"] > 0) & (cat["cluster_probability"] <= 1))


def test_anomalies_with_reconstruction(run, tmp_path):
    out = tmp_path / "a"
    assert (
        main(
            ["anomalies", str(run["latents"]), "--recon", "--n-neighbors", "5", "--out", str(out)]
        )
        == 0
    )
    cat = QTable.read(out / "anomalies.ecsv")
    assert list(cat["anomaly_rank"]) == list(range(1, len(cat) + 1))
    assert np.all(np.diff(cat["anomaly_score"]) <= 0)
    names = ("iforest", "lof", "knn", "trail", "sharp", "ghost", "ring", "chi2", "chi2_max",
             "chi2_extended", "elbo", "line")  # fmt: skip
    shown = ("chi2_g", "chi2_r", "chi2_i", "trail_g", "sharp_i")
    for name in (*names, *shown):
        assert f"score_{name}" in cat.colnames
    # Default combination: the largest of the scores, each scaled to 1 at its own 99th
    # percentile (the per-band scores are shown, not combined; the trail score is).
    scaled = {n: tail_scaled(np.asarray(cat[f"score_{n}"])) for n in names}
    np.testing.assert_allclose(cat["anomaly_score"], np.max(list(scaled.values()), 0))
    assert cat.meta["combine"] == "tail"
    assert cat.meta["scorers"] == ",".join(names)
    assert cat.meta["detectors"] == "trail,sharp,ghost,ring"
    assert (out / "anomalies.png").exists()


@pytest.fixture(scope="module")
def context(run):
    """A 20-d second embedding of the same objects (a stand-in for SimCLR latents)."""
    z, table, _ = read_latents(run["latents"])
    ctx = np.random.default_rng(4).normal(size=(len(z), 20))
    ctx[:, :6] += 3 * z  # shares the VAE's structure, plus dimensions of its own
    path = run["dir"] / "context.h5"
    write_latents(path, ctx, table)
    return path, ctx


def test_anomalies_relative_to_a_context_embedding(run, context, tmp_path):
    out = tmp_path / "a"
    args = [
        "anomalies",
        str(run["latents"]),
        "--recon",
        "--methods",
        "lof",
        "--n-neighbors",
        "5",
        "--detectors",
        "none",
        "--combine",
        "max",
    ]
    code = main(
        [*args, "--context", str(context[0]), "--context-neighbors", "7",
         "--context-components", "4", "--seed", "3", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    cat = QTable.read(out / "anomalies.ecsv")
    _, table, _ = read_latents(run["latents"])
    row = {i: k for k, i in enumerate(table["object_id"])}
    cat = cat[np.argsort([row[i] for i in cat["object_id"]])]  # back to the store's order
    near = Reducer("pca", n_components=4, standardize=False, random_state=3)
    ctx = near.fit_transform(context[1])
    names = ("chi2", "chi2_max", "chi2_extended", "elbo")
    for name in names:
        raw = np.asarray(cat[f"score_{name}"])
        expected = contextual_scores(raw, ctx, n_neighbors=7, log=name != "elbo")
        np.testing.assert_allclose(cat[f"score_{name}_context"], expected, rtol=1e-6)
    # LOF in the joint space of the context components and the log reconstruction errors.
    errors = np.log([np.asarray(cat[f"score_{n}"]) for n in names[:3]]).T
    joint = AnomalyScorer("lof", n_neighbors=7).fit_score(np.hstack([ctx, errors]))
    np.testing.assert_allclose(cat["score_context_lof"], joint, rtol=1e-6)
    # The context versions, not the raw scores, are combined with the latent scorers;
    # the trail score as it is.
    picked = {n: cat[f"score_{n}_context"] for n in names} | {"lof": cat["score_lof"]}
    picked |= {"context_lof": cat["score_context_lof"], "line": cat["score_line"]}
    np.testing.assert_allclose(cat["anomaly_score"], combine_ranks(picked, how="max"))
    assert (
        cat.meta["scorers"]
        == "lof,line,chi2_context,chi2_max_context,chi2_extended_context,elbo_context,"
        "context_lof"
    )
    assert (cat.meta["context_neighbors"], cat.meta["context_components"]) == (7, 4)


def test_anomalies_join_the_context_by_id_and_refuse_other_objects(run, context, tmp_path, capsys):
    args = ["anomalies", str(run["latents"]), "--recon", "--out", str(tmp_path / "x")]
    _, table, _ = read_latents(run["latents"])
    fewer = tmp_path / "fewer.h5"
    write_latents(fewer, context[1][:-1], table[:-1])
    assert main([*args, "--context", str(fewer)]) == 2
    err = capsys.readouterr().err
    assert f"1 objects of {run['latents']} are not in context {fewer}, e.g. " in err
    # The same objects in another order are joined by object_id.
    shuffled = tmp_path / "shuffled.h5"
    write_latents(shuffled, context[1][::-1], table[::-1])
    scores = []
    for name, ctx in (("same", context[0]), ("shuffled", shuffled)):
        argv = ["anomalies", str(run["latents"]), "--recon", "--gallery", "0", "--context",
                str(ctx), "--quiet", "--out", str(tmp_path / name)]  # fmt: skip
        assert main(argv) == 0
        scores.append(QTable.read(tmp_path / name / "anomalies.ecsv"))
    assert list(scores[0]["object_id"]) == list(scores[1]["object_id"])
    np.testing.assert_allclose(scores[0]["anomaly_score"], scores[1]["anomaly_score"])
    plain = ["anomalies", str(run["latents"]), "--context", str(context[0])]
    assert main([*plain, "--out", str(tmp_path / "y")]) == 2
    assert "context needs recon" in capsys.readouterr().err
    assert main([*args, "--context", str(context[0]), "--context-components", "-1"]) == 2
    assert "context_components must be an integer >= 0; got -1" in capsys.readouterr().err
    assert main([*args, "--context", str(context[0]), "--context-neighbors", "0"]) == 2
    assert "context_neighbors must be an integer >= 1; got 0" in capsys.readouterr().err
    # Checked also where they would not be used, so a slip never passes unseen.
    assert main([*plain[:2], "--gallery", "-5", "--out", str(tmp_path / "g")]) == 2
    assert "anomalies: gallery must be an integer >= 0; got -5" in capsys.readouterr().err
    assert main([*plain[:2], "--context-neighbors", "-2", "--out", str(tmp_path / "g")]) == 2
    assert "context_neighbors must be an integer >= 1; got -2" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
    assert main([*args, "--context", str(context[0]), "--context-neighbors", "100"]) == 2
    err = capsys.readouterr().err
    assert f"context_neighbors 100 needs more objects than that; {context[0]} has" in err


def test_anomalies_refuse_unknown_scorers(run, tmp_path, capsys):
    args = ["anomalies", str(run["latents"]), "--recon", "--out", str(tmp_path)]
    assert main([*args, "--methods", "lof,svm"]) == 2
    assert "unknown scorers ['svm']" in capsys.readouterr().err


def test_reduce_latents_and_a_table(run, tmp_path):
    assert main(["reduce", str(run["latents"]), "--out", str(tmp_path / "r")]) == 0
    cat = QTable.read(tmp_path / "r" / "reduced.ecsv")
    assert {"pca_1", "pca_2"} <= set(cat.colnames)
    assert "explained_variance_ratio" in cat.meta
    z, _, _ = read_latents(run["latents"])
    t = QTable({f"f{k}": z[:, k] for k in range(z.shape[1])})
    t.write(tmp_path / "feat.ecsv")
    args = ["reduce", str(tmp_path / "feat.ecsv"), "--columns", "f0,f1,f2", "--out"]
    assert main([*args, str(tmp_path / "t")]) == 0
    assert main([*args[:2], "--out", str(tmp_path / "u")]) == 2


def test_reduce_main_sequence(tmp_path, capsys):
    stars = simulate_stars(8000, seed=1)
    stars.write(tmp_path / "stars.ecsv")
    args = ["reduce", str(tmp_path / "stars.ecsv"), "--main-sequence", "--out", str(tmp_path)]
    assert main(args) == 0
    cat = QTable.read(tmp_path / "main_sequence.ecsv")
    use = np.asarray(cat["ms_usable"])
    ms = np.asarray(cat["stage"]) == "main_sequence"
    assert np.mean(np.asarray(cat["ms_membership"])[use & ms] == "main_sequence") > 0.9
    assert (tmp_path / "main_sequence.png").exists()
    assert "main sequence of 8000 stars" in capsys.readouterr().out


def test_similar_by_id_and_by_cutout(run, small_survey, tmp_path):
    first = str(small_survey.table["object_id"][0])
    assert (
        main(
            [
                "similar",
                str(run["latents"]),
                "--id",
                first,
                "--k",
                "3",
                "--out",
                str(tmp_path / "i"),
            ]
        )
        == 0
    )
    t = QTable.read(tmp_path / "i" / "neighbors.ecsv")
    assert len(t) == 3
    assert first not in list(t["neighbor_id"])
    fits_dir = tmp_path / "fits"
    write_fits_cutouts(
        fits_dir, small_survey.images[:1], small_survey.table[:1],
        bands=small_survey.bands, pixel_scale=small_survey.pixel_scale,
    )  # fmt: skip
    cutout = next(fits_dir.glob("*.fits"))
    out = tmp_path / "c"
    assert (
        main(
            [
                "similar",
                str(run["latents"]),
                "--cutout",
                str(cutout),
                "--k",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    t = QTable.read(out / "neighbors.ecsv")
    # The object itself is in the index, at distance ~0 (same pixels, same normalisation).
    assert t["neighbor_id"][0] == first
    assert t["distance"][0] < 1e-3


def test_similar_unknown_id(run, tmp_path, capsys):
    assert main(["similar", str(run["latents"]), "--id", "nope", "--out", str(tmp_path)]) == 2
    assert "ids not in the index: ['nope']" in capsys.readouterr().err


def test_cluster_with_only_known_positives(run, tmp_path, capsys):
    _, table, _ = read_latents(run["latents"])
    lenses = np.asarray(table["object_id"])[np.asarray(table["is_lens"])]
    ids = tmp_path / "known.txt"
    ids.write_text("# known lenses\n" + "\n".join(lenses[:6]) + "\n")
    out = tmp_path / "c"
    args = ["cluster", str(run["latents"]), "--k", "3", "--known-positives", str(ids)]
    assert main([*args, "--out", str(out)]) == 0, capsys.readouterr().err
    assert "6 known positives" in capsys.readouterr().out
    cat = QTable.read(out / "clusters.ecsv")
    assert np.asarray(cat["labeled"]).sum() == 6
    assert set(np.asarray(cat["object_id"])[np.asarray(cat["labeled"])]) == set(lenses[:6])
    assert sorted(cat["lens_rank"]) == list(range(1, len(cat) + 1))
    summary = QTable.read(out / "cluster_summary.ecsv")
    assert summary.meta["regime"] == "positive-unlabeled"


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--known-positives", "nope.txt"], "known_positives: no file 'nope.txt'"),
        (["--known-positives", "IDS", "--labels-column", "is_lens"], "give one of them"),
        (["--known-positives", "IDS", "--id-column", "nope"], "no id column 'nope'"),
        (["--known-positives", "BADIDS"], r"1 of 1 ids are not in .* e\.g\. \['zzz'\]"),
    ],
)
def test_cluster_known_positives_bad_input(run, tmp_path, capsys, extra, match):
    _, table, _ = read_latents(run["latents"])
    (tmp_path / "ids.txt").write_text(str(table["object_id"][0]) + "\n")
    (tmp_path / "bad.txt").write_text("zzz\n")
    extra = [
        {"IDS": str(tmp_path / "ids.txt"), "BADIDS": str(tmp_path / "bad.txt")}.get(a, a)
        for a in extra
    ]
    code = main(["cluster", str(run["latents"]), *extra, "--out", str(tmp_path / "c")])
    assert code != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.search(match, err)


def test_rank_folds_vetted_grades_in(run, tmp_path, capsys):
    _, table, _ = read_latents(run["latents"])
    lenses = np.asarray(table["object_id"])[np.asarray(table["is_lens"])]
    (tmp_path / "known.txt").write_text("\n".join(lenses[:5]) + "\n")
    out = tmp_path / "c"
    args = ["cluster", str(run["latents"]), "--k", "3", "--known-positives",
            str(tmp_path / "known.txt"), "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    grades = tmp_path / "grades.csv"
    grades.write_text(
        "object_id,grade,kind,time\n"
        f"{lenses[5]},lens,lens,2026-12-01T20:00:00.000Z\n"
        f"{lenses[0]},not,lens,2026-12-01T20:00:01.000Z\n"
        f"{table['object_id'][1]},anomaly,anomaly,2026-12-01T20:00:02.000Z\n"
    )
    capsys.readouterr()
    args = ["rank", str(run["latents"]), "--clusters", str(out / "clusters.ecsv"),
            "--vetted", str(grades), "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "lens lens 1, lens not 1, lens unsure 0, anomaly anomaly 1" in printed
    assert "5 known positives with the graded lenses" in printed
    assert "anomaly grades are kept in the catalog" in printed
    ranked = QTable.read(tmp_path / "r" / "clusters.ecsv")
    known = set(np.asarray(ranked["object_id"])[np.asarray(ranked["labeled"])])
    assert known == set(lenses[1:6])
    assert sorted(ranked["lens_rank"]) == list(range(1, len(ranked) + 1))
    assert main(args) == 2  # outputs exist: refused
    assert "exist" in capsys.readouterr().err
    # Grades of another run apply only when told.
    other = tmp_path / "other.csv"
    other.write_text(grades.read_text().replace("time\n", "time,run\n").replace(
        "Z\n", "Z,0123456789abcdef\n"))  # fmt: skip
    args = ["rank", str(run["latents"]), "--clusters", str(out / "clusters.ecsv"),
            "--vetted", str(other), "--out", str(tmp_path / "r2")]  # fmt: skip
    assert main(args) == 2
    assert "--vetted-any-run" in capsys.readouterr().err
    assert main([*args, "--vetted-any-run"]) == 0


@pytest.mark.parametrize(
    ("case", "match"),
    [
        (
            "no-labels",
            r"clusters\.ecsv was clustered without labels: ranking from grades "
            r"alone needs at least 2 graded lenses",
        ),
        ("missing", r"nope\.csv: no such file"),
        ("unknown-id", r"1 graded objects are not in .*clusters\.ecsv, e\.g\. \['zzz'\]"),
        (
            "other-run",
            r"grades\.csv: grades made on another set of objects \(run 0123456789abcdef\) "
            r"than .*clusters\.ecsv \(run [0-9a-f]{16}\); .* --vetted-any-run",
        ),
    ],
)
def test_rank_bad_input_is_one_line(run, tmp_path, capsys, case, match):
    _, table, _ = read_latents(run["latents"])
    labels = ["--labels-column", "is_lens"] if case != "no-labels" else []
    assert main(["cluster", str(run["latents"]), "--k", "3", *labels,
                 "--out", str(tmp_path / "c")]) == 0  # fmt: skip
    grades = tmp_path / "grades.csv"
    who = "zzz" if case == "unknown-id" else table["object_id"][0]
    grades.write_text(f"object_id,grade,kind,time,run\n{who},lens,lens,2026-12-01T20:00:00,"
                      f"{'0123456789abcdef' if case == 'other-run' else ''}\n")  # fmt: skip
    vetted = tmp_path / "nope.csv" if case == "missing" else grades
    capsys.readouterr()
    code = main(["rank", str(run["latents"]), "--clusters", str(tmp_path / "c" / "clusters.ecsv"),
                 "--vetted", str(vetted), "--out", str(tmp_path / "r")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.search(match, err), err
    assert not (tmp_path / "r").exists()


def test_embed_refuses_an_existing_output_unless_overwrite(run, tmp_path, capsys):
    out = tmp_path / "z.h5"
    out.write_bytes(b"earlier latents")
    args = ["embed", "--checkpoint", str(run["checkpoint"]), "--data", str(run["store"]),
            "--out", str(out)]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"astrounsup embed: error: {out} exists; pass --overwrite to replace it"]
    assert out.read_bytes() == b"earlier latents"
    assert main([*args, "--overwrite"]) == 0
    z, _, _ = read_latents(out)
    np.testing.assert_array_equal(z, read_latents(run["latents"])[0])


def test_features_then_cluster_with_them(run, tmp_path, capsys):
    from astrounsup.pipeline import cluster_latents, measure_arc_features

    feats = tmp_path / "f"
    assert main(["features", str(run["store"]), "--out", str(feats), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\d+ arc features of 60 cutouts; rank 1 by the arc score: \S+", out)
    arcs = QTable.read(feats / "arc_features.ecsv")
    ref = measure_arc_features(run["store"]).tables["arc_features"]
    np.testing.assert_allclose(arcs["arc_features"], ref["arc_features"], rtol=1e-6)
    code = main(["cluster", str(run["latents"]), "--k", "3", "--labels-column", "is_lens",
                 "--labeled-fraction", "0.5", "--arc-features", str(feats / "arc_features.ecsv"),
                 "--out", str(tmp_path / "c")])  # fmt: skip
    assert code == 0
    assert "the named clusters' call accuracy" in capsys.readouterr().out
    cat = QTable.read(tmp_path / "c" / "clusters.ecsv")
    z, table, _ = read_latents(run["latents"])
    lib = cluster_latents(z, table, {"k": 3, "labels_column": "is_lens", "labeled_fraction": 0.5},
                          arc_features=arcs).tables["clusters"]  # fmt: skip
    np.testing.assert_allclose(cat["lens_score"], lib["lens_score"])
    np.testing.assert_array_equal(cat["arc_rank"], arcs["arc_rank"])
    assert main(["features", str(run["store"]), "--out", str(feats)]) == 2
    assert "exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err
