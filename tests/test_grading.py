"""End to end through the worker: the reference scores full marks, stubs score zero, results
follow Gradescope's format, and catalogued mistakes get the hint that names them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from mechgrade.engine.compare import compare
from mechgrade.engine.grader import Grader, output_dims
from mechgrade.engine.key import AnswerKey
from mechgrade.engine.mutants import load_catalogue, write_mutant_workspace
from mechgrade.engine.session import check_workspace

SCHEMA = json.loads((Path(__file__).parent / "data" / "gradescope_results.schema.json").read_text())


@pytest.fixture(scope="module")
def reference_result(reference_ws, tmp_path_factory):
    path = tmp_path_factory.mktemp("results") / "results.json"
    return check_workspace("lesson27", reference_ws, hidden=True, results_path=path), path


def test_reference_scores_full_marks_on_public_and_hidden_cases(reference_result, lesson):
    result, _ = reference_result
    failed = [(c.name, c.feedback) for c in result.cases if not c.passed]
    assert not failed
    assert result.score == pytest.approx(100) == lesson.total_points
    assert {c.visibility for c in result.cases} == {"public", "hidden"}


def test_reference_passes_against_a_key_from_another_cpu(shifted_key, reference_ws, tmp_path):
    """The shipped key was computed on another CPU: every value moved within a quarter of its
    tolerance (tests/keyshift.py) still grades the reference 77/77, from check and from a plain
    pytest run in a subprocess, which must read the same key cache (not a conftest's fresh one)."""
    result = check_workspace("lesson27", reference_ws)
    assert result.all_passed, [(c.name, c.feedback) for c in result.cases if not c.passed]
    import subprocess
    import sys

    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs", "mechgrade.exercises.lesson27",
                           "--mechgrade-path", str(reference_ws), "--mechgrade-exercise", "probe", "--mechgrade-results", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_results_json_is_gradescope_format(reference_result):
    result, path = reference_result
    data = json.loads(path.read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["score"] == pytest.approx(100)
    names = [t["name"] for t in data["tests"]]
    assert "induction.induction_scores [public 2]" in names and "sae.sae_loss [hidden 1]" in names
    hidden = [t for t in data["tests"] if "[hidden" in t["name"]]
    assert hidden and all(t["visibility"] == "after_published" for t in hidden)
    assert data["tests"][0]["number"] == "1.1.1"


def test_stubs_score_zero_everywhere(stub_ws):
    result = check_workspace("lesson27", stub_ws, hidden=True)
    assert result.score == 0 and len(result.cases) == 78
    assert all("is not implemented yet" in c.feedback for c in result.cases)
    # Rendered from the lesson's feedback template: where to read up, how to recheck.
    sae = next(c for c in result.cases if c.exercise == "sae")
    assert 'section 8, "Sparse autoencoders", of your workspace README' in sae.feedback and "-e sae" in sae.feedback


def test_exercise_selection_runs_only_that_exercise(reference_ws):
    result = check_workspace("lesson27", reference_ws, exercises=("sae", "probe"))
    assert {c.exercise for c in result.cases} == {"sae", "probe"} and result.all_passed


@pytest.fixture(scope="module")
def key(lesson):
    return AnswerKey(lesson, "embedded")


MUTANTS = load_catalogue("lesson27").mutants


def test_catalogue_is_large_enough():
    by_module: dict[str, int] = {}
    for m in MUTANTS:
        by_module[m.module] = by_module.get(m.module, 0) + 1
    assert len(MUTANTS) > 24 and min(by_module.values()) >= 4, by_module


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.error], ids=lambda m: m.name)
def test_a_removed_api_is_recognised_by_its_error(mutant):
    """Mutants that do not even import (TransformerLens 4.x removed the API) are recognised by
    the worker's failure message, which the grader turns into the mutant's hint."""
    from mechgrade.engine.mutants import mutant_module

    with pytest.raises(Exception) as err:
        mutant_module("lesson27", mutant)
    message = f"{mutant.module}.py failed to import: {type(err.value).__name__}: {err.value}"
    assert load_catalogue("lesson27").error_hint(message) == mutant.hint
    assert load_catalogue("lesson27").error_hint("hooks.py failed to import: NameError: name 'x' is not defined") is None


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.name != "hooks-left-attached" and not m.error], ids=lambda m: m.name)
def test_mutant_is_caught_and_its_hint_shown(mutant, lesson, key):
    """Each hint's detector, tested with the mutant that makes exactly that mistake."""
    grader = Grader(lesson, Path("."), "embedded")
    hinted = 0
    for target in mutant.functions:
        exercise, function = lesson.functions[f"{mutant.module}.{target}"]
        dims = output_dims("lesson27", exercise.id, function.name)
        caught = 0
        for case in function.cases:
            entry = key.entry(exercise, function, case)
            if mutant.name not in entry["mutants"]:
                continue  # it raised on this case: caught by the exception itself
            got = entry["mutants"][mutant.name]
            if not compare(got, entry["expected"], atol=function.atol, rtol=function.rtol, dims=dims).passed:
                caught += 1
                shown = grader.diagnose(got, entry, function, dims)
                hinted += shown == mutant.hint
                # Where the mistake is made (the first function named), every failure names it.
                assert target != mutant.functions[0] or shown == mutant.hint, (target, case.label, shown)
        assert caught >= 1 or target != mutant.functions[0], f"{mutant.name} survives every case of {target}"
    assert hinted >= 1, f"{mutant.name}'s hint is never shown"


