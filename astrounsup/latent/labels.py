"""The labels a clustering is named from, and a person's vetted grades folded into them.

Two label regimes: labels of both classes in a catalog column, of which a random share is
used (the rest measure the result), and a list of known positives alone
(positive-unlabeled: every other object counts among the negatives).
"""

from __future__ import annotations

import numpy as np

from astrounsup.latent.evaluate import draw_labeled, known_labels, parse_positive

__all__ = ["LENS_GRADES", "fold_grades", "labels_from_catalog"]

#: The lens grades a person gives a candidate, and what each does to its label: ``lens``
#: makes it a labeled positive, ``not`` a labeled negative, ``unsure`` leaves it as it was.
LENS_GRADES = ("lens", "not", "unsure")


def labels_from_catalog(
    table, *, labels_column=None, known_positive_ids=None, id_column="object_id",
    labeled_fraction=None, seed=0,
):  # fmt: skip
    """The labels of the objects of ``table`` and which of them are used.

    Parameters
    ----------
    table : astropy.table.Table
        One row per object.
    labels_column : str, optional
        Column of labels of both classes (masked or empty where unknown): a random
        ``labeled_fraction`` of the known ones is used.
    known_positive_ids : sequence of str, optional
        Ids (in ``id_column``) of known positives; every object is then labeled, the known
        ones positive and the others unlabeled, counted as negatives.
    id_column : str, optional
    labeled_fraction : float, optional
        Share of the known labels drawn (:func:`astrounsup.latent.draw_labeled`); default
        every one.
    seed : int, optional
        Seeds the draw.

    Returns
    -------
    labels : astropy.table.Column or numpy.ndarray of shape (n,)
        The column's labels, or True for the known positives.
    labeled : numpy.ndarray of shape (n,), bool
        The objects whose labels are used.

    Raises
    ------
    ValueError
        Neither or both regimes, or a column or id column ``table`` lacks.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"object_id": ["a", "b", "c"], "is_lens": [True, False, True]})
    >>> labels, labeled = labels_from_catalog(t, known_positive_ids=["c"])
    >>> labels.tolist(), labeled.tolist()
    ([False, False, True], [False, False, True])
    """
    if (labels_column is None) == (known_positive_ids is None):
        msg = "give one label regime: labels_column or known_positive_ids"
        raise ValueError(msg)
    if labels_column is not None:
        if labels_column not in table.colnames:
            msg = f"labels_column: no column {labels_column!r}; the catalog has {table.colnames}"
            raise ValueError(msg)
        labels = table[labels_column]
        return labels, draw_labeled(known_labels(labels), labeled_fraction, seed=seed)
    if id_column not in table.colnames:
        msg = f"id_column: no column {id_column!r}; the catalog has {table.colnames}"
        raise ValueError(msg)
    ids = np.asarray(table[id_column]).astype(str)
    known = np.isin(ids, [str(v) for v in known_positive_ids])
    return known, known.copy()


def fold_grades(lens_grades, labeled, *, labels=None, positive=None):
    """Fold vetted lens grades into the labels a clustering was named from.

    In the labeled regime (``labels`` given: both classes) a graded object joins the
    labeled ones, positive for ``lens`` and negative for ``not``. In the
    positive-unlabeled regime (no ``labels``: ``labeled`` marks the known positives) a
    ``lens`` joins the known positives and a ``not`` leaves them; every other object stays
    unlabeled, counted among the negatives. ``unsure`` (and no grade) changes nothing.

    Parameters
    ----------
    lens_grades : array_like of str, shape (n,)
        One of :data:`LENS_GRADES` or ``""`` per object.
    labeled : array_like of bool, shape (n,)
        The objects whose labels were used.
    labels : array_like of shape (n,), optional
        The labels of both classes (masked where unknown).
    positive : optional
        The positive label among ``labels`` (:func:`astrounsup.latent.parse_positive`).

    Returns
    -------
    labels : numpy.ma.MaskedArray or numpy.ndarray of shape (n,), bool
        True for positives; masked where unknown (labeled regime).
    labeled : numpy.ndarray of shape (n,), bool

    Examples
    --------
    >>> y, used = fold_grades(["lens", "not", "", "unsure"], [True, True, False, False])
    >>> y.tolist(), used.tolist()
    ([True, False, False, False], [True, False, False, False])
    """
    grades = np.asarray(lens_grades).astype(str)
    labeled = np.asarray(labeled, dtype=bool)
    if grades.shape != labeled.shape:
        msg = f"lens_grades has shape {grades.shape}; labeled {labeled.shape}"
        raise ValueError(msg)
    unknown = sorted(set(grades.tolist()) - {*LENS_GRADES, ""})
    if unknown:
        msg = f"lens_grades: unknown grades {unknown[:3]}; allowed {list(LENS_GRADES)} or ''"
        raise ValueError(msg)
    is_lens, is_not = grades == "lens", grades == "not"
    if labels is None:
        y = (labeled | is_lens) & ~is_not
        return y, y.copy()
    known = known_labels(labels)
    y = np.asarray(labels) == parse_positive(positive, labels)
    y = np.where(is_lens, True, np.where(is_not, False, y))
    known = known | is_lens | is_not
    return np.ma.array(y, mask=~known), labeled | is_lens | is_not
