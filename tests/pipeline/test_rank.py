"""Re-ranking with vetted grades, against the clustering step run with the same labels."""

import numpy as np
import pytest
from astropy.table import Table

from astrounsup.catalog import grades_table
from astrounsup.pipeline import cluster_latents, rerank_candidates

T = "2026-12-01T20:00:00"


@pytest.fixture(scope="module")
def survey():
    """300 objects in 8-d, lenses (10%) offset along two dimensions."""
    rng = np.random.default_rng(4)
    n = 300
    is_lens = rng.random(n) < 0.1
    z = rng.normal(size=(n, 8))
    z[is_lens, :2] += 2.0
    table = Table({"object_id": [f"o{i:03d}" for i in range(n)], "is_lens": is_lens})
    return z, table


BASE = {"k": 4, "reduce": "pca", "n_components": 5, "seed": 2}


def _ids(table, rows):
    return [str(table["object_id"][i]) for i in rows]


class TestRerankCandidates:
    def test_positive_unlabeled_equals_clustering_with_the_graded_lenses_known(self, survey):
        z, table = survey
        lenses = np.flatnonzero(table["is_lens"])
        known = _ids(table, lenses[:8])
        cat = cluster_latents(z, table, BASE | {"known_positives": known}).tables["clusters"]
        graded_lens, graded_not = _ids(table, lenses[8:12]), _ids(table, [0, 1, 2])
        grades = grades_table(graded_lens + graded_not + [known[0]],
                              ["lens"] * 4 + ["not"] * 3 + ["unsure"], time=T)  # fmt: skip
        result = rerank_candidates(z, table, cat, grades)
        out = result.tables["clusters"]
        ref = cluster_latents(z, table, BASE | {"known_positives": known + graded_lens})
        ref = ref.tables["clusters"]
        np.testing.assert_allclose(out["lens_score"], ref["lens_score"])
        np.testing.assert_array_equal(out["lens_rank"], ref["lens_rank"])
        np.testing.assert_array_equal(out["lens_rank_before"], cat["lens_rank"])
        assert int(np.sum(out["labeled"])) == 12
        assert sorted(set(np.asarray(out["lens_grade"]).tolist())) == ["", "lens", "not", "unsure"]
        assert result.summary["n_grades"]["lens lens"] == 4
        assert result.summary["n_grades"]["lens not"] == 3

    def test_cutouts_flagged_for_bad_pixels_stay_last(self, survey):
        z, table = survey
        table = table.copy()
        lenses = np.flatnonzero(table["is_lens"])
        flagged = np.zeros(len(table), bool)
        flagged[lenses[10:13]] = True  # lenses that the score would put near the top
        table["bad_pixel_flag"] = flagged
        known = _ids(table, lenses[:8])
        cat = cluster_latents(z, table, BASE | {"known_positives": known}).tables["clusters"]
        grades = grades_table(_ids(table, lenses[8:10]), ["lens", "lens"], time=T)
        out = rerank_candidates(z, table, cat, grades).tables["clusters"]
        assert not np.asarray(out["lens_candidate"])[flagged].any()
        assert sorted(out["lens_rank"][flagged]) == [298, 299, 300]
        # The others keep the order they have without flags.
        table["bad_pixel_flag"] = False
        cat["bad_pixel_flag"] = False
        plain = rerank_candidates(z, table, cat, grades).tables["clusters"]
        assert np.asarray(plain["lens_candidate"])[flagged].any()  # flags did change it
        np.testing.assert_array_equal(
            np.argsort(out["lens_rank"][~flagged]), np.argsort(plain["lens_rank"][~flagged])
        )

    def test_a_not_removes_a_known_positive(self, survey):
        z, table = survey
        known = _ids(table, np.flatnonzero(table["is_lens"])[:8])
        cat = cluster_latents(z, table, BASE | {"known_positives": known}).tables["clusters"]
        out = rerank_candidates(z, table, cat, grades_table([known[0]], ["not"], time=T))
        ref = cluster_latents(z, table, BASE | {"known_positives": known[1:]})
        np.testing.assert_allclose(out.tables["clusters"]["lens_score"],
                                   ref.tables["clusters"]["lens_score"])  # fmt: skip

    def test_labeled_regime_grades_join_the_labels(self, survey):
        z, table = survey
        cfg = BASE | {"labels_column": "is_lens", "labeled_fraction": 0.3}
        cat = cluster_latents(z, table, cfg).tables["clusters"]
        labeled = np.asarray(cat["labeled"])
        # Grades of the truth on ten unlabeled objects: the same as labelling them.
        rows = np.flatnonzero(~labeled)[:10]
        truth = np.asarray(table["is_lens"])[rows]
        grades = grades_table(_ids(table, rows), np.where(truth, "lens", "not"), time=T)
        result = rerank_candidates(z, table, cat, grades)
        out = result.tables["clusters"]
        assert int(np.sum(out["labeled"])) == labeled.sum() + 10
        assert result.summary["metrics"]["n"] == len(table) - labeled.sum() - 10
        # No lens/not grade: the clustering's own scores again.
        same = rerank_candidates(z, table, cat, grades_table(_ids(table, rows[:1]), ["unsure"],
                                                             time=T))  # fmt: skip
        np.testing.assert_allclose(same.tables["clusters"]["lens_score"], cat["lens_score"])
        np.testing.assert_array_equal(same.tables["clusters"]["lens_rank"], cat["lens_rank"])

    def test_a_grade_against_a_label_replaces_it(self, survey):
        z, table = survey
        cfg = BASE | {"labels_column": "is_lens", "labeled_fraction": 0.3}
        cat = cluster_latents(z, table, cfg).tables["clusters"]
        row = int(np.flatnonzero(np.asarray(cat["labeled"]) & np.asarray(table["is_lens"]))[0])
        out = rerank_candidates(z, table, cat, grades_table(_ids(table, [row]), ["not"], time=T))
        flipped = table.copy()
        flipped["is_lens"][row] = False
        ref = cluster_latents(z, flipped, cfg).tables["clusters"]
        np.testing.assert_allclose(out.tables["clusters"]["lens_score"], ref["lens_score"])

    def test_rows_are_matched_by_id(self, survey):
        z, table = survey
        known = _ids(table, np.flatnonzero(table["is_lens"])[:8])
        cat = cluster_latents(z, table, BASE | {"known_positives": known}).tables["clusters"]
        grades = grades_table(known[:1], ["not"], time=T)
        a = rerank_candidates(z, table, cat, grades).tables["clusters"]
        shuffled = cat[np.random.default_rng(0).permutation(len(cat))]
        b = rerank_candidates(z, table, shuffled, grades).tables["clusters"]
        np.testing.assert_array_equal(a["object_id"], b["object_id"])
        np.testing.assert_allclose(a["lens_score"], b["lens_score"])

    def test_anomaly_grades_are_carried(self, survey):
        z, table = survey
        known = _ids(table, np.flatnonzero(table["is_lens"])[:8])
        cat = cluster_latents(z, table, BASE | {"known_positives": known}).tables["clusters"]
        grades = grades_table(["o005"], ["anomaly"], kind="anomaly", time=T)
        out = rerank_candidates(z, table, cat, grades).tables["clusters"]
        assert out["anomaly_grade"][5] == "anomaly"
        np.testing.assert_allclose(out["lens_score"], cat["lens_score"])

    def test_bad_inputs(self, survey):
        z, table = survey
        plain = cluster_latents(z, table, BASE).tables["clusters"]
        grades = grades_table(["o001"], ["lens"], time=T)
        too_few = (
            r"c.ecsv was clustered without labels: ranking from grades alone needs at "
            r"least 2 graded lenses \(and 2 graded 'not', if any\); got 1 and 0"
        )
        with pytest.raises(ValueError, match=too_few):
            rerank_candidates(z, table, plain, grades, inputs={"clusters": "c.ecsv"})
        with pytest.raises(ValueError, match="not a clustering of this package"):
            rerank_candidates(z, table, Table({"object_id": table["object_id"]}), grades,
                              inputs={"clusters": "c.ecsv"})  # fmt: skip
        known = _ids(table, np.flatnonzero(table["is_lens"])[:8])
        cat = cluster_latents(z, table, BASE | {"known_positives": known}).tables["clusters"]
        with pytest.raises(ValueError, match=r"1 graded objects are not in .* \['zzz'\]"):
            rerank_candidates(z, table, cat, grades_table(["zzz"], ["lens"], time=T))
        with pytest.raises(ValueError, match="other objects than the latents"):
            rerank_candidates(z[:-1], table[:-1], cat, grades)
        no_features = cat.copy()
        no_features.remove_column("cluster_features")
        with pytest.raises(ValueError, match=r"c.ecsv: no cluster_features column"):
            rerank_candidates(z, table, no_features, grades, inputs={"clusters": "c.ecsv"})

    def test_the_saved_features_are_those_clustered_on(self, survey, tmp_path):
        from astrounsup.io import read_catalog
        from astrounsup.latent import LatentClusterer

        z, table = survey
        known = _ids(table, np.flatnonzero(table["is_lens"])[:8])
        result = cluster_latents(z, table, BASE | {"known_positives": known})
        est = LatentClusterer("kmeans", n_clusters=4, reduce="pca", n_components=5,
                              random_state=2).fit(z)  # fmt: skip
        cat = result.tables["clusters"]
        np.testing.assert_array_equal(cat["cluster_features"], est.reducer_.embedding_)
        # Through a file and back, the re-ranking gives the same as in memory.
        path = result.write(tmp_path / "cluster")["clusters"]
        grades = grades_table(_ids(table, [3, 4]), ["lens", "not"], time=T)
        a = rerank_candidates(z, table, cat, grades).tables["clusters"]
        b = rerank_candidates(z, table, read_catalog(path), grades).tables["clusters"]
        np.testing.assert_array_equal(a["lens_score"], b["lens_score"])
        np.testing.assert_array_equal(a["lens_rank"], b["lens_rank"])


