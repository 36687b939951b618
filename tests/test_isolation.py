"""Student code runs only in the worker: every cheating or broken submission scores 0 on the
case it touches, with the intended sentence, and gains nothing anywhere else."""

from __future__ import annotations

import json
import textwrap
import time

import pytest

from mechgrade.engine.grader import CaseFailed, Grader
from mechgrade.engine.runner import StudentWorker
from mechgrade.engine.session import check_workspace
from mechgrade.workspace import module_sources

SAE_HEADER = "import torch\nfrom torch import Tensor\n"


def sae_module(encode_body: str, preamble: str = "") -> str:
    """sae.py from the reference with sae_encode's body replaced."""
    ref = module_sources(__import__("mechgrade.spec", fromlist=["load_lesson"]).load_lesson("lesson27"), solutions=True)["sae.py"]
    body = textwrap.indent(textwrap.dedent(encode_body).strip(), "    ")
    new = f"def sae_encode(x, W_enc, b_enc, b_dec):\n{body}\n\n\ndef sae_decode("
    start, end = ref.index("def sae_encode("), ref.index("def sae_decode(")
    return textwrap.dedent(preamble) + ref[:start] + new + ref[end + len("def sae_decode("):]


def grade_case(lesson, ws, target="sae.sae_encode", index=0):
    grader = Grader(lesson, ws, "embedded", mem_mb=1024)
    exercise, function = lesson.functions[target]
    try:
        grader.check(exercise, function, function.cases[index])
        return None
    except CaseFailed as err:
        return err
    finally:
        grader.close()


CHEATS = {
    "monkeypatches torch": (sae_module("return torch.zeros(x.shape[0], W_enc.shape[1])", """
        import torch, torch.testing
        torch.allclose = lambda *a, **k: True
        torch.equal = lambda *a, **k: True
        torch.testing.assert_close = lambda *a, **k: None
        """), "differs from the expected values"),
    "monkeypatches mechgrade and pytest": (sae_module("return torch.zeros(x.shape[0], W_enc.shape[1])", """
        import pytest, mechgrade.engine.compare as c
        c.compare = lambda *a, **k: c.Verdict(passed=True)
        pytest.fail = lambda *a, **k: None
        """), "differs from the expected values"),
    "sys.exit(0)": (sae_module("import sys; sys.exit(0)"), "called sys.exit(0)"),
    "os._exit(0)": (sae_module("import os; os._exit(0)"), "exited (status 0)"),
    "prints fake PASSED lines": (sae_module("print('PASSED 100/100'); import sys; sys.__stdout__.write('PASSED\\n'); return torch.zeros(1)"),
                                 "has shape [1], expected [8, 32] (batch, d_sae)\nYour code printed:\n  PASSED 100/100"),
    "returns a tensor subclass with a forged __eq__": (sae_module("""
        class Always(torch.Tensor):
            def __eq__(self, other): return True
        return torch.zeros(x.shape[0], W_enc.shape[1]).as_subclass(Always)"""), "Always, not plain data"),
    "returns an object with a forged __eq__": (sae_module("""
        class Forged:
            def __eq__(self, other): return True
        return Forged()"""), "Forged, not plain data"),
    "syntax error": ("def sae_encode(x:\n    return x\n", "failed to import: SyntaxError"),
    "import error": ("import numpy_does_not_exist\n", "No module named 'numpy_does_not_exist' (sae.py, line 1)"),
    "missing function": ("def sae_decode(f, W_dec, b_dec):\n    return f\n", "defines no function sae_encode"),
    "wrong signature": ("def sae_encode(x):\n    return x\n", "cannot be called with (x, W_enc, b_enc, b_dec)"),
    "raises": (sae_module("raise ValueError('boom')"), "raised: ValueError: boom (sae.py, line"),
    "returns NaN": (sae_module("return torch.full((x.shape[0], W_enc.shape[1]), float('nan'))"), "contains nan at batch=0, d_sae=0"),
    "wrong dtype": (sae_module("return torch.relu((x - b_dec) @ W_enc + b_enc).double()"), "dtype torch.float64, expected torch.float32"),
    "wrong shape": (sae_module("return torch.relu((x - b_dec) @ W_enc + b_enc).T"), "has shape [32, 8], expected [8, 32] (batch, d_sae)"),
    "changes the model": (sae_module("""
        import gc
        for obj in gc.get_objects():
            if type(obj).__name__ == 'TransformerBridge':
                for p in obj.parameters():
                    p.data.zero_()
        return torch.relu((x - b_dec) @ W_enc + b_enc)"""), "changed the model's weights"),
}


@pytest.mark.parametrize("name", list(CHEATS))
def test_cheating_or_broken_submission_scores_zero_with_reason(name, lesson, make_ws):
    source, needle = CHEATS[name]
    err = grade_case(lesson, make_ws({"sae.py": source}))
    assert err is not None, f"{name} passed"
    assert needle in err.feedback, err.feedback


def test_endless_loop_times_out_and_the_worker_goes_on(make_ws):
    """The worker interrupts the loop itself: no re-boot (code that defeats the interrupt is
    killed and the worker restarted: tests/test_budget.py)."""
    ws = make_ws({"sae.py": sae_module("while True: pass")})
    with StudentWorker(ws, lesson="lesson27", model_spec="embedded") as worker:
        out = worker.call("sae", "sae_encode", "sae_encode_inputs", {"batch": 2, "d_model": 4, "d_sae": 8, "seed": 0}, timeout_s=2)
        assert out.failure == "timeout" and "did not return within 2 s" in out.message
        again = worker.call("sae", "sae_decode", "sae_decode_inputs", {"batch": 2, "d_model": 4, "d_sae": 8, "seed": 0}, timeout_s=30)
        assert again.ok and worker.restarts == 0


