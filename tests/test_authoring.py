"""An instructor's lesson from outside mechgrade, end to end: made with `mechgrade new` at test
time, given a second exercise (a builder, a reference, a custom check, a mutant, instructions)
through the public interface only, installed with pip into a fresh virtual environment, then
listed, started, checked, validated, exported to Gradescope and graded in an autograder root,
and exported as a student bundle that installs offline."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from gradescope_root import Autograder, make_root, setup, unpack
from required import needs

ROOT = Path(__file__).resolve().parents[1]
LESSON = "lesson90"

SECOND_EXERCISE = '''
[[exercises]]
id = "attention"
title = "Where attention goes"

  [[exercises.functions]]
  name = "attention_to_first"
  builder = "attention_inputs"
  check = "attention_weights"
  cases = [
    { visibility = "public", points = 3, params = { layer = 0, seq_len = 6, batch = 2, seed = 3 } },
    { visibility = "hidden", points = 2, params = { layer = 1, seq_len = 9, batch = 1, seed = 4 } },
  ]
'''
REFERENCE = '''"""Attention patterns."""

import torch
from jaxtyping import Float, Int
from torch import Tensor


def attention_to_first(model, tokens: Int[Tensor, "batch pos"], layer: int) -> Float[Tensor, "batch head_index query_pos"]:
    """The attention each query position of each head in `layer` pays to the first position."""
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    return cache["pattern", layer][:, :, :, 0]
'''
BUILDER = '''

def attention_inputs(model, p):
    return {"model": model, "tokens": tokens(model, p), "layer": p["layer"]}


BUILDERS["attention_inputs"] = attention_inputs
'''
CHECK = '''
from mechgrade.engine.grader import CaseFailed


def attention_weights(grader, exercise, function, case):
    try:
        grader.check(exercise, function, case)
    except CaseFailed as err:
        got = getattr(grader.last, "value", None)
        if hasattr(got, "min") and got.numel() and (got.min() < 0 or got.max() > 1):
            raise CaseFailed(f"Some of your values are outside [0, 1]: attention weights never are.\\n{err.feedback}", err.hint, err.rerun) from None
        raise
'''
MUTANT = '''
[[mutants]]
name = "attention-first-query"
module = "attention"
functions = ["attention_to_first"]
old = "[:, :, :, 0]"
new = "[:, :, 0, :]"
hint = "You took the first query's row of the pattern: the attention paid TO the first position is its first key column, [..., 0]."
'''
TEMPLATE = '''## 2. {{ exercise.title }} (`{{ exercise.id }}.py`)

**Define** `attention_to_first(model, tokens, layer)`: how much attention each query position of
each head in `layer` pays to the first position, shape [batch, head_index, query_pos].
'''


def other_lessons_files(archive: Path) -> list[str]:
    """Names in a zip (and in the wheels inside it) that belong to lesson 27, not this lesson."""
    found = []
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            if name.endswith(".whl"):
                with zipfile.ZipFile(io.BytesIO(zf.read(name))) as wheel:
                    found += [f"{name}:{inner}" for inner in wheel.namelist() if "lesson27" in inner]
            elif "lesson27" in name:
                found.append(name)
    return found


def run(cmd: list[str], env: dict, cwd: Path, ok: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert done.returncode == 0, f"{cmd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def authored(tmp_path_factory):
    """(venv's bin, env, work folder): a fresh venv with torch and mechgrade (built from this
    checkout, not editable), and the lesson package made and installed the way the guide says."""
    work = tmp_path_factory.mktemp("authoring")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_ = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH") and not k.startswith("MECHGRADE_")}
    env.update(PATH=f"{bin_}:{env['PATH']}", MECHGRADE_CACHE_DIR=str(work / "cache"), HF_HUB_OFFLINE="1",
               **{k: v for k, v in os.environ.items() if k == "MECHGRADE_REQUIRE"})
    pip = [str(bin_ / "pip"), "install", "-q"]
    run(pip + ["torch==2.13.0"], env, work)
    shutil.copytree(ROOT, work / "mechgrade-src", ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build"))
    run(pip + [str(work / "mechgrade-src")], env, work)

    # The author's steps (docs/authoring.md): new, a second exercise, stubs from the reference.
    made = run([str(bin_ / "mechgrade"), "new", "lesson", LESSON, "pkg", "--title", "Attention, in two steps"], env, work)
    assert "Created pkg/" in made.stdout
    pkg = work / "pkg" / LESSON
    (pkg / "lesson.toml").write_text((pkg / "lesson.toml").read_text() + SECOND_EXERCISE)
    (pkg / "reference" / "attention.py").write_text(REFERENCE)
    (pkg / "cases.py").write_text((pkg / "cases.py").read_text() + BUILDER)
    (pkg / "checks.py").write_text((pkg / "checks.py").read_text() + CHECK)
    (pkg / "mutants.toml").write_text((pkg / "mutants.toml").read_text() + MUTANT)
    (pkg / "templates" / "attention.md.j2").write_text(TEMPLATE)
    run(pip + ["--no-build-isolation", "-e", "./pkg"], env, work)
    stubs = run([str(bin_ / "mechgrade"), "new", "stubs", LESSON], env, work)
    assert "Wrote 2 stub module(s)" in stubs.stdout and (pkg / "stubs" / "attention.py").exists(), stubs.stdout
    # As a user installs it: a wheel with its package data, not the editable folder.
    run([str(bin_ / "pip"), "uninstall", "-y", "-q", f"mechgrade-{LESSON}"], env, work)
    run(pip + ["--no-build-isolation", "./pkg"], env, work)
    return bin_, env, work


def test_an_out_of_tree_lesson_is_listed_checked_and_validated(authored):
    bin_, env, work = authored
    mechgrade = lambda *args, ok=True: run([str(bin_ / "mechgrade"), *args], env, work, ok=ok)  # noqa: E731

    listed = mechgrade("list").stdout
    assert f"{LESSON}: Attention, in two steps (10 points; 7 in public cases; from mechgrade-{LESSON} 0.1.0)" in listed, listed
    assert "attention  Where attention goes: attention_to_first" in listed and "lesson27" in listed
    location = run([str(bin_ / "python"), "-c", f"import {LESSON}; print({LESSON}.__file__)"], env, work).stdout
    assert "site-packages" in location, location  # the wheel, not the folder it was built from

    mechgrade("start", LESSON, "ws")
    stubs = mechgrade("check", LESSON, "--path", "ws", ok=False)
    assert stubs.returncode == 1 and "Total: 0 / 7 points" in stubs.stdout, stubs.stdout + stubs.stderr
    mechgrade("start", LESSON, "sol", "--solutions")
    full = mechgrade("check", LESSON, "--path", "sol", "--hidden")
    assert "Total: 10 / 10 points" in full.stdout, full.stdout
    # The second exercise's mutant: caught, with its hint and the custom check's feedback.
    mutated = (work / "sol" / "attention.py").read_text().replace("[:, :, :, 0]", "[:, :, 0, :]")
    (work / "sol" / "attention.py").write_text(mutated)
    wrong = mechgrade("check", LESSON, "--path", "sol", "-e", "attention", ok=False)
    assert wrong.returncode == 1 and "first key column" in " ".join(wrong.stdout.split()), wrong.stdout

    validated = mechgrade("validate", LESSON)
    assert "graders proven" in validated.stdout and "2 mutants" in validated.stdout, validated.stdout
    # mechgrade's platform tests, for every lesson installed in this environment.
    platform = run([str(bin_ / "python"), "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider", "-o", "addopts=",
                    str(ROOT / "tests" / "test_lessons.py")], env, work, ok=False)
    assert platform.returncode == 0 and f"[{LESSON}-attention]" not in platform.stdout, platform.stdout[-3000:]
    assert " passed" in platform.stdout and "failed" not in platform.stdout, platform.stdout[-3000:]


@needs("root", "setup.sh creates a user and sets ownership: needs root, as on Gradescope")
def test_an_out_of_tree_lesson_exports_an_autograder_that_grades(authored):
    bin_, env, work = authored
    run([str(bin_ / "mechgrade"), "export", "gradescope", LESSON, "-o", "autograder.zip"], env, work)
    # mechgrade is installed from a wheel here, so lesson 27 lies inside its package folder: none
    # of it (its reference, its hidden cases) may travel with another lesson's export.
    assert other_lessons_files(work / "autograder.zip") == []
    root = make_root()
    try:
        unpack(work / "autograder.zip", root)
        setup(root)
        grader = Autograder(root)
        reference = {p.name: p.read_text() for p in (work / "pkg" / LESSON / "reference").glob("[a-z]*.py")}
        data = grader.run(reference)
        assert data["score"] == 10 and len(data["tests"]) == 5, data
        data = grader.run({p.name: p.read_text() for p in (work / "pkg" / LESSON / "stubs").glob("[a-z]*.py")})
        assert data["score"] == 0 and len(data["tests"]) == 5, data
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_an_out_of_tree_lessons_student_bundle_installs_offline_and_grades(authored):
    bin_, env, work = authored
    run([str(bin_ / "mechgrade"), "export", "student", LESSON, "-o", "starter.zip"], env, work)
    assert other_lessons_files(work / "starter.zip") == []
    course = work / "course"
    with zipfile.ZipFile(work / "starter.zip") as zf:
        zf.extractall(course)
        wheel = next(n for n in zf.namelist() if n.endswith(".whl"))
    # The same environment, emptied of mechgrade and the lesson: torch and the rest stay, so the
    # bundle must install with no index at all.
    run([str(bin_ / "pip"), "uninstall", "-y", "-q", "mechgrade", f"mechgrade-{LESSON}"], env, work)
    run([str(bin_ / "pip"), "install", "-q", "--no-index", str(course / wheel)], env, work)
    found = run([str(bin_ / "python"), "-c", textwrap.dedent(f"""
        import importlib.util
        print(importlib.util.find_spec("{LESSON}.reference") is None, importlib.util.find_spec("{LESSON}.checks") is not None)
        """)], env, course).stdout.split()
    assert found == ["True", "True"], found
    mechgrade = lambda *args, ok=True: run([str(bin_ / "mechgrade"), *args], env, course, ok=ok)  # noqa: E731
    stubs = mechgrade("check", LESSON, ok=False)  # the bundle's ready workspace
    assert stubs.returncode == 1 and "Total: 0 / 7 points" in stubs.stdout, stubs.stdout + stubs.stderr
    mine = course / LESSON
    for path in (work / "pkg" / LESSON / "reference").glob("[a-z]*.py"):
        (mine / path.name).write_text(path.read_text())
    full = mechgrade("check", LESSON)
    assert "Total: 7 / 7 points" in full.stdout and "Hidden cases worth 3 more points" in full.stdout, full.stdout
    refused = mechgrade("validate", LESSON, ok=False)
    assert refused.returncode == 2 and "needs the reference" in refused.stderr and "Traceback" not in refused.stderr


def test_the_guide_shows_the_code_these_tests_run():
    """docs/authoring.md walks through the same second exercise: a snippet changed in one place
    and not the other fails here, so the guide stays a recipe that works."""
    guide = (ROOT / "docs" / "authoring.md").read_text()
    for snippet in (SECOND_EXERCISE, REFERENCE, BUILDER, CHECK, MUTANT, TEMPLATE):
        assert snippet.strip() in guide, snippet.strip().splitlines()[0]
