"""What mechgrade promises of every installed lesson, whichever package it came from: run for
each lesson found through the ``mechgrade.lessons`` entry point (tests/test_authoring.py also
runs this file in a fresh environment where a lesson made with `mechgrade new` is installed).

Self-contained (no conftest fixtures), so that it can run with ``--noconftest`` anywhere."""

from __future__ import annotations

import ast
import inspect

import pytest

from mechgrade import lessons
from mechgrade.spec import load_lesson

IDS = sorted(lessons.installed())


def public_functions(module) -> dict:
    return {n: f for n, f in vars(module).items()
            if inspect.isfunction(f) and f.__module__ == module.__name__ and not n.startswith("_")}


def exercises(lesson_id: str):
    return [(lesson_id, e.id) for e in load_lesson(lesson_id).exercises]


PAIRS = [pair for lesson_id in IDS for pair in exercises(lesson_id)]


def test_discovery_finds_every_lesson_and_no_broken_one():
    assert IDS and not lessons.broken(), lessons.broken()
    for plugin in lessons.installed().values():
        # Exports carry the entry point, so its module must travel with the lesson's data package.
        assert plugin.entry_point.split(":")[0].startswith(plugin.data), plugin.entry_point
        assert plugin.origin, plugin.id


@pytest.mark.parametrize("lesson_id", IDS)
def test_spec_loads_against_its_modules_and_numbers_its_cases(lesson_id):
    lesson = load_lesson(lesson_id)
    assert lesson.id == lesson_id and lesson.total_points > 0
    for _, function in lesson.functions.values():
        visibilities = [c.visibility for c in function.cases]
        assert visibilities == sorted(visibilities, key=lambda v: v == "hidden"), f"{function.name}: hidden cases after public ones"


@pytest.mark.parametrize("lesson_id,exercise", PAIRS)
def test_stubs_match_the_reference_and_only_raise(lesson_id, exercise):
    plugin = lessons.get(lesson_id)
    ref, stub = public_functions(plugin.reference_module(exercise)), public_functions(plugin.stub_module(exercise))
    assert ref.keys() == stub.keys()
    for name, fn in stub.items():
        assert str(inspect.signature(ref[name])) == str(inspect.signature(fn)), name
        assert inspect.getdoc(ref[name]) == inspect.getdoc(fn), name
        body = ast.parse(inspect.getsource(fn)).body[0].body
        assert isinstance(body[-1], ast.Raise) and len(body) <= 2, name
        with pytest.raises(NotImplementedError):
            fn(*[None] * len(inspect.signature(fn).parameters))


@pytest.mark.parametrize("lesson_id", IDS)
def test_instructions_render_for_the_workspace_and_the_notebook(lesson_id):
    from mechgrade.workspace import render_instructions, render_section

    lesson = load_lesson(lesson_id)
    text = render_instructions(lesson, "embedded")
    assert lesson.title in text
    for exercise in lesson.exercises:
        assert f"`{exercise.id}.py`" in text, exercise.id
        for function in exercise.functions:
            assert f"`{function.name}(" in text, function.name
        assert render_section(lesson, "embedded", exercise.id).strip()
    assert render_instructions(lesson, "embedded", "notebook.md.j2").strip()


@pytest.mark.parametrize("lesson_id", IDS)
def test_every_mutant_is_one_edit_of_its_reference_on_named_functions(lesson_id):
    from mechgrade.engine.mutants import load_catalogue, mutated_source

    lesson = load_lesson(lesson_id)
    for mutant in load_catalogue(lesson_id).mutants:
        exercise = lesson.exercise(mutant.module)
        assert set(mutant.functions) <= {f.name for f in exercise.functions}, mutant.name
        assert mutant.hint.strip(), mutant.name
        mutated_source(lesson_id, mutant)  # raises unless its snippet occurs exactly once


@pytest.mark.parametrize("lesson_id", IDS)
def test_students_spec_keeps_public_case_numbers(lesson_id):
    from mechgrade.export.files import public_spec

    lesson = load_lesson(lesson_id)
    assert "visibility = \"hidden\"" not in public_spec(lessons.get(lesson_id).spec_path.read_text(), lesson)