def test_memory_blowup_is_stopped(make_ws):
    ws = make_ws({"sae.py": sae_module("big = [torch.ones(2**28) for _ in range(64)]\nreturn big[0]")})
    with StudentWorker(ws, lesson="lesson27", model_spec="embedded", mem_mb=512) as worker:
        out = worker.call("sae", "sae_encode", "sae_encode_inputs", {"batch": 2, "d_model": 4, "d_sae": 8, "seed": 0}, timeout_s=60)
    assert not out.ok and out.failure in ("exception", "crashed") and ("MemoryError" in out.message or "memory" in out.message)


def test_a_20_mb_error_message_is_cut_by_the_worker_without_a_reboot(make_ws):
    """Before, the 20 MB header was refused as garbage and the worker re-booted for every case
    (one such module cost ~4 s per case; 60 s in the autograder attack test)."""
    ws = make_ws({"sae.py": sae_module('raise ValueError("x" * 20_000_000)')})
    params = {"batch": 2, "d_model": 4, "d_sae": 8, "seed": 0}
    with StudentWorker(ws, lesson="lesson27", model_spec="embedded") as worker:
        outs = [worker.call("sae", "sae_encode", "sae_encode_inputs", params, timeout_s=30) for _ in range(2)]
        assert worker.restarts == 0
    assert all(o.failure == "exception" and o.message.startswith("sae_encode raised: ValueError: xxx") for o in outs)
    assert all(len(o.message) < 4100 and o.message.endswith("[...]") for o in outs)


def test_a_changed_model_is_restored_for_the_next_case(make_ws):
    source, _ = CHEATS["changes the model"]
    ws = make_ws({"sae.py": source})
    with StudentWorker(ws, lesson="lesson27", model_spec="embedded") as worker:
        first = worker.call("sae", "sae_encode", "sae_encode_inputs", {"batch": 2, "d_model": 4, "d_sae": 8, "seed": 0}, timeout_s=30)
        assert first.model_modified
        second = worker.call("induction", "prev_token_scores", "pattern_cache", {"seq_len": 6, "batch": 1, "seed": 0}, timeout_s=30)
        assert second.ok and not second.model_modified and float(second.value.max()) > 0.5  # the trained head is back


def test_one_crashing_module_costs_only_its_own_points(lesson, make_ws, tmp_path):
    ws = make_ws({"sae.py": "import os\nos._exit(3)\n", "hooks.py": "def get_activations(:\n"})
    results = tmp_path / "results.json"
    result = check_workspace("lesson27", ws, results_path=results)
    lost = {c.exercise for c in result.cases if not c.passed}
    assert lost == {"sae", "hooks"}
    public = sum(c.points for _, _, c in lesson.iter_cases())
    sae_hooks = sum(c.points for e, _, c in lesson.iter_cases() if e.id in ("sae", "hooks"))
    assert result.score == pytest.approx(public - sae_hooks)
    data = json.loads(results.read_text())
    assert data["score"] == pytest.approx(public - sae_hooks)
    hooks_case = next(t for t in data["tests"] if t["name"] == "hooks.get_activations [public 1]")
    assert "SyntaxError" in hooks_case["output"] and "hooks.py, line 1" in hooks_case["output"]


def test_files_written_by_the_submission_do_not_touch_the_results(lesson, make_ws, tmp_path):
    results = tmp_path / "results.json"
    forged = json.dumps({"score": 100, "tests": []})
    ws = make_ws({"sae.py": sae_module(f"open({str(results)!r}, 'w').write({forged!r}); open('results.json', 'w').write('x'); return x")})
    result = check_workspace("lesson27", ws, exercises=("sae",), results_path=results)
    data = json.loads(results.read_text())
    assert data["score"] == result.score < result.max_score
    assert not (ws / "results.json").exists()  # the worker runs in its own scratch directory


def test_a_module_that_never_finishes_importing_costs_one_time_limit(make_ws):
    """The import is probed on its own: the first case pays the time limit, later cases of the
    same module fail at once with the reason, and other modules are graded as usual."""
    ws = make_ws({"sae.py": "while True:\n    pass\n"})
    params = {"batch": 2, "d_model": 4, "d_sae": 8, "seed": 0}
    with StudentWorker(ws, lesson="lesson27", model_spec="embedded") as worker:
        first = worker.call("sae", "sae_encode", "sae_encode_inputs", params, timeout_s=2)
        assert first.failure == "timeout" and "did not finish importing within 2 s" in first.message
        start = time.monotonic()
        later = worker.call("sae", "sae_decode", "sae_decode_inputs", params, timeout_s=2)
        assert later.failure == "timeout" and "on an earlier case" in later.message and time.monotonic() - start < 0.5
        other = worker.call("hooks", "get_activations", "activations", {"seq_len": 4, "batch": 1, "seed": 0,
                                                                             "hook_names": ["blocks.0.hook_resid_post"]}, timeout_s=30)
        assert other.ok, other.message
