"""`mechgrade new`: what it writes and what it refuses, each in one sentence (the package it
writes, installed and graded end to end, is tests/test_authoring.py)."""

from __future__ import annotations

import tomllib

from click.testing import CliRunner

from mechgrade.cli.main import cli


def new(*args: str):
    return CliRunner().invoke(cli, ["new", *args])


def test_new_lesson_writes_a_package_and_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = new("lesson", "lesson77", "course-lesson", "--title", 'Heads, "quoted"')
    assert done.exit_code == 0, done.output
    # pip reads a bare relative name as a requirement, not a folder: the advice must say ./
    assert "pip install -e ./course-lesson" in done.output
    pyproject = tomllib.loads((tmp_path / "course-lesson" / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["mechgrade.lessons"] == {"lesson77": "lesson77:LESSON"}
    spec = tomllib.loads((tmp_path / "course-lesson" / "lesson77" / "lesson.toml").read_text())
    assert spec["id"] == "lesson77" and spec["title"] == 'Heads, "quoted"'
    assert (tmp_path / "course-lesson" / "lesson77" / "stubs" / "residual.py").is_file()


def test_new_lesson_refuses_in_one_sentence_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    for args, needle in ((("lesson", "Lesson-28"), "cannot be a lesson's name"),
                         (("lesson", "class"), "cannot be a lesson's name"),
                         (("lesson", "lesson27"), "already installed"),
                         (("lesson", "torch"), "already importable"),
                         (("lesson", "lesson78", "full"), "not an empty folder")):
        done = new(*args)
        assert done.exit_code == 2 and needle in done.output and "Traceback" not in done.output, (args, done.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]


def test_new_stubs_of_an_unknown_lesson_says_so(tmp_path):
    done = new("stubs", "lesson_nowhere")
    assert done.exit_code == 2 and "No lesson 'lesson_nowhere' is installed" in done.output, done.output
