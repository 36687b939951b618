"""The small things a new student or instructor reads (issue 18, list 10): each one sentence,
singular where it is one, aligned, never cut mid-word, and said before any work is wasted."""

from __future__ import annotations

import io
import re
import time

import pytest
from click.testing import CliRunner

from mechgrade.cli.main import cli


@pytest.fixture
def runner():
    return CliRunner()


def one_line(out) -> str:
    lines = out.output.strip().splitlines()
    assert len(lines) == 1, out.output
    return lines[0]


def test_path_that_does_not_exist_is_one_clear_sentence(runner):
    out = runner.invoke(cli, ["check", "lesson27", "--path", "/nonexistent/dir"])
    assert out.exit_code == 2
    assert one_line(out) == "Error: No workspace at /nonexistent/dir: create one with `mechgrade start lesson27 /nonexistent/dir`."


def test_path_to_an_empty_folder_is_one_sentence(runner, tmp_path):
    out = runner.invoke(cli, ["check", "lesson27", "--path", str(tmp_path)])
    assert out.exit_code == 2, out.output
    assert one_line(out).startswith(f"Error: {tmp_path} holds none of lesson27's modules (hooks.py, ")


def test_report_into_a_missing_folder_fails_before_grading(runner, reference_ws, tmp_path):
    start = time.monotonic()
    out = runner.invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "--report", str(tmp_path / "no" / "r.html")])
    assert out.exit_code == 2 and "Total:" not in out.output, out.output
    assert one_line(out) == f"Error: Cannot write the report to {tmp_path / 'no' / 'r.html'}: the folder {tmp_path / 'no'} does not exist."
    assert time.monotonic() - start < 60  # no grading run (which boots a worker); a very wide margin


def test_start_force_says_where_replaced_files_went(runner, tmp_path):
    ws = tmp_path / "ws"
    runner.invoke(cli, ["start", "lesson27", str(ws)])
    (ws / "sae.py").write_text("# my work\n")
    out = runner.invoke(cli, ["start", "lesson27", str(ws), "--force"])
    assert out.exit_code == 0
    (backup,) = ws.glob("sae.py.bak-*")
    assert f"Kept your previous files as " in out.output and str(backup) in out.output
    nb = runner.invoke(cli, ["start", "lesson27", str(tmp_path), "--notebook", "--force"])
    again = runner.invoke(cli, ["start", "lesson27", str(tmp_path), "--notebook", "--force"])
    assert nb.exit_code == again.exit_code == 0 and "Kept" not in nb.output and "lesson27.ipynb.bak-" in again.output


def test_one_more_point_is_singular(lesson, tmp_path):
    from mechgrade.engine.results import CaseResult, GradingResult
    from mechgrade.render.terminal import hidden_note

    sae_decode = GradingResult(lesson="lesson27", model="embedded", workspace=str(tmp_path), cases=[CaseResult(
        exercise="sae", function="sae_decode", case="public 1", number="8.2.1", visibility="public", max_score=1,
        passed=True, status="passed")])
    hidden = sum(c.points for _, f, c in lesson.iter_cases(hidden=True) if f.name == "sae_decode" and c.visibility == "hidden")
    assert hidden == 1 and hidden_note(sae_decode) == "Hidden cases worth 1 more point are graded by your instructor."


def test_list_keeps_one_column(runner):
    out = runner.invoke(cli, ["list"])
    rows = [line for line in out.output.splitlines() if line.startswith("  ")]
    assert len({re.match(r"  \S+\s+", row).end() for row in rows}) == 1, out.output


def test_validate_table_at_80_columns_cuts_no_word(lesson):
    from rich.console import Console

    from mechgrade.engine.mutants import load_catalogue
    from mechgrade.engine.validate import MutantVerdict, ValidationReport
    from mechgrade.render.validation import render

    mutants = load_catalogue("lesson27").mutants[:6]
    report = ValidationReport(lesson="lesson27", model="embedded", reference_score=100, max_score=100, stub_score=0,
                              reference_failures=[], weak_cases=[], mutants=[MutantVerdict(
                                  name=m.name, functions=list(m.functions), caught_by=[f"{m.functions[0]} [public 1]"], leaked=[],
                                  hints_shown=[m.hint], expected_hint=m.hint) for m in mutants])
    console = Console(file=io.StringIO(), width=80, color_system=None)
    render(report, console)
    text = console.file.getvalue()
    known = {w for m in mutants for w in (m.name + " " + m.hint + " " + m.functions[0] + " [public 1]").split()}
    known |= {"mutant", "caught", "by;", "hint", "hint:", "shown", "yes", "...", "1", "case(s):", "-"}
    for line in text.splitlines():
        if "│" not in line:
            continue
        for cell in line.split("│"):
            for word in cell.split():
                assert word in known or word.rstrip(";,") in known, (word, text)
