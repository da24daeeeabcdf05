"""Grades a person gave objects while vetting a report: read, checked, and turned into labels.

A grades file (CSV or ECSV, as the report's export writes it) has one row per grading act,
with the columns ``object_id``, ``grade``, ``kind``, ``time`` (ISO 8601, UTC) and ``run``
(the :func:`run_id` of the objects the report showed; optional). The kinds and their grades
are :data:`GRADE_KINDS`; when an object was graded more than once for a kind, its latest
grade counts. Grades whose ``run`` is another set of objects (another survey with the same
id scheme) are refused where they are folded in unless the reader allowed them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from astrounsup.catalog.table import id_positions

__all__ = [
    "GRADE_COLUMNS",
    "GRADE_KINDS",
    "MAX_GRADES_BYTES",
    "grade_labels",
    "grades_table",
    "read_grades",
    "run_id",
]

#: Grading kinds and the grades each allows.
GRADE_KINDS = {"lens": ("lens", "not", "unsure"), "anomaly": ("anomaly", "not")}

#: Columns of a grades file, in order (``run`` may be absent from a file).
GRADE_COLUMNS = ("object_id", "grade", "kind", "time", "run")
_REQUIRED = GRADE_COLUMNS[:4]

#: Largest grades file read, bytes: about 450,000 grading acts of the report's export
#: (``bench/grades_read.py``: 2 s and 0.5 GB of memory at that size).
MAX_GRADES_BYTES = 32 * 2**20

#: First characters a spreadsheet reads as a formula; the report's CSV export writes an
#: id beginning with one of them after a ``'``, which :func:`read_grades` removes.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def run_id(table):
    """The identity of a set of objects, as the report and the grades it exports name it:
    a hash of each object's id and position (so another survey with the same id scheme
    has another one), whatever their order.

    Parameters
    ----------
    table : astropy.table.Table
        With ``object_id`` and, if known, ``ra`` and ``dec`` (degrees).

    Returns
    -------
    str
        16 hexadecimal digits.

    Examples
    --------
    >>> from astropy.table import Table
    >>> a = Table({"object_id": ["x", "y"], "ra": [10.0, 11.0], "dec": [1.0, 2.0]})
    >>> run_id(a) == run_id(a[::-1]), run_id(a) == run_id(Table({"object_id": ["x", "y"]}))
    (True, False)
    """
    ids = [str(v) for v in table["object_id"]]
    if "ra" in table.colnames and "dec" in table.colnames:
        ra, dec = (np.asarray(getattr(table[c], "value", table[c]), dtype=np.float64)
                   for c in ("ra", "dec"))  # fmt: skip
        lines = [f"{i} {r:.6f} {d:.6f}" for i, r, d in zip(ids, ra, dec, strict=True)]
    else:
        lines = ids
    return hashlib.sha1("\n".join(sorted(lines)).encode()).hexdigest()[:16]


def _check_rows(ids, grades, kinds, times, where):
    """Refuse the first row with an unknown kind or grade, an empty id or a time that is
    not ISO 8601; returns the times as ``datetime64[us]``."""
    ids, grades, kinds = (np.asarray(v, dtype=str) for v in (ids, grades, kinds))
    known = np.isin(kinds, list(GRADE_KINDS))
    allowed = np.zeros(len(ids), bool)
    for kind, values in GRADE_KINDS.items():
        allowed |= (kinds == kind) & np.isin(grades, values)
    for i in np.flatnonzero(~known | ~allowed | (ids == ""))[:1]:
        if not known[i]:
            msg = (
                f"{where} row {i + 1} ({ids[i]}): kind {str(kinds[i])!r}; allowed: "
                f"{list(GRADE_KINDS)}"
            )
        elif not ids[i]:
            msg = f"{where} row {i + 1}: empty object_id"
        else:
            msg = (
                f"{where} row {i + 1} ({ids[i]}): grade {str(grades[i])!r} for kind "
                f"{str(kinds[i])!r}; allowed: {list(GRADE_KINDS[str(kinds[i])])}"
            )
        raise ValueError(msg)
    return _times(np.asarray(times, dtype=str), ids, where)


def _times(times, ids, where):
    """ISO 8601 times (a trailing ``Z`` allowed) as ``datetime64[us]``, all at once; the
    first that is not one is named."""
    text = np.char.rstrip(np.char.strip(times), "Z")
    try:
        return text.astype("datetime64[us]")
    except ValueError:
        pass
    for i, t in enumerate(text):
        try:
            np.datetime64(t, "us")
        except ValueError:
            msg = (
                f"{where} row {i + 1} ({ids[i]}): time {str(times[i])!r} is not ISO 8601 "
                "(e.g. 2026-12-01T20:15:00.000)"
            )
            raise ValueError(msg) from None
    msg = f"{where}: times are not ISO 8601"  # every one parsed alone: not reached
    raise ValueError(msg)


def grades_table(object_ids, grades, *, kind="lens", time=None, run=""):
    """A grades table from arrays, as the report's export would write it.

    Parameters
    ----------
    object_ids : sequence of str, length n
    grades : sequence of str, length n
        Each one of ``GRADE_KINDS[kind]``.
    kind : {"lens", "anomaly"}, optional
    time : str, optional
        ISO 8601 UTC time of every row (default: now).
    run : str, optional
        The :func:`run_id` of the objects graded (``""``: not known).

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
        [ids, grades, [kind] * len(ids), times, [str(run)] * len(ids)], names=GRADE_COLUMNS,
        dtype=[str] * len(GRADE_COLUMNS),
    )  # fmt: skip


