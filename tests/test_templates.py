"""Lesson 27's stubs and instructions (what every lesson promises is in tests/test_lessons.py)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

from mechgrade.workspace import render_instructions

MODULES = ["hooks", "induction", "circuits", "patching", "dla", "probe", "superposition", "sae"]


def public_functions(package: str, module: str) -> dict:
    mod = importlib.import_module(f"mechgrade.{package}.lesson27.{module}")
    return {n: f for n, f in vars(mod).items() if inspect.isfunction(f) and f.__module__ == mod.__name__ and not n.startswith("_")}


def test_return_annotations_use_transformerlens_dimension_names():
    allowed = {"batch", "pos", "layer", "head", "head_index", "d_model", "d_vocab", "d_sae", "component", "n",
               "1+2*seq_len", "query_pos", "key_pos", "d_head",
               "head_from", "head_to", "feature", "d_hidden"}  # the last four: circuits' and toy models' own axes
    for module in MODULES:
        for name, fn in public_functions("reference", module).items():
            text = str(inspect.signature(fn))
            for dims in __import__("re").findall(r"'([^']*)'", text):
                assert set(dims.split()) <= allowed, (name, dims)


def test_stubs_import_without_torch_model_or_network():
    code = ("import sys; import mechgrade.student_template.lesson27.hooks, mechgrade.student_template.lesson27.sae;"
            "print('transformer_lens' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_instructions_render_for_every_exercise(lesson):
    text = render_instructions(lesson, "embedded")
    for i, exercise in enumerate(lesson.exercises, 1):
        assert f"## {i}. " in text and f"`{exercise.id}.py`" in text
        for function in exercise.functions:
            assert f"`{function.name}(" in text, function.name
    assert "**embedded** model (2 layers, 4 heads per layer" in text


def test_sections_have_one_name_and_number_everywhere(lesson, tmp_path):
    """Feedback says 'section 1, "Hooks and activation extraction"': the workspace README's heading
    and the report's say the same, and -e (one exercise) keeps the number."""
    from mechgrade.engine.results import CaseResult, GradingResult
    from mechgrade.render.html import build

    text = render_instructions(lesson, "embedded")
    for i, exercise in enumerate(lesson.exercises, 1):
        assert f"\n## {i}. {exercise.title} (`{exercise.id}.py`)\n" in text, exercise.title
    only_sae = GradingResult(lesson="lesson27", model="embedded", workspace=str(tmp_path), cases=[CaseResult(
        exercise="sae", function="sae_decode", case="public 1", number="8.4.1", visibility="public", max_score=1,
        passed=True, status="passed")])
    (view,) = build(only_sae, {})
    assert (view.number, view.title) == ([e.id for e in lesson.exercises].index("sae") + 1, "Sparse autoencoders")