def test_a_different_probe_recipe_reports_held_out_accuracy(tmp_path):
    mutant = next(m for m in MUTANTS if m.name == "probe-sgd")
    ws = write_mutant_workspace("lesson27", mutant, tmp_path / "sgd")
    result = check_workspace("lesson27", ws, exercises=("probe",))
    failed = [c for c in result.cases if not c.passed]
    assert failed and all(c.function == "train_linear_probe" for c in failed)
    assert all("Held-out accuracy of your probe" in c.feedback and c.hint == mutant.hint for c in failed)


def test_shipped_key_is_current_for_the_embedded_model(lesson):
    """Regenerate with `python -m mechgrade.engine.key lesson27` after changing the lesson."""
    key = AnswerKey(lesson, "embedded")
    assert key.shipped_path.exists()
    public = {c.number for _, _, c in lesson.iter_cases()}
    assert public <= set(key.entries)


def test_a_check_with_the_shipped_key_never_boots_a_model_in_the_grading_process(reference_ws):
    import subprocess
    import sys

    code = ("import sys; from mechgrade.engine.session import check_workspace; "
            f"r = check_workspace('lesson27', {str(reference_ws)!r}, exercises=('induction',)); "
            "print(r.all_passed, 'transformer_lens' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


STRUCTURAL = [
    ("induction", "induction_scores", "    return torch.stack(scores)\n\n\ndef prev_token_scores",
     "    return torch.stack(scores).T.contiguous()\n\n\ndef prev_token_scores", "Your axes are permuted: you returned [head, layer]; expected [layer, head]."),
    ("sae", "sae_decode", "return f @ W_dec + b_dec", "return -(f @ W_dec + b_dec)", "opposite sign"),
    ("induction", "induction_scores", "    return torch.stack(scores)\n\n\ndef prev_token_scores",
     "    return 2 * torch.stack(scores)\n\n\ndef prev_token_scores", "the expected ones times 2"),
]


@pytest.mark.parametrize("module, function, old, new, needle", STRUCTURAL, ids=["transposed", "negated", "doubled"])
def test_structural_hints_end_to_end(module, function, old, new, needle, tmp_path):
    from mechgrade.engine.mutants import Mutant

    mutant = Mutant(name="adhoc", module=module, functions=[function], old=old, new=new, hint="")
    ws = write_mutant_workspace("lesson27", mutant, tmp_path / "ws")
    result = check_workspace("lesson27", ws, exercises=(module,))
    failed = [c for c in result.cases if not c.passed and c.function == function]  # callers may fail too
    assert failed and all(needle in (c.hint or "") for c in failed), [(c.name, c.hint) for c in failed]


def test_plain_pytest_on_the_graders_grades_the_same_way(reference_ws, stub_ws, tmp_path):
    """`mechgrade check` is a front end: pytest on the installed graders gives the same results."""
    import subprocess
    import sys

    for ws, score in ((reference_ws, 11.0), (stub_ws, 0.0)):
        out = tmp_path / f"{ws.name}.json"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs", "mechgrade.exercises.lesson27",
                               "--mechgrade-path", str(ws), "--mechgrade-exercise", "sae", "--mechgrade-results", str(out)],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == (0 if score else 1), proc.stdout[-2000:]
        data = json.loads(out.read_text())
        jsonschema.validate(data, SCHEMA)
        assert data["score"] == score and len(data["tests"]) == 10
