import json

import numpy as np
import pytest
from astropy.table import QTable, vstack

from astrounsup.io import write_store
from astrounsup.pipeline import run_lens_search

MODEL = {"recipe": "simclr", "steps": 2,
         "config": {"model": {"latent_dim": 4, "widths": [4, 8]},
                    "training": {"batch_size": 8, "compile": False}}}  # fmt: skip
RECON = {"recon_recipe": "vae", "recon_steps": 2, "methods": ["lof"], "n_neighbors": 5,
         "context_neighbors": 5, "gallery": 0,
         "recon_config": {"model": {"latent_dim": 4, "widths": [4, 8]},
                          "training": {"batch_size": 8, "compile": False}}}  # fmt: skip
STEPS = ["train", "embed", "features", "cluster", "recon_train", "recon_embed", "anomalies",
         "report"]  # fmt: skip


def config(**cluster):
    return {"model": MODEL, "cluster": {"k": 3, **cluster}, "anomalies": RECON}


@pytest.fixture(scope="module")
def store(small_survey, tmp_path_factory):
    path = tmp_path_factory.mktemp("lens_search") / "cutouts.h5"
    s = small_survey
    write_store(path, s.images[:40], s.table[:40], bands=s.bands, pixel_scale=s.pixel_scale)
    return path


def _first_id(store):
    from astrounsup.io import as_dataset

    return str(as_dataset(store).table["object_id"][0])


def run(store, out, cfg, **kw):
    lines = []
    done = run_lens_search(store, out, cfg, progress=False, log=lines.append, **kw)
    return done, lines


class TestReuse:
    def test_a_rerun_reuses_every_unchanged_step_and_redoes_what_changed(self, store, tmp_path):
        out = tmp_path / "run"
        first, _ = run(store, out, config(labels_column="is_lens", labeled_fraction=0.5))
        assert first["reused"] == []
        assert sorted(first["timings"]) == sorted(STEPS)
        manifest = json.loads((out / "manifest.json").read_text())
        assert sorted(manifest["steps"]) == sorted(STEPS)
        clusters = QTable.read(first["cluster"]["clusters"])
        anomalies = (out / "anomalies" / "anomalies.ecsv").read_bytes()
        ranked = list(QTable.read(out / "anomalies" / "anomalies.ecsv")["object_id"])

        again, lines = run(store, out, config(labels_column="is_lens", labeled_fraction=0.5))
        assert again["reused"] == STEPS
        assert any("reused" in line for line in lines)
        np.testing.assert_equal(again["metrics"], first["metrics"])  # NaN too
        assert (out / "anomalies" / "anomalies.ecsv").read_bytes() == anomalies
        np.testing.assert_array_equal(QTable.read(again["cluster"]["clusters"])["cluster"],
                                      clusters["cluster"])  # fmt: skip

        # Another k: only the clustering and the report are redone.
        other, _ = run(store, out, config(labels_column="is_lens", labeled_fraction=0.5, k=2))
        assert other["reused"] == ["train", "embed", "features", "recon_train", "recon_embed",
                                   "anomalies"]  # fmt: skip
        assert set(QTable.read(other["cluster"]["clusters"])["cluster"]) == {0, 1}

        # An output changed on disk: its step is redone.
        (out / "anomalies" / "anomalies.ecsv").write_text("edited")
        edited, _ = run(store, out, config(labels_column="is_lens", labeled_fraction=0.5, k=2))
        assert "anomalies" not in edited["reused"]
        assert "report" not in edited["reused"]
        assert list(QTable.read(out / "anomalies" / "anomalies.ecsv")["object_id"]) == ranked

        fresh, _ = run(store, out, config(labels_column="is_lens", labeled_fraction=0.5, k=2),
                       fresh=True)  # fmt: skip
        assert fresh["reused"] == []

    def test_other_training_steps_redo_everything_after_them(self, store, tmp_path):
        out = tmp_path / "run"
        run(store, out, config())
        done, _ = run(store, out, config(), steps=3)
        assert done["reused"] == ["features"]  # measured on the pixels, not the model

    def test_an_unreadable_manifest_is_named_with_the_way_out(self, store, tmp_path):
        out = tmp_path / "run"
        out.mkdir()
        (out / "manifest.json").write_text("{not json")
        with pytest.raises(ValueError, match=r"manifest.json: unreadable run manifest.*--fresh"):
            run(store, out, config())
        done, _ = run(store, out, config(), fresh=True)
        assert done["reused"] == []


