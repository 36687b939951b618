"""Notebooks as workspaces: `start --notebook`, `check --path work.ipynb` (cells run only in the
worker, one failing cell costs only what it fails to define), and `mechgrade.check()`."""

from __future__ import annotations

import json
import linecache
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from mechgrade.cli.main import cli
from mechgrade.engine import nbexec
from mechgrade.engine.session import check_workspace
from mechgrade.errors import WorkspaceError
from mechgrade.interactive import CheckError, check, module_source
from mechgrade.notebook import SKIP_TAG, Cell, read_cells
from mechgrade.workspace import create_notebook


def public_points(lesson, *, functions=None, without=()) -> float:
    return sum(c.points for _, f, c in lesson.iter_cases()
               if (functions is None or f.name in functions) and f.name not in without)


@pytest.fixture(scope="session")
def reference_nb(lesson, tmp_path_factory) -> Path:
    return create_notebook(lesson, tmp_path_factory.mktemp("nb") / "reference.ipynb", solutions=True)


def edit(src: Path, dst: Path, changes) -> Path:
    """Copy a notebook, applying ``changes(cells)`` to its JSON cell list."""
    data = json.loads(src.read_text())
    changes(data["cells"])
    dst.write_text(json.dumps(data))
    return dst


def cell_defining(cells, name: str) -> dict:
    return next(c for c in cells if c["cell_type"] == "code" and f"def {name}(" in "".join(c["source"]))


def code(text: str, tags=()) -> dict:
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": text, "outputs": [], "execution_count": None}


# -- start --notebook -----------------------------------------------------------------------------------

def test_start_notebook_writes_a_valid_notebook_with_every_stub(lesson, tmp_path):
    runner = CliRunner()
    path = tmp_path / "work.ipynb"
    out = runner.invoke(cli, ["start", "lesson27", "--notebook", str(path)])
    assert out.exit_code == 0, out.output
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    code_text = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and SKIP_TAG not in c.metadata.get("tags", []))
    for exercise in lesson.exercises:
        for function in exercise.functions:
            assert f"def {function.name}(" in code_text
    assert "raise NotImplementedError" in code_text and "load_model" not in code_text  # the setup cell is tagged
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert len(markdown) == len(lesson.exercises) + 1 and all(e.title.split()[0] in "".join(markdown) for e in lesson.exercises)
    again = runner.invoke(cli, ["start", "lesson27", "--notebook", str(path)])
    assert again.exit_code == 2 and "exists" in again.output and "Traceback" not in again.output


# -- check --path work.ipynb ---------------------------------------------------------------------------------

def test_reference_notebook_scores_full_marks(lesson, reference_nb):
    result = check_workspace("lesson27", reference_nb)
    assert result.score == pytest.approx(public_points(lesson)) and result.all_passed, [c.feedback for c in result.cases if not c.passed]


def test_stub_notebook_scores_zero_through_the_cli(lesson, tmp_path):
    path = create_notebook(lesson, tmp_path / "stubs.ipynb")
    out = CliRunner().invoke(cli, ["check", "lesson27", "--path", str(path), "--json"])
    assert out.exit_code == 1
    data = json.loads(out.output)
    assert data["score"] == 0 and len(data["tests"]) == sum(1 for _ in lesson.iter_cases())
    assert all("is not implemented yet" in t["output"] for t in data["tests"])