def read_grades(path, *, any_run=False):
    """Read a grades file (CSV or ECSV) and keep each object's latest grade per kind.

    A CSV saved again by a spreadsheet (a byte-order mark, CRLF line ends) reads as the
    export does; an id the export wrote after a ``'`` (one beginning like a formula:
    ``=``, ``+``, ``-``, ``@``) is read without it. Times are compared as times.

    Parameters
    ----------
    path : str or pathlib.Path
    any_run : bool, optional
        Let :func:`grade_labels` fold these grades into objects of another run than the
        one they were made on (their ``run`` column); without it that is refused.

    Returns
    -------
    astropy.table.Table
        Columns :data:`GRADE_COLUMNS` (``run`` empty where the file has none), one row per
        graded (object, kind), sorted by kind and object_id; ``meta["any_run"]`` and
        ``meta["path"]`` for :func:`grade_labels`.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A file larger than :data:`MAX_GRADES_BYTES`, missing columns, an unknown kind or
        grade, an unreadable time, or an empty file, each naming the file and the row.

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
    from astropy.io import ascii
    from astropy.table import Table

    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such file"
        raise FileNotFoundError(msg)
    size = path.stat().st_size
    if size > MAX_GRADES_BYTES:
        msg = f"{path}: {size} bytes; a grades file is read up to {MAX_GRADES_BYTES}"
        raise ValueError(msg)
    text = path.read_bytes().decode("utf-8-sig", errors="replace").replace("\r\n", "\n")
    fmt = "ascii.ecsv" if text.startswith("# %ECSV") else "ascii.csv"
    try:
        table = ascii.read(text.splitlines(), format=fmt[6:], guess=False, fill_values=[])
    except Exception as err:  # astropy's parsers raise many kinds
        msg = f"{path}: not a readable {fmt[6:].upper()} table ({str(err).splitlines()[0]})"
        raise ValueError(msg) from None
    missing = [c for c in _REQUIRED if c not in table.colnames]
    if missing:
        msg = f"{path}: no column(s) {missing}; a grades file has {list(GRADE_COLUMNS)}"
        raise ValueError(msg)
    if len(table) == 0:
        msg = f"{path}: no grades in it"
        raise ValueError(msg)
    ids, grades, kinds = (np.char.strip(np.asarray(table[c], dtype=str)) for c in _REQUIRED[:3])
    escaped = np.zeros(len(ids), bool)
    for start in FORMULA_STARTS:
        escaped |= np.char.startswith(ids, "'" + start)
    if escaped.any():  # the few escaped ids lose their leading '
        ids = ids.astype(object)
        ids[escaped] = [v[1:] for v in ids[escaped]]
        ids = ids.astype(str)
    stamps = np.char.strip(np.asarray(table["time"], dtype=str))
    times = _check_rows(ids, grades, kinds, stamps, str(path))
    runs = (np.char.strip(np.asarray(table["run"], dtype=str)) if "run" in table.colnames
            else np.full(len(ids), "", dtype=str))  # fmt: skip
    # The latest grade of each (kind, object): sorted by them, then by time; the last wins.
    order = np.lexsort((np.arange(len(ids)), times, ids, kinds))
    k, i = kinds[order], ids[order]
    last = np.r_[(k[1:] != k[:-1]) | (i[1:] != i[:-1]), True]
    keep = order[last]
    columns = [ids[keep], grades[keep], kinds[keep], stamps[keep], runs[keep]]
    out = Table(columns, names=GRADE_COLUMNS, dtype=[str] * len(GRADE_COLUMNS))
    out.meta.update(path=str(path), any_run=bool(any_run))
    return out


def grade_labels(grades, objects, *, kind="lens", where="the catalog"):
    """Each object's grade of ``kind``, in the order of ``objects``.

    Parameters
    ----------
    grades : astropy.table.Table
        From :func:`read_grades` or :func:`grades_table`.
    objects : astropy.table.Table or array_like of shape (n,)
        The objects the grades are folded into: a table (``object_id``, ``ra``, ``dec``),
        whose :func:`run_id` the grades' ``run`` must be unless ``read_grades`` was told
        ``any_run``, or their ids alone (no run check).
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
        A graded id that is not among the objects (naming the first few), or grades of
        another run.

    Examples
    --------
    >>> g = grades_table(["b"], ["not"], time="2026-12-01T20:00:00")
    >>> grade_labels(g, ["a", "b", "c"]).tolist()
    ['', 'not', '']
    """
    if kind not in GRADE_KINDS:
        msg = f"grade_labels: kind {kind!r}; allowed: {list(GRADE_KINDS)}"
        raise ValueError(msg)

    from astropy.table import Table

    if isinstance(objects, Table):
        _check_run(grades, objects, where)
        object_ids = objects["object_id"]
    else:
        object_ids = objects
    rows = np.asarray(grades["kind"]).astype(str) == kind
    graded = np.asarray(grades["object_id"]).astype(str)[rows]
    values = np.asarray(grades["grade"]).astype(str)[rows]
    # Grades belong to the run whose report they were made in.
    at = id_positions(object_ids, graded, what="graded objects", where=where)
    out = np.full(len(object_ids), "", dtype=object)
    out[at] = values
    return out.astype(str)


def _check_run(grades, objects, where):
    """Refuse grades made on another set of objects than ``objects`` (their ``run``)."""
    if grades.meta.get("any_run") or "run" not in grades.colnames:
        return
    runs = sorted({str(r) for r in grades["run"]} - {""})
    here = run_id(objects)
    other = [r for r in runs if r != here]
    if other:
        source = grades.meta.get("path", "the grades")
        msg = (
            f"{source}: grades made on another set of objects (run {other[0]}) than "
            f"{where} (run {here}); if they are meant for these objects, allow them "
            "(read_grades(..., any_run=True), --vetted-any-run)"
        )
        raise ValueError(msg)
