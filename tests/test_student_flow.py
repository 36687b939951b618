"""A student's first hour: `check` from inside the workspace, feedback that points to where the
student works (folder README, notebook, check() cell), and failing public cases they can rerun."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mechgrade.cli.main import cli
from mechgrade.engine.mutants import Mutant, write_mutant_workspace
from mechgrade.engine.session import check_workspace
from mechgrade.spec import load_lesson
from mechgrade.workspace import create_notebook

# logit_diff doubled: a value mismatch on every case of patching.logit_diff
DOUBLED = Mutant(name="adhoc", module="patching", functions=["logit_diff"], old="return last.gather",
                 new="return 2 * last.gather", hint="")


@pytest.fixture
def runner():
    return CliRunner()


def public_points(exercise: str | None = None) -> float:
    """The public cases' points (of one exercise), from the spec: the lesson grows."""
    return sum(c.points for e, _, c in load_lesson("lesson27").iter_cases() if exercise in (None, e.id))


def _one_line(run) -> str:
    return " ".join(run.output.split())  # rich wraps long lines at the terminal width


def test_check_inside_the_workspace_grades_it(runner, tmp_path, monkeypatch):
    ws = tmp_path / "lesson27"
    assert runner.invoke(cli, ["start", "lesson27", str(ws)]).exit_code == 0
    monkeypatch.chdir(ws)
    out = runner.invoke(cli, ["check", "lesson27", "-e", "sae"])
    assert out.exit_code == 1, out.output  # the stubs: graded, not "no workspace"
    assert f"Total: 0 / {public_points('sae'):g}" in out.output and "No workspace" not in out.output and "lesson27/lesson27" not in out.output


def test_check_in_a_folder_with_one_lesson_notebook_grades_it(runner, lesson, tmp_path, monkeypatch):
    create_notebook(lesson, tmp_path / "my-work.ipynb", solutions=True)
    monkeypatch.chdir(tmp_path)
    out = runner.invoke(cli, ["check", "lesson27", "-e", "sae"])
    assert out.exit_code == 0, out.output
    assert f"Total: {public_points('sae'):g} / {public_points('sae'):g}" in out.output


