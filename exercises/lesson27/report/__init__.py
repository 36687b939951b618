"""Lesson 27's HTML report: figure captions (``captions.toml``) and pictures that need the
model, run in the trusted process after grading on the student's output as plain data (decoded
tensors), never on student code. ``EXTRAS`` maps 'exercise.function' to
``fn(model, params, expected, got) -> list[Figure]``.

A subpackage, not modules beside lesson.toml: the answer key's fingerprint covers the lesson
folder's own *.py and *.toml, and captions must not invalidate the shipped key.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
import torch
from markupsafe import Markup

from mechgrade.exercises.lesson27.cases import induction_pair
from mechgrade.exercises.lesson27.datasets import probe_dataset
from mechgrade.graders.lesson27.test_probe import HELDOUT_SEED_OFFSET  # the grader's held-out prompts
from mechgrade.render.figures import Figure, bar_figure


def _is_probe(value: Any, d_model: int) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(t, torch.Tensor) for t in value)
            and tuple(value[0].shape) == (d_model,) and value[1].numel() == 1)


def probe_accuracies(model, params: dict, expected, got) -> list[Figure]:
    """Accuracy of the expected probe and of yours on the case's training prompts and on
    held-out ones: what a probe is for, beside the weights the grader compares."""
    sets = {"training prompts": params["seed"], "held-out prompts": params["seed"] + HELDOUT_SEED_OFFSET}
    data = {name: probe_dataset(model, n=params["n"], seed=seed, layer=params["layer"]) for name, seed in sets.items()}

    def accuracy(probe) -> np.ndarray:
        w, b = probe[0].float(), probe[1].float().reshape(())
        return np.array([float(((acts @ w + b > 0).long() == labels).float().mean()) for acts, labels in data.values()])

    mine = accuracy(got) if _is_probe(got, model.cfg.d_model) else None
    caption = (f"Probe accuracy (fraction classified correctly) on the {params['n']} prompts it was trained on and on "
               f"{params['n']} new ones, reading layer {params['layer']}'s residual stream.")
    return [bar_figure("probe accuracy", list(sets), accuracy(expected), mine, caption)]


def corrupted_prompt(model, params: dict, expected, got) -> list[Figure]:
    """The prompt the patching map is about, with the corrupted position marked, so that the
    map's columns read as tokens: the clean and corrupted runs differ only there."""
    _, corrupted, correct, _ = induction_pair(model, params)
    pos = 1 + params["m"]  # where the first copy's x_{m+1} was replaced
    tokens = model.tokenizer.convert_ids_to_tokens(corrupted[0].tolist())
    chips = "".join(f'<span{" class=bad" if i == pos else ""} title="pos {i}">{escape(t)}<sub>{i}</sub></span>' for i, t in enumerate(tokens))
    clean_token = model.tokenizer.convert_ids_to_tokens([int(correct[0])])[0]
    caption = (f"The corrupted prompt (batch 0): pos {pos} holds {tokens[pos]!r} where the clean prompt has {clean_token!r}, "
               "the token the last position should predict. The two runs differ only there: the map above shows in which "
               "layers patching that position (or any other) restores the clean prediction.")
    return [Figure("the corrupted prompt", [Markup(f'<p class="tokens-line">{chips}</p>')], caption)]


EXTRAS = {"probe.train_linear_probe": probe_accuracies, "patching.patch_residual_stream": corrupted_prompt}