def test_broken_cells_and_magics_cost_only_what_they_break(lesson, reference_nb, tmp_path):
    def break_it(cells):
        scores = cell_defining(cells, "induction_scores")  # magic and shell lines are skipped
        scores["source"] = "%matplotlib inline\n!pip install nothing\n" + "".join(scores["source"])
        prev = cell_defining(cells, "prev_token_scores")  # a syntax error: this cell defines nothing
        prev["source"] = "".join(prev["source"]).replace("def prev_token_scores(cache)", "def prev_token_scores(cache")
        encode = cell_defining(cells, "sae_encode")  # an exploratory line breaks before the def
        encode["source"] = "features = sae_encode(x, W_enc, b_enc, b_dec)\n" + "".join(encode["source"])
        hooks = cell_defining(cells, "get_activations")  # raises when called
        hooks["source"] = "".join(hooks["source"]).replace('"""\n', '"""\n    raise ValueError("boom")\n', 1)
        cells.append(code("import os\nos._exit(3)\n", tags=[SKIP_TAG]))
        cells.append(code("# mechgrade: skip\nimport os\nos._exit(4)\n"))
        cells.append(code("%%bash\nexit 1\n"))

    path = edit(reference_nb, tmp_path / "broken.ipynb", break_it)
    prev_cell = next(c.number for c in read_cells(path) if "def prev_token_scores(" in c.source)
    hooks_cell = next(c.number for c in read_cells(path) if "def get_activations(" in c.source)
    result = check_workspace("lesson27", path)
    failed = {c.function: c.feedback for c in result.cases if not c.passed}
    assert set(failed) == {"prev_token_scores", "get_activations"}
    assert result.score == pytest.approx(public_points(lesson, without=("prev_token_scores", "get_activations")))
    assert f"broken.ipynb defines no function prev_token_scores (cell {prev_cell}, line" in failed["prev_token_scores"]
    assert "SyntaxError" in failed["prev_token_scores"]
    assert f"get_activations raised: ValueError: boom (cell {hooks_cell}, line " in failed["get_activations"]


def test_top_level_cells_that_touch_the_model_cost_nothing(lesson, reference_nb, tmp_path):
    """An untagged experiment cell runs in the worker, where load_model returns the worker's own
    model: what it does to it is undone before the first case."""
    experiment = ('from mechgrade.models import load_model\nmodel = load_model("embedded")\n'
                  'model.add_hook("blocks.0.hook_resid_pre", lambda act, hook: act * 0)\n'
                  'for p in model.parameters():\n    p.data.zero_()\n')
    path = edit(reference_nb, tmp_path / "experiments.ipynb", lambda cells: cells.insert(2, code(experiment)))
    result = check_workspace("lesson27", path, exercises=("induction",))
    assert result.all_passed, [c.feedback for c in result.cases if not c.passed]


def test_a_file_that_is_not_a_notebook_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    out = CliRunner().invoke(cli, ["check", "lesson27", "--path", str(bad)])
    assert out.exit_code == 2 and "is not a notebook" in out.output and "Traceback" not in out.output
    bad.write_text(json.dumps({"nbformat": 3, "worksheets": []}))
    with pytest.raises(WorkspaceError, match="not an nbformat 4 notebook"):
        check_workspace("lesson27", bad)


def test_cells_run_apart_with_a_time_limit(tmp_path, monkeypatch):
    """The executor on its own (in this process: the test's code, not a student's)."""
    monkeypatch.setattr(nbexec, "CELL_TIMEOUT_S", 0.5)
    cells = [code("while True:\n    pass\ndef kept():\n    return 1\nnot_kept = 2\n"),
             code("undefined_name\n"),
             code("y = 3  # mechgrade: skip is only honoured on the first line\n"),
             code("def f(:\n", tags=[SKIP_TAG])]
    path = tmp_path / "t.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}))
    ns = nbexec.NotebookNamespace(path).run()
    assert ns.module.kept() == 1 and not hasattr(ns.module, "not_kept") and ns.module.y == 3
    assert "ran longer than 0.5 s" in ns.errors[1] and ns.errors[2] == "cell 2, line 1: NameError: name 'undefined_name' is not defined"
    assert set(ns.errors) == {1, 2} and ns.skipped == {4: f"tagged {SKIP_TAG}"}


def test_magic_lines_keep_line_numbers_and_docstrings():
    cell = Cell(number=1, source='%%time\n!ls\nx = 1\nfiles = !ls\ndef f():\n    """100% sure"""\n    return x\n')
    text = cell.python()
    assert text.splitlines()[2] == "x = 1" and text.splitlines()[3].strip().startswith("pass")
    assert '"""100% sure"""' in text
    assert Cell(number=1, source="%%bash\nls\n").skip_reason() == "a %%bash cell"


# -- mechgrade.check() ---------------------------------------------------------------------------------

