"""`mechgrade grade`: a class of submissions, each costing only its own row."""

from __future__ import annotations

import csv
import shutil
import zipfile

import pytest

from mechgrade.engine.gradebook import grade_class
from mechgrade.engine.mutants import load_catalogue, write_mutant_workspace


@pytest.fixture(scope="module")
def classroom(tmp_path_factory, reference_ws, stub_ws):
    root = tmp_path_factory.mktemp("submissions")
    shutil.copytree(reference_ws, root / "alice")                       # full marks
    shutil.copytree(stub_ws, root / "bob")                              # zero
    (root / "carol" / "lesson27").mkdir(parents=True)                   # modules in a lesson27/ folder,
    for p in reference_ws.glob("*.py"):                                 # one module that kills its worker
        shutil.copy(p, root / "carol" / "lesson27" / p.name)
    (root / "carol" / "lesson27" / "sae.py").write_text("import os\nos._exit(1)\n")
    (root / "dave").mkdir()                                             # nothing submitted
    with zipfile.ZipFile(root / "erin.zip", "w") as zf:                 # a zip of loose files
        for p in reference_ws.glob("*.py"):
            zf.write(p, p.name)
    mutant = next(m for m in load_catalogue("lesson27").mutants if m.name == "induction-off-by-one")
    write_mutant_workspace("lesson27", mutant, root / "frank")          # one wrong function
    from mechgrade.spec import load_lesson
    from mechgrade.workspace import create_notebook

    create_notebook(load_lesson("lesson27"), root / "gina" / "work.ipynb", solutions=True)  # a notebook
    return root


def test_a_class_is_graded_row_by_row(classroom, tmp_path, lesson):
    gradebook = tmp_path / "gradebook.csv"
    report = grade_class("lesson27", classroom, gradebook=gradebook, results_dir=tmp_path / "results", jobs=2)
    rows = {r.student: r for r in report.rows}
    public = sum(c.points for _, _, c in lesson.iter_cases())
    sae = sum(c.points for e, _, c in lesson.iter_cases() if e.id == "sae")
    induction_scores = sum(c.points for e, f, c in lesson.iter_cases() if f.name == "induction_scores")
    assert rows["alice"].score == rows["erin"].score == rows["gina"].score == public
    assert rows["bob"].score == 0 and rows["bob"].status == "graded"
    assert rows["carol"].score == public - sae
    assert rows["frank"].score == public - induction_scores
    assert rows["dave"].status.startswith("no lesson modules")
    with open(gradebook) as f:
        table = list(csv.DictReader(f))
    assert [r["student"] for r in table] == ["alice", "bob", "carol", "dave", "erin", "frank", "gina"]
    assert table[2]["sae"] == "0" and table[0]["total"] == f"{public:g}"
    assert (tmp_path / "results" / "frank.json").exists()
    summary = "\n".join(report.summary_lines())
    assert "7 submissions, 6 graded" in summary and "Off by one on the induction diagonal" in summary

    # --resume grades nobody again and rebuilds the same rows from the results files.
    again = grade_class("lesson27", classroom, gradebook=gradebook, results_dir=tmp_path / "results", resume=True)
    assert {r.student: r.score for r in again.rows} == {r.student: r.score for r in report.rows}


def test_not_a_folder_is_one_sentence(tmp_path):
    from mechgrade.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match="is not a folder of submissions"):
        grade_class("lesson27", tmp_path / "missing", gradebook=tmp_path / "g.csv", results_dir=tmp_path / "r")


def test_without_a_sandbox_grade_refuses_in_one_sentence_unless_told(classroom, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from mechgrade.cli.main import cli

    monkeypatch.setenv("MECHGRADE_SANDBOX", "none")  # what a Mac, or Linux without bubblewrap, gives an ordinary user
    refused = CliRunner().invoke(cli, ["grade", "lesson27", str(classroom), "-o", str(tmp_path / "g.csv")])
    assert refused.exit_code == 2 and "--no-sandbox" in refused.output and "Traceback" not in refused.output
    assert len(refused.output.strip().splitlines()) == 1 and not (tmp_path / "g.csv").exists()


def test_a_submission_that_hangs_everywhere_is_stopped_at_the_per_student_limit(tmp_path, lesson):
    """Every module loops forever at import, and every function too: the row is there, its
    cases say why, and the student costs about its limit, not a time limit per case."""
    import time

    from mechgrade.workspace import module_sources

    subs = tmp_path / "subs"
    (subs / "stuck").mkdir(parents=True)
    for name, text in module_sources(lesson).items():
        (subs / "stuck" / name).write_text(text.replace("raise NotImplementedError", "while True: pass  #"))
    start = time.monotonic()
    report = grade_class("lesson27", subs, gradebook=tmp_path / "g.csv", results_dir=tmp_path / "r", jobs=1, student_limit_s=25)
    took = time.monotonic() - start
    row = report.rows[0]
    assert row.status == "graded" and row.score == 0
    data = (tmp_path / "r" / "stuck.json").read_text()
    assert "not run" in data or "did not return" in data
    assert took < 25 + 90, f"the per-student limit did not hold: {took:.0f} s"
