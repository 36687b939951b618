"""Lesson 27's custom checks, named in lesson.toml (``check = "..."``); every other function is
graded by the default comparison with the answer key.

The probe's recipe (zero init, full-batch Adam, mean BCE, fixed epochs) fixes the probe, so it
is compared with the reference's; when it differs, the feedback also reports the student's
held-out accuracy beside the reference's, on prompts neither was trained on.
"""

import torch

from mechgrade.engine.grader import CaseFailed
from mechgrade.exercises.lesson27.datasets import HELDOUT_SEED_OFFSET, probe_dataset


def heldout_accuracy(grader, case, w, b) -> float:
    p = case.params
    acts, labels = probe_dataset(grader.key.model, n=p["n"], seed=p["seed"] + HELDOUT_SEED_OFFSET, layer=p["layer"])
    hits = (acts @ w + b).gt(0).to(labels.dtype).eq(labels)
    return float(hits.float().mean())


def probe_heldout(grader, exercise, function, case):
    try:
        grader.check(exercise, function, case)
    except CaseFailed as err:
        got = grader.last.value
        shaped = isinstance(got, tuple) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)
        if not shaped or got[0].shape != (grader.key.model.cfg.d_model,) or got[1].numel() != 1:
            raise
        w_ref, b_ref = grader.key.entry(exercise, function, case)["expected"]
        ours, theirs = heldout_accuracy(grader, case, got[0].float(), got[1].float()), heldout_accuracy(grader, case, w_ref, b_ref)
        raise CaseFailed(f"Held-out accuracy of your probe {ours:.3f}, of the reference's {theirs:.3f}.\n{err.feedback}", err.hint, err.rerun) from None
