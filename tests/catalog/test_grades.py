"""Grades files: read as the report writes them, checked, latest grade per object."""

import numpy as np
import pytest

from astrounsup.catalog import GRADE_COLUMNS, grade_labels, grades_table, read_grades

HEADER = "object_id,grade,kind,time\n"


def _csv(tmp_path, body, name="grades.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


class TestReadGrades:
    def test_latest_grade_per_object_and_kind(self, tmp_path):
        path = _csv(tmp_path, "b,lens,lens,2026-12-01T20:02:00.000Z\n"
                              "a,not,lens,2026-12-01T20:00:00.000Z\n"
                              "a,lens,lens,2026-12-01T20:01:00.000Z\n"
                              "a,anomaly,anomaly,2026-12-01T19:00:00.000Z\n")  # fmt: skip
        g = read_grades(path)
        assert g.colnames == list(GRADE_COLUMNS)
        rows = [tuple(str(v) for v in row) for row in g]
        assert rows == [
            ("a", "anomaly", "anomaly", "2026-12-01T19:00:00.000Z"),
            ("a", "lens", "lens", "2026-12-01T20:01:00.000Z"),
            ("b", "lens", "lens", "2026-12-01T20:02:00.000Z"),
        ]

    def test_ecsv_round_trip(self, tmp_path):
        t = grades_table(["x1", "x2"], ["lens", "unsure"], time="2026-12-01T20:00:00")
        t.write(tmp_path / "g.ecsv")
        g = read_grades(tmp_path / "g.ecsv")
        assert [str(v) for v in g["grade"]] == ["lens", "unsure"]

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            ("a,maybe,lens,2026-12-01T20:00:00\n",
             r"grades.csv row 1 \(a\): grade 'maybe' for kind 'lens'; allowed: \['lens', 'not', 'unsure'\]"),  # noqa: E501
            ("a,lens,anomaly,2026-12-01T20:00:00\n", r"grade 'lens' for kind 'anomaly'"),
            ("a,lens,star,2026-12-01T20:00:00\n", r"kind 'star'; allowed: \['lens', 'anomaly'\]"),
            ("a,lens,lens,yesterday\n", r"row 1 \(a\): time 'yesterday' is not ISO 8601"),
        ],
    )  # fmt: skip
    def test_bad_rows(self, tmp_path, body, match):
        with pytest.raises(ValueError, match=match):
            read_grades(_csv(tmp_path, body))

    def test_bad_files(self, tmp_path):
        (tmp_path / "cols.csv").write_text("object_id,grade\na,lens\n")
        with pytest.raises(ValueError, match=r"cols.csv: no column\(s\) \['kind', 'time'\]"):
            read_grades(tmp_path / "cols.csv")
        with pytest.raises(ValueError, match="no grades in it"):
            read_grades(_csv(tmp_path, ""))
        with pytest.raises(FileNotFoundError, match=r"nope\.csv: no such file"):
            read_grades(tmp_path / "nope.csv")


class TestGradeLabels:
    def test_in_catalog_order(self):
        g = grades_table(["c", "a"], ["not", "lens"], time="2026-12-01T20:00:00")
        assert grade_labels(g, np.array(["a", "b", "c"])).tolist() == ["lens", "", "not"]
        assert grade_labels(g, ["a", "b", "c"], kind="anomaly").tolist() == ["", "", ""]

    def test_unknown_ids_and_kinds(self):
        g = grades_table(["z"], ["lens"], time="2026-12-01T20:00:00")
        with pytest.raises(
            ValueError, match=r"1 graded objects are not in the store, e\.g\. \['z'\]"
        ):
            grade_labels(g, ["a"], where="the store")
        with pytest.raises(ValueError, match="kind 'star'"):
            grade_labels(g, ["z"], kind="star")
        with pytest.raises(ValueError, match="2 object_ids but 1 grades"):
            grades_table(["a", "b"], ["lens"])
