"""`mechgrade grade` driven as an instructor runs it (the real command, a private TMPDIR, its exit
status): loose notebooks and modules are students, everything else in the class folder is named
with why it is not graded, hidden points not graded are said, a notebook's failing cell is
reported once, nothing floods stderr, nothing is left in TMPDIR, and Ctrl-C keeps who was graded."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess

import pytest

import terminal
from mechgrade.spec import load_lesson
from mechgrade.workspace import create_notebook, module_sources


@pytest.fixture(scope="module")
def loose_class(tmp_path_factory):
    lesson = load_lesson("lesson27")
    root = tmp_path_factory.mktemp("loose-class")
    nb = create_notebook(lesson, root / "hana.ipynb", solutions=True)
    data = json.loads(nb.read_text())  # a cell that needs the (ungraded) setup cell's `model`
    data["cells"].insert(2, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                             "source": "N_LAYERS = model.cfg.n_layers"})
    nb.write_text(json.dumps(data))
    (root / "ivan.py").write_text("\n\n".join(module_sources(lesson, solutions=True).values()))
    (root / "notes.txt").write_text("grade these by Friday")
    return root


def test_loose_files_are_students_and_the_rest_is_named(loose_class, reference_ws, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    done = subprocess.run([terminal.mechgrade(), "grade", "lesson27", str(loose_class), "-o", str(out / "gradebook.csv"), "-j", "1"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "TMPDIR": str(tmp)})
    assert done.returncode == 0, done.stdout + done.stderr
    lesson = load_lesson("lesson27")
    public = sum(c.points for _, _, c in lesson.iter_cases())
    hidden = lesson.total_points - public
    with open(out / "gradebook.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"hana", "ivan"}, done.stdout
    assert rows["ivan"]["total"] == f"{public:g}" and rows["ivan"]["hidden_points_not_graded"] == f"{hidden:g}"
    assert "3 submissions" not in done.stdout and "2 submissions, 2 graded" in done.stdout
    assert "not a submission: notes.txt: not a submission" in done.stdout
    assert f"hidden cases worth {hidden:g} more points were not graded (grade with --hidden)" in done.stdout
    assert "running hana.ipynb cell" not in done.stderr and len(done.stderr.splitlines()) < 5, done.stderr
    output = json.loads((out / "gradebook_results" / "hana.json").read_text())["output"]
    assert output.count("cell 3, line 1: NameError: name 'model' is not defined") == 1, output
    assert list(tmp.iterdir()) == []  # no mechgrade-zygote-* (or any) folder left


def test_ctrl_c_during_grade_keeps_who_was_graded(reference_ws, stub_ws, tmp_path):
    subs = tmp_path / "class"
    # "[red]bob" is graded first and named in the progress line (as rich markup, it read "bob").
    students = ("[red]bob", "alice", "carol", "dan")
    for name, ws in zip(students, (stub_ws, reference_ws, reference_ws, stub_ws)):
        shutil.copytree(ws, subs / name)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    gradebook = tmp_path / "gradebook.csv"
    done = terminal.run(["grade", "lesson27", str(subs), "-o", str(gradebook), "-j", "1"], env={"TMPDIR": str(tmp)},
                        interrupt_when=r"graded \[red\]bob \(1/4\)")
    assert done.returncode == 130, done.output
    for absent in ("Traceback", "BrokenPipeError", "KeyboardInterrupt"):
        assert absent not in done.output, done.output
    with open(gradebook) as f:
        graded = [r["student"] for r in csv.DictReader(f)]
    assert graded and len(graded) < 4, done.output
    assert f"interrupted: not graded: {', '.join(s for s in students if s not in graded)}" in done.output
    assert done.output.strip().splitlines()[-1] == "interrupted"
    assert done.leftover_pids == []
    assert list(tmp.iterdir()) == []