def test_no_workspace_points_to_the_notebook(runner, lesson, tmp_path, monkeypatch):
    for name in ("lesson27.ipynb", "copy.ipynb"):  # two notebooks: check cannot choose
        create_notebook(lesson, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    out = runner.invoke(cli, ["check", "lesson27"])
    assert out.exit_code == 2
    assert _one_line(out) == "Error: No workspace at lesson27; to grade your notebook, pass `--path copy.ipynb` or `--path lesson27.ipynb`."
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    out = runner.invoke(cli, ["check", "lesson27"])
    assert _one_line(out) == "Error: No workspace at lesson27: create one with `mechgrade start lesson27`, or pass --path to the workspace you have."


def test_notebook_feedback_points_to_the_notebook(lesson, tmp_path):
    nb = create_notebook(lesson, tmp_path / "lesson27.ipynb")
    result = check_workspace("lesson27", nb, exercises=("sae",))
    feedback = result.cases[0].feedback
    section = [e.id for e in lesson.exercises].index("sae") + 1
    assert f'section {section}, "Sparse autoencoders", of this notebook' in feedback
    assert "`mechgrade check lesson27 --path lesson27.ipynb -e sae`, or its `check(...)` cell, rechecks just this part" in feedback
    assert "workspace README" not in feedback


def test_check_cell_feedback_points_to_the_cell():
    from mechgrade import check

    def sae_encode(x, W_enc, b_enc, b_dec):
        return x

    result = check("lesson27", sae_encode)
    feedback = result.result.cases[0].feedback
    # Called outside a Jupyter kernel (here, as from a script): no "this notebook"; the kernel's wording is
    # tested in a real kernel (test_check_kernel.py).
    assert "of the lesson's instructions (`mechgrade start lesson27` writes them); call `check(...)` again to recheck" in feedback
    assert "workspace README" not in feedback and "notebook" not in feedback
    # In a notebook the function is already defined: the rerun snippet only imports case_inputs.
    assert 'from mechgrade import case_inputs\nsae_encode(**case_inputs("lesson27", "sae.sae_encode", "public 1"))' in feedback


def test_a_failing_public_case_shows_its_inputs_and_how_to_rerun_it(tmp_path):
    ws = write_mutant_workspace("lesson27", DOUBLED, tmp_path / "ws")
    result = check_workspace("lesson27", ws, exercises=("patching",), hidden=True)
    first, hidden = (next(c for c in result.cases if c.function == "logit_diff" and c.case == label) for label in ("public 2", "hidden 1"))
    assert "This case's inputs: seq_len=8, m=5, batch=3, seed=1, corrupted=True. To rerun it yourself:" in first.feedback
    lines = first.feedback.split("To rerun it yourself:\n")[1].splitlines()[:2]
    assert lines == ['from mechgrade import case_inputs; from patching import logit_diff',
                     'logit_diff(**case_inputs("lesson27", "patching.logit_diff", "public 2"))']
    assert "inputs" not in hidden.feedback and "case_inputs" not in hidden.feedback  # hidden cases stay opaque
    # The two lines run as printed, in the workspace folder, and give the value the grader saw (twice the key's).
    code = "\n".join(line.strip() for line in lines[:1]) + f"\nout = {lines[1].strip()}\nprint(out.shape, out.dtype)"
    run = subprocess.run([sys.executable, "-c", code], cwd=ws, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "torch.Size([3]) torch.float32"


def test_case_inputs_needs_no_reference_and_refuses_hidden_cases():
    """A student bundle has no mechgrade.reference: case_inputs works without it."""
    code = ("import sys; sys.modules['mechgrade.reference'] = None\n"
            "from mechgrade import case_inputs\n"
            "args = case_inputs('lesson27', 'induction_scores', 'public 2')\n"
            "print(sorted(args), args['seq_len'])\n"
            "try:\n    case_inputs('lesson27', 'induction.induction_scores', 'hidden 1')\n"
            "except Exception as err:\n    print(err)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines() == ["['cache', 'seq_len'] 20",
                                       "induction.induction_scores [hidden 1] is a hidden case: its inputs are not shown."]


def test_workspace_readme_says_how_to_load_the_model_and_its_lines_run(tmp_path, reference_ws):
    from mechgrade.spec import load_lesson
    from mechgrade.workspace import render_instructions

    readme = render_instructions(load_lesson("lesson27"))
    block = readme.split("To experiment, load the model in Python")[1].split("\n\n")[1]
    lines = [line[4:] for line in block.splitlines()]
    assert lines[0] == "from mechgrade.models import load_model"
    code = "\n".join(lines) + "\nprint(cache['pattern', 0].shape[0], cache.model.cfg.n_layers)"
    run = subprocess.run([sys.executable, "-c", code], cwd=reference_ws, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["1", "2"]


def test_induction_docstrings_say_where_n_layers_is():
    from mechgrade.student_template.lesson27 import induction

    for fn in (induction.induction_scores, induction.prev_token_scores):
        assert "cache.model.cfg.n_layers" in fn.__doc__


def test_the_total_says_what_hidden_cases_are_still_worth(runner, reference_ws, lesson):
    out = runner.invoke(cli, ["check", "lesson27", "--path", str(reference_ws)])
    assert out.exit_code == 0, out.output
    hidden = lesson.total_points - sum(c.points for _, _, c in lesson.iter_cases())
    public = public_points()
    assert hidden > 0 and f"Total: {public:g} / {public:g} points" in out.output
    assert f"Hidden cases worth {hidden:g} more points are graded by your instructor." in _one_line(out)
    sae = runner.invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "-e", "sae"])
    sae_all = sum(c.points for e, _, c in lesson.iter_cases(hidden=True) if e.id == "sae")
    assert f"Hidden cases worth {sae_all - public_points('sae'):g} more points are graded by your instructor." in _one_line(sae)
    both = runner.invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "-e", "sae", "--hidden"])
    assert f"Total: {sae_all:g} / {sae_all:g}" in both.output and "Hidden cases worth" not in both.output


def test_a_student_bundle_spec_keeps_the_hidden_points_but_not_the_cases(lesson):
    from mechgrade.export.files import public_spec
    from mechgrade.spec import Lesson, lesson_dir, tomllib

    public = Lesson.model_validate(tomllib.loads(public_spec((lesson_dir("lesson27") / "lesson.toml").read_text(), lesson)))
    assert not any(c.visibility == "hidden" for _, _, c in public.iter_cases(hidden=True))
    everything = set(lesson.functions)
    hidden = lesson.total_points - sum(c.points for _, _, c in lesson.iter_cases())
    assert public.hidden_points_of(everything) == lesson.hidden_points_of(everything) == hidden
    assert public.hidden_points_of({"sae.sae_loss"}) == 1


def test_a_relative_model_path_reaches_the_worker(runner, reference_ws, tiny_gpt2_dir, tmp_path, monkeypatch):
    """The worker runs in its own scratch folder: `--model DIR` relative to here must still work."""
    import shutil

    shutil.copytree(tiny_gpt2_dir, tmp_path / "tiny-gpt2")
    monkeypatch.chdir(tmp_path)
    out = runner.invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "--model", "tiny-gpt2", "-e", "sae"])
    assert out.exit_code == 0, out.output
    assert f"Total: {public_points('sae'):g} / {public_points('sae'):g}" in out.output and "not your fault" not in out.output


