"""The steps of astrounsup.pipeline: each the library calls it composes, on its config."""

import numpy as np
import pytest
from astropy.table import QTable

from astrounsup.catalog import grades_table
from astrounsup.io import as_dataset
from astrounsup.latent import (
    AnomalyScorer,
    ClusterLabeler,
    LabelScorer,
    LatentClusterer,
    Reducer,
    choose_k,
    combine_ranks,
    descending_rank,
)
from astrounsup.pipeline import (
    CLUSTER_DEFAULTS,
    check_labels,
    check_outputs,
    cluster_latents,
    cluster_outputs,
    find_main_sequence,
    find_similar,
    make_stars,
    make_survey,
    open_or_ingest,
    reduce_features,
    score_anomalies,
    train_model,
)
from astrounsup.simulate import simulate_lens_survey


def blobs(seed=0):
    """Three latent groups; the second is the lens group, half of whose labels are known."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 5.0, (3, 16))
    z = np.concatenate([rng.normal(c, 0.3, (40, 16)) for c in centres])
    table = QTable({"object_id": [f"o{i}" for i in range(120)]})
    table["is_lens"] = np.repeat([False, True, False], 40)
    table["ra"] = np.linspace(10, 11, 120)
    return z, table


class TestClusterLatents:
    def test_the_recipe_is_the_library_calls(self):
        z, table = blobs()
        config = {"k": 3, "reduce": "pca", "n_components": 2, "labels_column": "is_lens",
                  "labeled_fraction": 0.5, "seed": 4}  # fmt: skip
        result = cluster_latents(z, table, config, inputs={"latents": "z.h5"})
        cat = result.tables["clusters"]
        features = Reducer("pca", n_components=2, standardize=False, random_state=4)
        labels = LatentClusterer(n_clusters=3, random_state=4).fit(features.fit_transform(z))
        np.testing.assert_array_equal(cat["cluster"], labels.labels_)
        labeled = np.asarray(cat["labeled"])
        expected = np.random.default_rng(4).random(120) < 0.5
        np.testing.assert_array_equal(labeled, expected)
        lab = ClusterLabeler().fit(labels.labels_, np.asarray(table["is_lens"]), labeled=labeled)
        np.testing.assert_allclose(
            cat["lens_cluster_fraction"], lab.positive_score(labels.labels_)
        )
        scorer = LabelScorer(random_state=4).fit(
            features.fit_transform(z), np.asarray(table["is_lens"]), labeled=labeled,
            clusters=labels.labels_,
        )  # fmt: skip
        np.testing.assert_allclose(cat["lens_score"], scorer.probability_)
        np.testing.assert_array_equal(cat["lens_rank"], descending_rank(scorer.scores_))
        assert len(np.unique(cat["lens_rank"])) == len(cat)
        metrics = result.summary["metrics"]
        assert metrics["accuracy"] == 1.0
        assert metrics["evaluated_on"] == "held-out known labels"
        assert cat.meta["n_components"] == 2
        assert cat.meta["latents"] == "z.h5"
        assert list(result.tables) == ["cluster_summary", "clusters"]
        assert "latent_map" in result.figures

    def test_cutouts_flagged_for_bad_pixels_are_no_candidates_and_rank_last(self):
        z, table = blobs()
        cfg = {"k": 3, "labels_column": "is_lens", "labeled_fraction": 0.5}
        plain = cluster_latents(z, table, cfg).tables["clusters"]
        flagged = np.zeros(120, bool)
        flagged[[41, 45, 50]] = True  # in the lens group
        table["bad_pixel_flag"] = flagged
        cat = cluster_latents(z, table, cfg).tables["clusters"]
        assert not np.asarray(cat["lens_candidate"])[flagged].any()
        assert sorted(cat["lens_rank"][flagged]) == [118, 119, 120]
        # The others keep their order.
        good = ~flagged
        assert np.all(np.argsort(cat["lens_rank"][good]) == np.argsort(plain["lens_rank"][good]))

    def test_the_map_marks_the_clusters_named_lenses(self):
        z, table = blobs()
        cfg = {"k": 3, "labels_column": "is_lens", "labeled_fraction": 0.5}
        result = cluster_latents(z, table, cfg)
        cat = result.tables["clusters"]
        lens_cluster = int(np.bincount(cat["cluster"][cat["is_lens"]]).argmax())
        ax = result.figures["latent_map"].axes[0]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == [f"{c} (40)" + (" named lens" if c == lens_cluster else "")
                          for c in range(3)]  # fmt: skip
        assert ax.get_xlabel() == "latent PC 1 [arbitrary units]"
        plain = cluster_latents(z, table, {"k": 3}).figures["latent_map"].axes[0]
        assert "named" not in " ".join(t.get_text() for t in plain.get_legend().get_texts())

    def test_choose_k_on_the_reduced_features(self):
        z, table = blobs()
        result = cluster_latents(z, table, {"k": 3, "reduce": "pca", "choose_k": "2:5"})
        ksel = result.tables["k_selection"]
        assert ksel["k"].tolist() == [2, 3, 4, 5]
        features = Reducer("pca", n_components=12, standardize=False, random_state=0)
        ref = choose_k(features.fit_transform(z), range(2, 6), random_state=0)
        np.testing.assert_allclose(ksel["inertia"], ref["inertia"])
        assert result.summary["k_silhouette"] == ref.meta["k_silhouette"]
        assert cluster_outputs({"choose_k": (2, 5)}) == ["k_selection", "clusters"]

    def test_pca_keeps_twelve_components_by_default(self):
        z = np.random.default_rng(0).normal(size=(100, 20))
        result = cluster_latents(z, QTable({"object_id": np.arange(100)}), {"reduce": "pca"})
        assert result.tables["clusters"].meta["n_components"] == 12

    @pytest.mark.parametrize(
        ("config", "match"),
        [
            ({"kk": 3}, r"cluster: unknown settings \['kk'\]; allowed"),
            ({"labels_column": "is_quasar"}, r"z\.h5: no column 'is_quasar'"),
            ({"labeled_fraction": 0.2}, "labeled_fraction needs labels_column"),
            ({"choose_k": "2-5"}, "choose_k must be LO:HI"),
            ({"labels_column": "is_lens", "positive": "lens"}, "positive label"),
            ({"threshold": -3}, r"cluster: threshold must be a finite number in \[0.0, 1.0\]"),
        ],
    )
    def test_bad_settings(self, config, match):
        z, table = blobs()
        with pytest.raises(ValueError, match=match):
            cluster_latents(z, table, config, inputs={"latents": "z.h5"})

    def test_defaults_are_not_changed_by_a_run(self):
        before = dict(CLUSTER_DEFAULTS)
        z, table = blobs()
        cluster_latents(z, table, {"k": 3, "reduce": "pca"})
        assert before == CLUSTER_DEFAULTS


def _tail(scores):
    """Reference tail scaling: 0 at the median, 1 at the 99th percentile."""
    median = np.median(scores)
    return (scores - median) / (np.quantile(scores, 0.99) - median)


class TestScoreAnomalies:
    def test_ranks_the_combined_latent_scorers(self):
        z, table = blobs()
        z[5] += 30.0
        result = score_anomalies(z, table, {"methods": ["lof", "knn"], "n_neighbors": 10,
                                            "detectors": []})  # fmt: skip
        cat = result.tables["anomalies"]
        each = {m: AnomalyScorer(m, n_neighbors=10, random_state=0).fit_score(z)
                for m in ("lof", "knn")}  # fmt: skip
        expected = np.max([_tail(v) for v in each.values()], 0)  # the default: tail
        order = np.argsort(descending_rank(expected))
        np.testing.assert_array_equal(cat["object_id"], table["object_id"][order])
        np.testing.assert_allclose(cat["anomaly_score"], expected[order])
        assert cat["object_id"][0] == "o5"
        assert list(cat["anomaly_rank"]) == list(range(1, 121))
        assert cat.meta["scorers"] == "lof,knn"
        best = np.asarray(["lof", "knn"])[np.argmax([_tail(v) for v in each.values()], 0)]
        np.testing.assert_array_equal(cat["top_scorer"], best[order])
        by_rank = score_anomalies(z, table, {"methods": ["lof", "knn"], "n_neighbors": 10,
                                             "detectors": [], "combine": "max"})  # fmt: skip
        np.testing.assert_allclose(
            np.sort(by_rank.tables["anomalies"]["anomaly_score"]),
            np.sort(combine_ranks(each, how="max")),
        )

    def test_detectors_find_a_trail_and_a_hit(self):
        # A survey with no anomalies of its own: the planted two are the only ones.
        survey = simulate_lens_survey(60, seed=3, anomaly_fraction=0.0, progress=False)
        images = survey.images.copy()
        table = survey.table
        yy, xx = np.mgrid[: images.shape[-2], : images.shape[-1]]
        sigma = np.nanstd(images[:, :, :4, :4], axis=(2, 3))  # rough sky noise per band
        images[7, 1] += 10 * sigma[7, 1] * np.exp(-0.5 * ((xx - 0.4 * yy - 20) / 1.2) ** 2)
        images[21, 0, 12, 40] += 200 * sigma[21, 0]  # a one-pixel hit in g
        data = as_dataset(images, table=table, bands=survey.bands,
                          pixel_scale=survey.pixel_scale)  # fmt: skip
        z = np.random.default_rng(0).normal(size=(len(table), 4))
        result = score_anomalies(z, table, {"methods": [], "gallery": 0}, data=data)
        cat = result.tables["anomalies"]
        assert result.summary["scorers"] == ["trail", "sharp", "ghost", "ring"]
        assert {f"score_{d}_{b}" for d in ("trail", "sharp") for b in "gri"} <= set(cat.colnames)
        row = {i: k for k, i in enumerate(cat["object_id"])}
        trail, hit = (row[table["object_id"][i]] for i in (7, 21))
        assert cat["anomaly_rank"][[trail, hit]].tolist() in ([1, 2], [2, 1])
        assert cat["top_scorer"][[trail, hit]].tolist() == ["trail", "sharp"]
        assert cat["score_trail_r"][trail] > cat["score_trail_g"][trail]
        assert cat.meta["detectors"] == "trail,sharp,ghost,ring"

    def test_coverage_gaps_are_scored_by_the_detectors_alone(self, tmp_path):
        from astrounsup.io import write_store

        survey = simulate_lens_survey(60, seed=3, anomaly_fraction=0.0, progress=False)
        images = survey.images.copy()
        yy, xx = np.mgrid[: images.shape[-2], : images.shape[-1]]
        sigma = np.nanstd(images[:, :, :4, :4], axis=(2, 3))
        images[7, 1] += 10 * sigma[7, 1] * np.exp(-0.5 * ((xx - 0.4 * yy - 20) / 1.2) ** 2)
        cut = [3, 11, 30, 41]  # stamps at the survey's edge: NaN along a side (5-40%)
        for i, width in zip(cut, (4, 10, 18, 25), strict=True):
            images[i, :, :, :width] = np.nan
        store = tmp_path / "edge.h5"
        write_store(store, images, survey.table, bands=survey.bands,
                    pixel_scale=survey.pixel_scale)  # fmt: skip
        data = as_dataset(store)
        table = data.table
        # Latents in which the cut stamps stand out (they saw the gap filled with sky).
        z = np.random.default_rng(0).normal(size=(len(table), 4))
        z[cut] += 30.0
        result = score_anomalies(z, table, {"methods": ["lof"], "gallery": 0}, data=data)
        cat = result.tables["anomalies"]
        row = {i: k for k, i in enumerate(cat["object_id"])}
        at = [row[table["object_id"][i]] for i in cut]
        assert cat["coverage_gap"][at].all()
        assert cat["coverage_gap"].sum() == len(cut)
        assert result.summary["n_coverage_gaps"] == len(cut)
        assert np.isnan(cat["score_lof"][at]).all()
        assert cat["anomaly_rank"][row[table["object_id"][7]]] == 1  # the trail first
        assert min(cat["anomaly_rank"][at]) > 5
        # The detectors leave the missing pixels out: the cut stamps score as ordinary ones.
        trail = np.arange(len(cat)) == row[table["object_id"][7]]
        others = ~np.asarray(cat["coverage_gap"]) & ~trail
        for name in ("trail", "sharp", "ghost", "ring"):
            assert cat[f"score_{name}"][at].max() <= np.max(cat[f"score_{name}"][others]) + 1.0
        with pytest.raises(ValueError, match="gap_fraction must be"):
            score_anomalies(z, table, {"gap_fraction": 2.0, "detectors": []})

    def test_with_the_reconstruction_of_a_trained_model(self, small_survey):
        images = small_survey.images[:40]
        config = {"recipe": "vae", "steps": 2,
                  "config": {"model": {"latent_dim": 4, "widths": [4, 8]},
                             "training": {"batch_size": 8}}}  # fmt: skip
        vae = train_model(images, config | {"config": config["config"]}, progress=False)
        z = vae.embed(images, progress=False)
        table = small_survey.table[:40]
        context = (np.random.default_rng(0).normal(size=(40, 5)), table)
        result = score_anomalies(
            z, table, {"methods": ["lof"], "recon": True, "context_neighbors": 5,
                       "n_neighbors": 5, "gallery": 4, "detectors": []},
            model=vae, data=images, context=context,
        )  # fmt: skip
        cat = result.tables["anomalies"]
        per_band = {f"score_chi2_{b}" for b in vae.bands}
        assert {"score_chi2", "score_chi2_context", "score_context_lof"} | per_band <= set(
            cat.colnames
        )
        assert result.summary["scorers"][:2] == ["lof", "line"]  # the trail score as it is
        assert "chi2" not in result.summary["scorers"]  # shown, not combined
        assert not per_band & {f"score_{k}" for k in result.summary["scorers"]}
        assert "anomalies" in result.figures

    def test_grades_rank_again(self):
        z, table = blobs()
        z[[5, 50]] += 30.0
        config = {"methods": ["lof", "knn"], "n_neighbors": 10, "detectors": []}
        grades = grades_table(["o5", "o50", "o7"], ["not", "anomaly", "anomaly"],
                              kind="anomaly", time="2026-12-06T06:00:00")  # fmt: skip
        cat = score_anomalies(z, table, config, grades=grades).tables["anomalies"]
        assert set(cat["object_id"][:2]) == {"o50", "o7"}  # graded anomalies first
        assert cat["object_id"][-1] == "o5"  # graded "not" after every ungraded
        row = dict(zip(cat["object_id"], cat["anomaly_grade"], strict=True))
        assert (row["o5"], row["o50"], row["o1"]) == ("not", "anomaly", "")
        other = grades_table(["x9"], ["not"], kind="anomaly", time="2026-12-06T06:00:00")
        with pytest.raises(ValueError, match="x9"):
            score_anomalies(z, table, config, grades=other)

    @pytest.mark.parametrize(
        ("config", "kwargs", "match"),
        [
            ({"methods": ["ocsvm"]}, {}, r"unknown scorers \['ocsvm'\]"),
            ({"detectors": ["blob"]}, {}, r"detectors: unknown detectors \['blob'\]"),
            ({}, {}, r"detectors need the cutouts: give data \(--data\)"),
            ({"methods": [], "detectors": []}, {}, "no scorer"),
            (
                {"recon": True, "detectors": []},
                {},
                "recon needs a model checkpoint and the cutouts",
            ),
            ({"detectors": []}, {"context": np.zeros((120, 2))}, "context needs recon"),
            ({"detectors": [], "combine": "sum"}, {}, r"combine must be one of"),
            (
                {"methods": []},
                {"data": np.zeros((120, 3, 32, 32), np.float32)},
                "detectors need the pixel scale",
            ),
        ],
    )
    def test_bad_settings(self, config, kwargs, match):
        z, table = blobs()
        with pytest.raises(ValueError, match=match):
            score_anomalies(z, table, config, **kwargs)


class TestOtherSteps:
    def test_reduce_features(self):
        z, table = blobs()
        result = reduce_features(z, table, {"method": "pca", "n_components": 3, "seed": 1})
        cat = result.tables["reduced"]
        ref = Reducer("pca", n_components=3, random_state=1).fit_transform(z)
        np.testing.assert_allclose(cat["pca_3"], ref[:, 2])
        assert len(result.summary["explained_variance_ratio"]) == 3

    def test_find_similar_by_id_and_by_vector(self):
        z, table = blobs()
        by_id = find_similar(z, table, {"k": 3}, ids=["o0"]).tables["neighbors"]
        assert "o0" not in list(by_id["neighbor_id"])
        assert "ra" in by_id.colnames
        by_vector = find_similar(z, table, {"k": 1}, vectors=z[7:8], names=["new"])
        assert by_vector.tables["neighbors"]["neighbor_id"][0] == "o7"
        with pytest.raises(ValueError, match=r"z\.h5: ids not in the index: \['nope'\]"):
            find_similar(z, table, ids=["nope"], inputs={"latents": "z.h5"})
        with pytest.raises(ValueError, match="give query ids or query vectors"):
            find_similar(z, table)

    def test_find_similar_with_faiss_gives_the_same_neighbours(self):
        pytest.importorskip("faiss", reason="faiss (the scale extra) is not installed")
        z, table = blobs()
        ids = [str(i) for i in table["object_id"][:5]]
        ref = find_similar(z, table, {"k": 4}, ids=ids).tables["neighbors"]
        fast = find_similar(z, table, {"k": 4, "backend": "faiss"}, ids=ids).tables["neighbors"]
        assert list(fast["neighbor_id"]) == list(ref["neighbor_id"])
        np.testing.assert_allclose(fast["distance"], ref["distance"], rtol=1e-5)

    def test_make_survey_and_stars(self, tmp_path):
        survey, paths = make_survey(
            {"n": 6, "seed": 2, "fits": False}, tmp_path / "s", progress=False
        )
        assert sorted(paths) == ["montage", "store", "truth"]
        assert len(survey.table) == 6
        stars, paths = make_stars({"n": 300, "seed": 1}, tmp_path / "st")
        assert sorted(paths) == ["figure", "table"]
        result = find_main_sequence(stars, {"min_parallax_over_error": 5.0})
        assert sum(result.summary["counts"].values()) == 300
        with pytest.raises(ValueError, match=r"survey: unknown settings \['lenses'\]"):
            make_survey({"lenses": 3}, tmp_path / "x")

    def test_a_survey_lists_its_known_lenses(self, tmp_path):
        cfg = {"n": 12, "seed": 4, "fits": False, "montage": False, "lens_fraction": 0.5,
               "known_lenses": 3}  # fmt: skip
        survey, paths = make_survey(cfg, tmp_path / "s", progress=False)
        lines = paths["known_lenses"].read_text().splitlines()
        assert lines[0].startswith("# 3 of the ")
        known = lines[1:]
        assert len(set(known)) == 3
        truth = dict(zip(survey.table["object_id"].astype(str), survey.table["is_lens"],
                         strict=True))  # fmt: skip
        assert all(truth[i] for i in known)
        # The same seed lists the same lenses; the file is what the cluster step reads.
        _, again = make_survey(cfg, tmp_path / "t", progress=False)
        assert again["known_lenses"].read_text() == paths["known_lenses"].read_text()
        assert check_labels(survey.table, {"known_positives": str(paths["known_lenses"])}) == (
            None, known)  # fmt: skip
        # At most half the lenses are listed, and the header says so.
        _, many = make_survey(cfg | {"known_lenses": 40}, tmp_path / "u", progress=False)
        lines = many["known_lenses"].read_text().splitlines()
        n_lenses = int(survey.table["is_lens"].sum())
        assert len(lines) - 1 == n_lenses // 2
        assert lines[0].endswith("(40 asked for; at most half are listed)")
        with pytest.raises(ValueError, match="the survey holds 0 lenses; at least 2 are needed"):
            make_survey(cfg | {"lens_fraction": 0.0}, tmp_path / "v", progress=False)
        with pytest.raises(ValueError, match="known_lenses must be an integer >= 0; got -1"):
            make_survey(cfg | {"known_lenses": -1}, tmp_path / "u", progress=False)

    def test_open_or_ingest(self, small_survey, tmp_path):
        from astrounsup.io import write_fits_cutouts

        s = small_survey
        write_fits_cutouts(tmp_path / "f", s.images[:5], s.table[:5], bands=s.bands,
                           pixel_scale=s.pixel_scale)  # fmt: skip
        store, report = open_or_ingest(tmp_path / "f", store=tmp_path / "s.h5", progress=False)
        assert report.n_written == 5
        assert open_or_ingest(store) == (store, None)
        with pytest.raises(ValueError, match="name the store to ingest them into"):
            open_or_ingest(tmp_path / "f")
        with pytest.raises(FileNotFoundError, match="no such cutout store"):
            open_or_ingest(tmp_path / "none.h5")
        with pytest.raises(FileNotFoundError, match=r"nothing: no such file or folder"):
            open_or_ingest(tmp_path / "nothing", store=tmp_path / "t.h5")
        (tmp_path / "notes.txt").write_text("not cutouts")
        with pytest.raises(ValueError, match=r"notes.txt: neither a cutout store \(.h5, .hdf5\)"):
            open_or_ingest(tmp_path / "notes.txt", store=tmp_path / "t.h5")
        assert not (tmp_path / "t.h5").exists()

    def test_results_are_written_only_when_asked(self, tmp_path):
        z, table = blobs()
        result = cluster_latents(z, table, {"k": 3})
        assert not (tmp_path / "c").exists()
        paths = result.write(tmp_path / "c")
        assert sorted(p.name for p in paths.values()) == ["clusters.ecsv", "latent_map.png"]
        with pytest.raises(FileExistsError, match=r"clusters\.ecsv exists"):
            check_outputs(tmp_path / "c", ["clusters"])
        result.write(tmp_path / "c", fmt="fits", overwrite=True)
        assert (tmp_path / "c" / "clusters.fits").exists()


class _FullDiskFigure:
    """A figure whose saving fails as on a full disk."""

    def savefig(self, path, **kwargs):
        import errno
        import os

        with open(path, "wb") as fh:
            fh.write(b"\x89PNG")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_a_step_writes_its_outputs_as_one_unit(tmp_path):
    from astrounsup.pipeline import StepResult

    out = tmp_path / "anomalies"
    table = QTable({"object_id": ["a", "b"], "score": [1.0, 2.0]})
    result = StepResult(tables={"anomalies": table}, figures={"map": _FullDiskFigure()})
    with pytest.raises(OSError, match=r"anomalies: no space left to write it"):
        result.write(out)
    assert list(tmp_path.iterdir()) == []  # neither the table nor a temporary folder
    paths = StepResult(tables={"anomalies": table}).write(out)
    assert sorted(p.name for p in out.iterdir()) == ["anomalies.ecsv"]
    assert paths == {"anomalies": out / "anomalies.ecsv"}


@pytest.fixture(scope="module")
def arcs(small_survey, tmp_path_factory):
    from astrounsup.io import write_store
    from astrounsup.pipeline import measure_arc_features

    s = small_survey
    path = tmp_path_factory.mktemp("arcs") / "s.h5"
    images = s.images.copy()
    images[3, :, :40] = np.nan  # most of a cutout missing: flagged
    write_store(path, images, s.table, bands=s.bands, pixel_scale=s.pixel_scale)
    return path, measure_arc_features(path, inputs={"store": path})


class TestArcFeaturesStep:
    def test_the_step_is_the_library_calls(self, small_survey, arcs):
        from astrounsup.features import ArcFeatures, arc_score

        s, (path, result) = small_survey, arcs
        cat = result.tables["arc_features"]
        est = ArcFeatures(bands=list(s.bands), pixel_scale=s.pixel_scale).fit()
        images = np.where(np.isfinite(s.images), s.images, np.nan)
        expected = est.transform(images, psf_fwhm=s.table["psf_fwhm"])
        # The store fills NaN pixels with the local sky; the features count them as sky.
        good = np.isfinite(s.images).all(axis=(1, 2, 3))
        good[3] = False
        np.testing.assert_allclose(cat["arc_features"][good], expected[good], rtol=1e-4,
                                   atol=1e-4)  # fmt: skip
        np.testing.assert_allclose(cat["arc_score"], arc_score(cat["arc_features"],
                                                               est.feature_names_))  # fmt: skip
        assert cat.meta["feature_names"] == est.feature_names_
        assert list(cat["object_id"]) == list(s.table["object_id"])
        flagged = np.asarray(as_dataset(path).table["bad_pixel_flag"], bool)
        assert flagged.tolist() == [k == 3 for k in range(len(cat))]
        assert cat["arc_rank"][3] == len(cat)

    def test_the_clustering_scores_on_latents_and_arc_features(self, small_survey, arcs):
        s, (path, result) = small_survey, arcs
        arc_cat = result.tables["arc_features"]
        table = as_dataset(path).table
        rng = np.random.default_rng(0)
        z = rng.normal(size=(len(s.table), 8))
        cfg = {"k": 3, "labels_column": "is_lens", "labeled_fraction": 0.6, "seed": 1}
        # The arc features' rows in another order: joined by object_id.
        shuffled = arc_cat[rng.permutation(len(arc_cat))]
        cat = cluster_latents(z, table, cfg, arc_features=shuffled).tables["clusters"]
        np.testing.assert_allclose(cat["arc_score"], arc_cat["arc_score"])
        features = np.hstack([np.asarray(cat["cluster_features"]),
                              np.asarray(arc_cat["arc_features"], np.float64)])  # fmt: skip
        scorer = LabelScorer(random_state=1).fit(
            features, np.asarray(s.table["is_lens"]), labeled=np.asarray(cat["labeled"]),
            clusters=np.asarray(cat["cluster"]))  # fmt: skip
        np.testing.assert_allclose(cat["lens_score"], scorer.probability_)
        called = np.asarray(cat["lens_candidate"])
        flagged = np.asarray(cat["bad_pixel_flag"], bool)
        np.testing.assert_array_equal(called, (scorer.probability_ > 0.5) & ~flagged)

    def test_without_labels_the_arc_ranking_is_carried(self, small_survey, arcs):
        s, (_, result) = small_survey, arcs
        z = np.random.default_rng(0).normal(size=(len(s.table), 8))
        cat = cluster_latents(
            z, s.table, {"k": 3}, arc_features=result.tables["arc_features"]
        ).tables["clusters"]
        np.testing.assert_array_equal(cat["arc_rank"], result.tables["arc_features"]["arc_rank"])
        assert "lens_score" not in cat.colnames

    def test_arc_features_of_other_objects_are_refused(self, small_survey, arcs):
        s, (_, result) = small_survey, arcs
        z = np.random.default_rng(0).normal(size=(len(s.table), 4))
        with pytest.raises(ValueError, match=r"1 objects of z.h5 are not in the arc features"):
            cluster_latents(z, s.table, {"k": 2}, inputs={"latents": "z.h5"},
                            arc_features=result.tables["arc_features"][1:])  # fmt: skip
        with pytest.raises(ValueError, match="not an arc-features catalog"):
            cluster_latents(z, s.table, {"k": 2}, arc_features=s.table)


class TestArcFeaturesBands:
    def test_bands_not_known_take_the_last_as_the_reddest_and_say_so(self, small_survey,
                                                                     tmp_path):  # fmt: skip
        from astrounsup.io import write_store
        from astrounsup.pipeline import measure_arc_features

        s = small_survey
        path = tmp_path / "hsc.h5"
        write_store(path, s.images[:6], s.table[:6], bands=["HSC-G", "HSC-R", "HSC-I"],
                    pixel_scale=s.pixel_scale)  # fmt: skip
        result = measure_arc_features(path)
        assert result.summary["note"] == (
            "bands ['HSC-G', 'HSC-R', 'HSC-I'] are not all known to astrounsup.instrument; "
            "the last, 'HSC-I', is taken as the reddest (set [features] red to choose)"
        )
        assert result.tables["arc_features"].meta["red"] == "HSC-I"
        named = measure_arc_features(path, {"red": "HSC-R"})
        assert named.summary["note"] is None
        assert named.tables["arc_features"].meta["red"] == "HSC-R"

    def test_one_band_or_no_pixel_scale_skips_them(self):
        from astrounsup.pipeline import arc_features_skipped

        assert "need two bands" in arc_features_skipped(["r"], 0.2)
        assert "pixel scale is unknown" in arc_features_skipped(["g", "r"], float("nan"))
        assert arc_features_skipped(["g", "y"], 0.168) is None
