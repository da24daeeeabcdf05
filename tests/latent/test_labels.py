"""Labels of a clustering and vetted grades folded into them, against plain loops."""

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from astrounsup.latent import LENS_GRADES, fold_grades, labels_from_catalog


def _fold_reference(grades, labeled, labels=None):
    """One object at a time, as a person would apply the grades."""
    out_y, out_used = [], []
    for i, g in enumerate(grades):
        if labels is None:
            y = bool(labeled[i])
            y = True if g == "lens" else False if g == "not" else y
            out_y.append(y)
            out_used.append(y)
        else:
            known = labels[i] is not np.ma.masked
            y = bool(labels[i]) if known else None
            y = True if g == "lens" else False if g == "not" else y
            out_y.append(y)
            out_used.append(bool(labeled[i]) or g in ("lens", "not"))
    return out_y, out_used


class TestFoldGrades:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_positive_unlabeled_against_reference(self, seed):
        rng = np.random.default_rng(seed)
        grades = rng.choice([*LENS_GRADES, ""], 200)
        labeled = rng.random(200) < 0.2
        y, used = fold_grades(grades, labeled)
        ref_y, ref_used = _fold_reference(grades, labeled)
        assert y.tolist() == ref_y
        assert used.tolist() == ref_used

    @pytest.mark.parametrize("seed", [0, 1])
    def test_labeled_against_reference(self, seed):
        rng = np.random.default_rng(seed)
        grades = rng.choice([*LENS_GRADES, ""], 200)
        labels = MaskedColumn(rng.random(200) < 0.3, mask=rng.random(200) < 0.5)
        labeled = ~labels.mask & (rng.random(200) < 0.4)
        y, used = fold_grades(grades, labeled, labels=labels)
        ref_y, ref_used = _fold_reference(grades, labeled, labels)
        assert [None if m else bool(v) for v, m in zip(y.data, y.mask, strict=True)] == ref_y
        assert used.tolist() == ref_used

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match=r"lens_grades: unknown grades \['maybe'\]"):
            fold_grades(["maybe"], [False])
        with pytest.raises(ValueError, match=r"lens_grades has shape \(2,\); labeled \(1,\)"):
            fold_grades(["lens", "not"], [False])


class TestLabelsFromCatalog:
    def test_a_share_of_the_known_labels(self):
        t = Table({"object_id": [f"o{i}" for i in range(1000)],
                   "is_lens": MaskedColumn(np.arange(1000) % 2 == 0,
                                           mask=np.arange(1000) >= 500)})  # fmt: skip
        labels, labeled = labels_from_catalog(t, labels_column="is_lens", labeled_fraction=0.5,
                                              seed=3)  # fmt: skip
        assert labels is t["is_lens"]
        assert not labeled[500:].any()
        assert 200 < labeled[:500].sum() < 300

    def test_known_positives(self):
        t = Table({"object_id": ["a", "b", "c"]})
        labels, labeled = labels_from_catalog(t, known_positive_ids=["c", "a"])
        assert labels.tolist() == [True, False, True] == labeled.tolist()

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({}, "give one label regime"),
            ({"labels_column": "x", "known_positive_ids": ["a"]}, "give one label regime"),
            ({"labels_column": "x"}, r"labels_column: no column 'x'"),
            ({"known_positive_ids": ["a"], "id_column": "id"}, r"id_column: no column 'id'"),
        ],
    )
    def test_bad_inputs(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            labels_from_catalog(Table({"object_id": ["a"]}), **kwargs)