class TestLabelsCheckedBeforeTraining:
    @pytest.mark.parametrize(
        ("cluster", "match"),
        [
            ({"labels_column": "is_grade"}, r"cutouts.h5: no column 'is_grade' in its catalog"),
            ({"labels_column": "kind", "positive": "dragon"},
             r"cutouts.h5: the positive label 'dragon' is not among the labels of column 'kind'"),
            ({"known_positives": ["nobody", "nowhere"]},
             r"known_positives: 2 of 2 ids are not in .*cutouts.h5"),
            ({"labeled_fraction": 0.1}, "labeled_fraction needs labels_column"),
        ],
    )  # fmt: skip
    def test_bad_labels_stop_the_run_before_any_training(self, store, tmp_path, cluster, match):
        out = tmp_path / "run"
        with pytest.raises(ValueError, match=match):
            run(store, out, config(**cluster))
        assert not (out / "run").exists()

    def test_an_empty_file_of_known_lenses_is_refused_naming_it(self, store, tmp_path):
        ids = tmp_path / "known.txt"
        ids.write_text("# none yet\n")
        with pytest.raises(ValueError, match=r"known_positives: '.*known.txt' lists no ids"):
            run(store, tmp_path / "run", config(known_positives=str(ids)))

    def test_no_labels_clusters_without_naming_and_ranks_anomalies(self, store, tmp_path):
        done, _ = run(store, tmp_path / "run", config())
        assert done["metrics"] is None
        clusters = QTable.read(done["cluster"]["clusters"])
        assert "lens_score" not in clusters.colnames
        assert len(QTable.read(done["anomalies"]["anomalies"])) == 40


class TestVetted:
    def test_grades_rerank_and_only_the_steps_after_the_clustering_are_redone(
        self, store, tmp_path
    ):
        from astrounsup.catalog import grades_table
        from astrounsup.pipeline import rerank_candidates

        out = tmp_path / "run"
        cfg = config(labels_column="is_lens", labeled_fraction=0.5)
        first, _ = run(store, out, cfg)
        clusters = QTable.read(first["cluster"]["clusters"])
        top = clusters[np.argsort(clusters["lens_rank"])][:4]
        grades = grades_table(top["object_id"], ["lens", "not", "unsure", "not"],
                              time="2026-12-01T20:00:00")  # fmt: skip
        last = QTable.read(first["anomalies"]["anomalies"])["object_id"][-1]
        odd = grades_table([last], ["anomaly"], kind="anomaly", time="2026-12-01T20:01:00")
        path = tmp_path / "grades.csv"
        vstack([grades, odd]).write(path, format="ascii.csv")
        done, lines = run(store, out, cfg, vetted=path)
        # The anomalies are ranked again from the anomaly grade.
        assert done["reused"] == ["train", "embed", "features", "cluster", "recon_train",
                                  "recon_embed"]  # fmt: skip
        anomalies = QTable.read(done["anomalies"]["anomalies"])
        assert (anomalies["object_id"][0], anomalies["anomaly_grade"][0]) == (last, "anomaly")
        assert any(line.startswith("rank: re-ranked") for line in lines)
        ranked = QTable.read(done["rank"]["clusters"])
        from astrounsup.latent import read_latents

        z, table, _ = read_latents(out / "latents.h5")
        ref = rerank_candidates(z, table, clusters, grades).tables["clusters"]
        np.testing.assert_allclose(ranked["lens_score"], ref["lens_score"])
        assert list(ranked["lens_grade"][np.argsort(ranked["lens_rank_before"])][:4]) == [
            "lens", "not", "unsure", "not"]  # fmt: skip
        assert "re-ranked with the grades" in (out / "report" / "index.html").read_text()
        again, _ = run(store, out, cfg, vetted=path)
        assert "rank" in again["reused"]
        # Without the grades the report follows the clustering again.
        plain, _ = run(store, out, cfg)
        assert "report" not in plain["reused"]
        assert "rank" not in plain

    def test_bad_grades_stop_the_run_before_any_training(self, store, tmp_path):
        path = tmp_path / "grades.csv"
        path.write_text("object_id,grade,kind,time\nnobody,lens,lens,2026-12-01T20:00:00\n")
        out = tmp_path / "run"
        with pytest.raises(ValueError, match=r"1 graded objects are not in .*cutouts.h5"):
            run(store, out, config(labels_column="is_lens"), vetted=path)
        path.write_text("object_id,grade,kind,time\nx,great,lens,2026-12-01T20:00:00\n")
        with pytest.raises(ValueError, match=r"grades.csv row 1 \(x\): grade 'great'"):
            run(store, out, config(labels_column="is_lens"), vetted=path)
        path.write_text("object_id,grade,kind,time\n"
                        f"{_first_id(store)},lens,lens,2026-12-01T20:00:00\n")  # fmt: skip
        with pytest.raises(
            ValueError,
            match=r"this run has no labels and ranking from grades "
            r"alone needs at least 2 graded lenses .*got 1",
        ):
            run(store, out, config(), vetted=path)
        assert not (out / "run").exists()
