"""Grades files: read as the report writes them, checked, latest grade per object."""

import numpy as np
import pytest

from astrounsup.catalog import GRADE_COLUMNS, grade_labels, grades_table, read_grades, run_id

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
            ("a", "anomaly", "anomaly", "2026-12-01T19:00:00.000Z", ""),
            ("a", "lens", "lens", "2026-12-01T20:01:00.000Z", ""),
            ("b", "lens", "lens", "2026-12-01T20:02:00.000Z", ""),
        ]

    def test_times_are_compared_as_times_not_as_text(self, tmp_path):
        # As text "2026-12-01T9:..." sorts after "2026-12-01T20:..."; as times it is earlier.
        path = _csv(tmp_path, "a,lens,lens,2026-12-01T20:00:00\n"
                              "a,not,lens,2026-12-01T21:00:00.5\n"
                              "b,not,lens,2026-12-02T08:00:00\n"
                              "b,lens,lens,2026-12-01T23:59:59.999\n")  # fmt: skip
        assert [str(g) for g in read_grades(path)["grade"]] == ["not", "not"]

    def test_a_spreadsheet_resave_with_bom_and_crlf_reads(self, tmp_path):
        path = tmp_path / "g.csv"
        body = "object_id,grade,kind,time\r\nx1,lens,lens,2026-12-01T20:00:00\r\n"
        path.write_bytes(b"\xef\xbb\xbf" + body.encode())
        g = read_grades(path)
        assert list(g["object_id"]) == ["x1"]
        assert list(g["grade"]) == ["lens"]

    def test_ids_escaped_against_formulas_read_back(self, tmp_path):
        path = _csv(tmp_path, "'=SUM(A1),lens,lens,2026-12-01T20:00:00\n"
                              "'-12+3,not,lens,2026-12-01T20:00:00\n"
                              "'plain,not,lens,2026-12-01T20:00:00\n")  # fmt: skip
        assert sorted(read_grades(path)["object_id"]) == ["'plain", "-12+3", "=SUM(A1)"]

    def test_a_file_over_the_size_limit_is_refused(self, tmp_path, monkeypatch):
        import astrounsup.catalog.grades as grades_module

        monkeypatch.setattr(grades_module, "MAX_GRADES_BYTES", 100)
        path = _csv(tmp_path, "x,lens,lens,2026-12-01T20:00:00\n" * 10)
        with pytest.raises(ValueError, match=r"grades\.csv: \d+ bytes; a grades file is read up "
                           r"to 100"):  # fmt: skip
            read_grades(path)


class TestRuns:
    def _objects(self, ra0):
        from astropy.table import Table

        return Table({"object_id": ["a", "b", "c"], "ra": [ra0, ra0 + 1, ra0 + 2],
                      "dec": [1.0, 2.0, 3.0]})  # fmt: skip

    def test_grades_of_another_survey_with_the_same_ids_are_refused(self, tmp_path):
        here, other = self._objects(10.0), self._objects(200.0)
        grades_table(["b"], ["lens"], time="2026-12-01T20:00:00",
                     run=run_id(other)).write(tmp_path / "g.csv")  # fmt: skip
        pattern = r"g\.csv: grades made on another set of objects \(run [0-9a-f]{16}\) than"
        with pytest.raises(ValueError, match=pattern + r" the catalog \(run [0-9a-f]{16}\)"):
            grade_labels(read_grades(tmp_path / "g.csv"), here)
        told = read_grades(tmp_path / "g.csv", any_run=True)
        assert grade_labels(told, here).tolist() == ["", "lens", ""]

    def test_grades_of_this_run_and_files_without_runs_apply(self, tmp_path):
        here = self._objects(10.0)
        grades_table(["c"], ["not"], time="2026-12-01T20:00:00",
                     run=run_id(here[::-1])).write(tmp_path / "g.csv")  # fmt: skip
        assert grade_labels(read_grades(tmp_path / "g.csv"), here).tolist() == ["", "", "not"]
        path = _csv(tmp_path, "a,lens,lens,2026-12-01T20:00:00\n", name="old.csv")
        assert grade_labels(read_grades(path), here).tolist() == ["lens", "", ""]


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
