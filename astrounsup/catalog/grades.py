"""Grades a person gave objects while vetting a report: read, checked, and turned into labels.

A grades file (CSV or ECSV, as the report's export writes it) has one row per grading act,
with the columns ``object_id``, ``grade``, ``kind`` and ``time`` (ISO 8601, UTC). The kinds
and their grades are :data:`GRADE_KINDS`; when an object was graded more than once for a
kind, its latest grade counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrounsup.catalog.table import id_positions
from astrounsup.io import read_catalog

__all__ = ["GRADE_COLUMNS", "GRADE_KINDS", "grade_labels", "grades_table", "read_grades"]

#: Grading kinds and the grades each allows.
GRADE_KINDS = {"lens": ("lens", "not", "unsure"), "anomaly": ("anomaly", "not")}

#: Columns of a grades file, in order.
GRADE_COLUMNS = ("object_id", "grade", "kind", "time")


def _check_rows(ids, grades, kinds, times, where):
    for i, (object_id, grade, kind) in enumerate(zip(ids, grades, kinds, strict=True)):
        if kind not in GRADE_KINDS:
            msg = f"{where} row {i + 1} ({object_id}): kind {kind!r}; allowed: {list(GRADE_KINDS)}"
            raise ValueError(msg)
        if grade not in GRADE_KINDS[kind]:
            msg = (
                f"{where} row {i + 1} ({object_id}): grade {grade!r} for kind {kind!r}; "
                f"allowed: {list(GRADE_KINDS[kind])}"
            )
            raise ValueError(msg)
        if not object_id:
            msg = f"{where} row {i + 1}: empty object_id"
            raise ValueError(msg)
    if times is not None:
        from astropy.time import Time

        for i, t in enumerate(times):
            try:
                Time(t, format="isot", scale="utc")
            except ValueError:
                msg = (
                    f"{where} row {i + 1} ({ids[i]}): time {t!r} is not ISO 8601 "
                    "(e.g. 2026-12-01T20:15:00.000)"
                )
                raise ValueError(msg) from None


def grades_table(object_ids, grades, *, kind="lens", time=None):
    """A grades table from arrays, as the report's export would write it.

    Parameters
    ----------
    object_ids : sequence of str, length n
    grades : sequence of str, length n
        Each one of ``GRADE_KINDS[kind]``.
    kind : {"lens", "anomaly"}, optional
    time : str, optional
        ISO 8601 UTC time of every row (default: now).

    Returns
    -------
    astropy.table.Table
        Columns :data:`GRADE_COLUMNS`.

    Raises
    ------
    ValueError
        An unknown kind or grade, or arrays of different lengths.

    Examples
    --------
    >>> t = grades_table(["a", "b"], ["lens", "not"], time="2026-12-01T20:00:00")
    >>> [str(g) for g in t["grade"]], len(t)
    (['lens', 'not'], 2)
    """
    from astropy.table import Table
    from astropy.time import Time

    ids = [str(v) for v in object_ids]
    grades = [str(v) for v in grades]
    if len(ids) != len(grades):
        msg = f"grades_table: {len(ids)} object_ids but {len(grades)} grades"
        raise ValueError(msg)
    stamp = Time.now().isot if time is None else str(time)
    times = [stamp] * len(ids)
    _check_rows(ids, grades, [kind] * len(ids), times, "grades_table")
    return Table(
        [ids, grades, [kind] * len(ids), times], names=GRADE_COLUMNS,
        dtype=[str, str, str, str],
    )  # fmt: skip


def read_grades(path):
    """Read a grades file (CSV or ECSV) and keep each object's latest grade per kind.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    astropy.table.Table
        Columns :data:`GRADE_COLUMNS`, one row per graded (object, kind), sorted by kind and
        object_id.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Missing columns, an unknown kind or grade, an unreadable time, or an empty file,
        each naming the file and the row.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "grades.csv"
    >>> _ = path.write_text(
    ...     "object_id,grade,kind,time\\n"
    ...     "obj1,not,lens,2026-12-01T20:00:00\\n"
    ...     "obj1,lens,lens,2026-12-01T20:01:00\\n")
    >>> [str(g) for g in read_grades(path)["grade"]]
    ['lens']
    """
    from astropy.table import Table

    path = Path(path)
    table = read_catalog(path)
    missing = [c for c in GRADE_COLUMNS if c not in table.colnames]
    if missing:
        msg = f"{path}: no column(s) {missing}; a grades file has {list(GRADE_COLUMNS)}"
        raise ValueError(msg)
    if len(table) == 0:
        msg = f"{path}: no grades in it"
        raise ValueError(msg)
    ids, grades, kinds, times = ([str(v).strip() for v in table[c]] for c in GRADE_COLUMNS)
    _check_rows(ids, grades, kinds, times, str(path))
    latest = {}
    for object_id, grade, kind, t in zip(ids, grades, kinds, times, strict=True):
        key = (kind, object_id)
        if key not in latest or t >= latest[key][1]:  # ISO strings of one format sort as time
            latest[key] = (grade, t)
    keys = sorted(latest)
    return Table(
        [[k[1] for k in keys], [latest[k][0] for k in keys], [k[0] for k in keys],
         [latest[k][1] for k in keys]], names=GRADE_COLUMNS, dtype=[str, str, str, str],
    )  # fmt: skip


def grade_labels(grades, object_ids, *, kind="lens", where="the catalog"):
    """Each object's grade of ``kind``, in the order of ``object_ids``.

    Parameters
    ----------
    grades : astropy.table.Table
        From :func:`read_grades` or :func:`grades_table`.
    object_ids : array_like of shape (n,)
        The objects of the catalog the grades are folded into.
    kind : {"lens", "anomaly"}, optional
    where : str, optional
        What ``object_ids`` are the ids of, for the message.

    Returns
    -------
    numpy.ndarray of shape (n,), str
        The grade, or ``""`` for an object not graded for ``kind``.

    Raises
    ------
    ValueError
        A graded id that is not among ``object_ids`` (naming the first few).

    Examples
    --------
    >>> g = grades_table(["b"], ["not"], time="2026-12-01T20:00:00")
    >>> grade_labels(g, ["a", "b", "c"]).tolist()
    ['', 'not', '']
    """
    if kind not in GRADE_KINDS:
        msg = f"grade_labels: kind {kind!r}; allowed: {list(GRADE_KINDS)}"
        raise ValueError(msg)

    rows = np.asarray(grades["kind"]).astype(str) == kind
    graded = np.asarray(grades["object_id"]).astype(str)[rows]
    values = np.asarray(grades["grade"]).astype(str)[rows]
    # Grades belong to the run whose report they were made in.
    at = id_positions(object_ids, graded, what="graded objects", where=where)
    out = np.full(len(object_ids), "", dtype=object)
    out[at] = values
    return out.astype(str)