class TestGradesAlone:
    """A run without labels: the first grades are the labels."""

    def test_lens_and_not_grades_are_labels_of_both_classes(self, survey):
        z, table = survey
        plain = cluster_latents(z, table, BASE).tables["clusters"]
        lenses, others = np.flatnonzero(table["is_lens"]), np.flatnonzero(~table["is_lens"])
        rows = [*lenses[:6], *others[:6]]
        grades = grades_table(_ids(table, rows), ["lens"] * 6 + ["not"] * 6, time=T)
        out = rerank_candidates(z, table, plain, grades).tables["clusters"]
        truth = np.zeros(len(table), bool)
        truth[lenses[:6]] = True
        graded = np.isin(np.arange(len(table)), rows)
        labels = np.ma.array(truth, mask=~graded)
        ref = cluster_latents(z, Table({"object_id": table["object_id"], "lab": labels}),
                              BASE | {"labels_column": "lab"}).tables["clusters"]  # fmt: skip
        np.testing.assert_allclose(out["lens_score"], ref["lab_score"])
        np.testing.assert_array_equal(out["labeled"], graded)
        assert out.meta["regime"] == "labeled"
        # Ranked by the learnt score: the lenses not graded come first.
        held = ~graded
        top = np.argsort(np.asarray(out["lens_rank"])[held])[:10]
        assert np.asarray(table["is_lens"])[held][top].mean() > 0.5

    def test_lens_grades_alone_are_known_positives(self, survey):
        z, table = survey
        plain = cluster_latents(z, table, BASE).tables["clusters"]
        lenses = np.flatnonzero(table["is_lens"])
        grades = grades_table(_ids(table, lenses[:5]), ["lens"] * 5, time=T)
        out = rerank_candidates(z, table, plain, grades).tables["clusters"]
        ref = cluster_latents(z, table, BASE | {"known_positives": _ids(table, lenses[:5])})
        np.testing.assert_allclose(out["lens_score"], ref.tables["clusters"]["lens_score"])
        assert out.meta["regime"] == "positive-unlabeled"
