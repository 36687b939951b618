"""The lesson spec: data validated at the boundary, points that add up, builders that exist."""

from __future__ import annotations

import pytest

from mechgrade.errors import SpecError, UnknownLesson
from mechgrade.exercises.lesson27.cases import BUILDERS
from mechgrade.spec import available_lessons, load_lesson


def test_lesson27_is_installed():
    assert "lesson27" in available_lessons()


def test_points_sum_to_100(lesson):
    assert lesson.total_points == pytest.approx(100)


def test_every_function_has_public_and_hidden_cases_and_a_builder(lesson):
    assert [e.id for e in lesson.exercises] == ["hooks", "induction", "circuits", "patching", "dla", "probe", "superposition", "sae"]
    for exercise in lesson.exercises:
        for function in exercise.functions:
            kinds = {c.visibility for c in function.cases}
            assert kinds == {"public", "hidden"}, function.name
            assert function.builder in BUILDERS


def test_case_numbers_and_labels_are_derived(lesson):
    _, function = lesson.functions["induction.induction_scores"]
    assert [c.label for c in function.cases] == ["public 1", "public 2", "hidden 1"]
    assert [c.number for c in function.cases] == ["2.2.1", "2.2.2", "2.2.3"]


def test_unknown_key_is_rejected_with_its_location(tmp_path):
    bad = tmp_path / "lesson.toml"
    bad.write_text('id = "x"\ntitle = "t"\ntypo = 1\nexercises = []\n')
    with pytest.raises(SpecError, match="typo"):
        load_lesson("x", spec_path=bad)


def test_invalid_toml_is_a_spec_error(tmp_path):
    bad = tmp_path / "lesson.toml"
    bad.write_text("id = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_lesson("x", spec_path=bad)


def test_unknown_lesson_names_the_available_ones():
    with pytest.raises(UnknownLesson, match="available: lesson27"):
        load_lesson("lesson99")


def test_unknown_exercise_names_the_valid_ones(lesson):
    with pytest.raises(SpecError, match="hooks, induction"):
        lesson.exercise("attention")


def test_a_function_without_a_grader_is_an_error_naming_it_not_a_smaller_total(lesson):
    """A spec function that no module defines (or whose custom check is missing) fails to load:
    before, its cases vanished from the total and validate still passed."""
    from mechgrade.spec import Lesson, _check_modules

    data = lesson.model_dump()
    extra = {"name": "forgotten", "builder": "activations", "cases": [{"points": 1, "params": {}}]}
    data["exercises"][0]["functions"].append(extra)
    with pytest.raises(SpecError, match=r"function hooks\.forgotten has no grader: its stubs module does not define it"):
        _check_modules(Lesson.model_validate(data))
    data["exercises"][0]["functions"][-1] = {**data["exercises"][0]["functions"][0], "check": "no_such_check"}
    with pytest.raises(SpecError, match=r"function hooks\.get_activations has no grader: its check 'no_such_check'"):
        _check_modules(Lesson.model_validate(data))