def test_a_model_path_that_does_not_exist_says_so(runner, reference_ws):
    out = runner.invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "--model", "/nonexistent"])
    assert out.exit_code == 2
    assert _one_line(out).startswith("Error: The model directory '/nonexistent' does not exist")


def test_a_worker_that_cannot_start_is_said_once_at_the_top(runner, reference_ws, monkeypatch):
    import os

    from mechgrade.engine.runner import StudentWorker

    starts = []

    def broken_launch(self):  # an interpreter without torch, say: the worker dies while booting
        starts.append(1)
        r, w = os.pipe()
        proc = subprocess.Popen([sys.executable, "-c", "print('ModuleNotFoundError: No module named torch')"],
                                stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT, pass_fds=(w,))
        os.close(w)
        return proc, r

    monkeypatch.setattr(StudentWorker, "_launch", broken_launch)
    out = runner.invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "-e", "sae", "-e", "dla"])
    assert out.exit_code == 1
    top = _one_line(out).split(" lesson27 on model")[0]  # above the table
    assert top == "The grading worker could not start: the worker process exited. ModuleNotFoundError: No module named torch"
    assert out.output.count("could not start") == 1  # the table says ERROR per case; the reason is said once
    assert "not your fault" not in out.output and len(starts) <= 2  # tried once more at most (a boot that died), not once per case


# -- smaller messages ------------------------------------------------------------------------------

def test_a_syntax_error_is_reported_once_per_module(runner, make_ws):
    ws = make_ws({"sae.py": "import torch\n\ndef sae_encode(x, W_enc, b_enc, b_dec) :::\n    pass\n"})
    out = runner.invoke(cli, ["check", "lesson27", "--path", str(ws), "-e", "sae"])
    text = _one_line(out)
    assert "sae.py failed to import: SyntaxError: invalid syntax (sae.py, line 3)" in text
    assert text.count("line 3") == 1 and text.count("✗") == 1


def test_a_follow_on_failure_names_the_students_function_it_went_through(make_ws):
    from mechgrade.reference.lesson27 import dla

    source = Path(dla.__file__).read_text().replace("(model.W_U[:, correct] - model.W_U[:, incorrect]).T",
                                                    "(model.W_U[:, incorrect] - model.W_U[:, correct]).T")
    ws = make_ws({"dla.py": source})
    result = check_workspace("lesson27", ws, exercises=("dla",))
    attribution = next(c for c in result.cases if c.function == "component_logit_attribution")
    assert not attribution.passed
    assert ("Your component_logit_attribution went through your _final_ln, logit_diff_direction; logit_diff_direction "
            "also fails its own cases (above): fix that first, this may then pass too.") in attribution.feedback


def test_help_never_cuts_a_description(runner):
    for args in (["--help"], ["export", "--help"]):
        out = runner.invoke(cli, args)
        commands = out.output.split("Commands:")[1].strip().splitlines()
        assert commands and not any(line.rstrip().endswith("...") for line in commands), out.output


def test_inspect_of_a_missing_model_suggests_inspect_embedded(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = runner.invoke(cli, ["models", "--inspect", "gpt2"])
    assert out.exit_code == 2 and "--inspect embedded" in out.output and "--model" not in out.output


def test_loading_the_model_in_jupyter_without_ipywidgets_prints_no_warning():
    code = ("import sys, types\n"
            "ip = types.ModuleType('IPython'); ip.get_ipython = lambda: object(); sys.modules['IPython'] = ip\n"
            "sys.modules['ipykernel.zmqshell'] = types.ModuleType('ipykernel.zmqshell')  # what tqdm looks for\n"
            "from mechgrade.models import load_model\nload_model('embedded')\n")
    run = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "IProgress" not in run.stderr and "Warning" not in run.stderr, run.stderr


def test_a_numpy_return_suggests_torch_from_numpy():
    import numpy as np

    from mechgrade.engine.codec import EncodeError, encode

    with pytest.raises(EncodeError, match=r"output is a numpy.ndarray; return torch.from_numpy\(x\) instead"):
        encode(np.zeros(3))
    with pytest.raises(EncodeError, match=r"output\[0\] is a numpy.float32; return float\(x\)"):
        encode((np.float32(1.0),))


def test_an_empty_workspace_reports_missing_modules_without_waiting_for_the_worker(runner, tmp_path, monkeypatch):
    from mechgrade.engine.runner import StudentWorker

    def never(self):
        raise AssertionError("waited for the worker to boot")

    monkeypatch.setattr(StudentWorker, "_wait_ready", never)
    (tmp_path / "empty").mkdir()
    result = check_workspace("lesson27", tmp_path / "empty")
    assert len(result.cases) == sum(1 for _ in load_lesson("lesson27").iter_cases()) and all(c.status == "failed" for c in result.cases)
    assert all(c.feedback.startswith(f"{c.exercise}.py is missing from the workspace") for c in result.cases)
