"""Ctrl-C, as a terminal sends it (SIGINT to the foreground process group), at several moments of
a real ``mechgrade check`` and ``mechgrade grade``: an interrupted run never reads as a success,
prints no traceback, and leaves no process and no temporary folder behind."""

from __future__ import annotations

import pytest

import terminal


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return tmp


@pytest.mark.parametrize("moment", [{"interrupt_after": 0.5}, {"interrupt_after": 3.0},
                                    {"interrupt_when": r"\w+\.\w+ \[public"}], ids=["first-second", "after-3s", "grading"])
def test_ctrl_c_during_check_exits_130_and_says_interrupted(reference_ws, private_tmp, moment):
    done = terminal.run(["check", "lesson27", "--path", str(reference_ws)], env={"TMPDIR": str(private_tmp)}, **moment)
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert done.returncode == 130, done.output
    assert lines[-1:] == ["interrupted"], done.output
    for absent in ("Total:", "┏", "Traceback", "could not run", "Aborted"):
        assert absent not in done.output, done.output
    assert done.leftover_pids == []
    assert [(p, sorted(x.name for x in p.rglob("*"))) for p in private_tmp.iterdir()] == []