NOTEBOOK_CELL = '''
import torch as th
from jaxtyping import Float
from torch import Tensor

QUERY_OFFSET = 1

def _average(pattern):
    return pattern.mean(dim=(0, 2))

def induction_scores(cache, seq_len: int) -> Float[Tensor, "layer head"]:
    if os.getpid() == {pid}:
        print("CALLED IN THE NOTEBOOK")
        raise RuntimeError("called in the notebook's process")
    q = th.arange(seq_len + 1, 2 * seq_len + 1)
    return th.stack([_average(cache["pattern", layer][:, :, q, q - seq_len + QUERY_OFFSET])
                     for layer in range(cache.model.cfg.n_layers)])
'''


def define_like_ipython(source: str) -> dict:
    """exec a cell the way IPython does: its source registered in linecache, so getsource works."""
    filename = "<ipython-input-7-0123456789ab>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "__main__", "os": os, "cache": object()}  # a notebook global named like the parameter
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def test_check_grades_a_notebook_function_in_the_worker_not_here(lesson, capsys):
    ns = define_like_ipython(NOTEBOOK_CELL.replace("{pid}", str(os.getpid())))
    with pytest.raises(RuntimeError):  # what calling it here would do
        ns["induction_scores"](None, 3)
    capsys.readouterr()
    import mechgrade

    result = mechgrade.check("lesson27", ns["induction_scores"])
    assert "CALLED IN THE NOTEBOOK" not in capsys.readouterr().out
    assert result.score == pytest.approx(public_points(lesson, functions={"induction_scores"})) and result.all_passed
    assert {c.function for c in result.result.cases} == {"induction_scores"}
    assert "induction_scores" in repr(result) and "PASS" in repr(result) and "<pre" not in repr(result)
    assert result._repr_html_().startswith("<pre") and "PASS" in result._repr_html_()
    assert result.not_sent == {}  # the global `cache` is not the parameter `cache`


def test_check_on_a_reference_function_and_a_wrong_one(lesson):
    from mechgrade.reference.lesson27 import sae

    assert check("lesson27", sae.sae_decode).all_passed
    ns = define_like_ipython("import torch\ndef sae_decode(f, W_dec, b_dec):\n    return f @ W_dec\n")
    wrong = check("lesson27", ns["sae_decode"])
    assert wrong.score == 0 and "FAIL" in repr(wrong)


def test_check_usage_mistakes_are_one_sentence(lesson):
    ns = define_like_ipython("def induction_score(cache, seq_len):\n    return cache\n")
    with pytest.raises(CheckError) as err:
        check("lesson27", ns["induction_score"])
    assert "has no function named induction_score; its functions are: get_activations, " in str(err.value)
    assert err.value._render_traceback_() == [f"CheckError: {err.value}"]  # IPython shows this line, no traceback
    with pytest.raises(CheckError, match="a list is neither"):
        check("lesson27", define_like_ipython("def sae_decode(f, W_dec, b_dec):\n    return f\n")["sae_decode"], [1, 2])
    with pytest.raises(CheckError, match="No lesson 'lesson99'"):
        check("lesson99", ns["induction_score"])


def test_source_closure_sends_imports_constants_helpers_and_names_the_rest():
    ns = define_like_ipython("import torch\nmodel = torch.nn.Linear(2, 2)\nSCALE = 2.0\n"
                             "def helper(x):\n    return torch.relu(x) * SCALE\n"
                             "def prev_token_scores(cache):\n    return helper(model(cache))\n")
    source, not_sent = module_source(ns["prev_token_scores"])
    assert "import torch" in source and "SCALE = 2.0" in source and "def helper(x)" in source
    assert not_sent == {"model": "Linear"}
    compile(source, "sent", "exec")
    ns = define_like_ipython("class Thing:\n    pass\ndef probe_accuracy(probe, acts, labels):\n    return Thing()\n")
    source, not_sent = module_source(ns["probe_accuracy"])  # a class IPython cannot give the source of
    assert "def probe_accuracy" in source and not_sent == {"Thing": "type, source not available"}


def test_importing_mechgrade_check_stays_torch_free():
    code = "import sys; from mechgrade import check; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
