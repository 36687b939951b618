"""Lesson 27's extras (``mechgrade.extras``): figure captions (``captions.toml``), pictures that
need the model, the report's "your model" section and ``models --inspect``'s lines, run in the
trusted process after grading on the student's output as plain data (decoded tensors), never on
student code. ``FIGURES`` maps 'exercise.function' to ``fn(model, params, expected, got) -> list[Figure]``.

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
from mechgrade.exercises.lesson27.datasets import HELDOUT_SEED_OFFSET, probe_dataset
from mechgrade.exercises.lesson27.report.inspect import inspect  # noqa: F401  (the hook)
from mechgrade.exercises.lesson27.report.model import your_model  # noqa: F401  (the hook)
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


FIGURES = {"probe.train_linear_probe": probe_accuracies, "patching.patch_residual_stream": corrupted_prompt}


# --- circuits, superposition, SAE features ----------------------------------------------
def _head_labels(model) -> list[str]:
    return [f"L{l}H{h}" for l in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]


def _fits(value: Any, like: torch.Tensor) -> bool:
    return isinstance(value, torch.Tensor) and value.shape == like.shape and bool(torch.isfinite(value.float()).all())


def ov_copying_bars(model, params: dict, expected, got) -> list[Figure]:
    from mechgrade.render.pictures import labelled_bars

    mine = got.float().numpy() if _fits(got, expected) else None
    caption = ("OV copying per head: the fraction of the given token ids that a head, attending to the token, would "
               "promote above every other token. Copying heads (the induction head, and here the previous-token head "
               "too) are near 1; the untrained heads near 0.")
    return [labelled_bars("OV copying per head", _head_labels(model), expected.numpy(), mine, caption)]


def toy_model_arrows(model, params: dict, expected, got) -> list[Figure]:
    from mechgrade.render.pictures import feature_arrows

    W = expected[0]
    mine = got[0].float().numpy() if isinstance(got, (tuple, list)) and len(got) == 2 and _fits(got[0], W) else None
    caption = (f"The trained W's columns, one arrow per feature in the {W.shape[0]}-D hidden space (feature probability "
               f"{params['p']}). Sparse features (p = 0.05) settle into a pentagon; denser ones (p = 0.3) into antipodal pairs "
               "with one feature dropped (a near-zero arrow). Pass W to feature_dimensionality to measure it.")
    return [feature_arrows("feature directions", W.numpy(), mine, caption)]


def input_arrows(model, params: dict, expected, got) -> list[Figure]:
    from mechgrade.exercises.lesson27.cases import feature_weights
    from mechgrade.render.pictures import feature_arrows

    W = feature_weights(model, params)["W"]
    caption = ("The W this case measures (columns as arrows, 2-D cases only): features that share a direction with "
               "others get a dimensionality below 1; a zero column gets 0.")
    return [feature_arrows("the input W", W.numpy(), None, caption)]


def sae_label_bars(model, params: dict, expected, got) -> list[Figure]:
    """Correlation of every SAE feature with the label, the expected SAE's and yours, for the
    features the expected SAE ranks highest; the caption gives L0, variance explained, best |r|."""
    from mechgrade.exercises.lesson27.cases import sae_training_acts
    from mechgrade.render.pictures import labelled_bars

    acts, labels = sae_training_acts(model, params)
    y = labels.double() - labels.double().mean()

    def stats(sae) -> tuple[np.ndarray, float, float]:
        W_enc, b_enc, W_dec, b_dec = (t.double() for t in sae)
        f = torch.relu((acts.double() - b_dec) @ W_enc + b_enc)
        centred = f - f.mean(0)
        r = (centred * y[:, None]).sum(0) / (centred.norm(dim=0) * y.norm()).clamp_min(1e-12)
        resid = acts.double() - (f @ W_dec + b_dec)
        explained = 1 - float(resid.pow(2).sum() / (acts.double() - acts.double().mean(0)).pow(2).sum())
        return r.numpy(), float((f > 0).double().sum(-1).mean()), explained

    r_e, l0_e, ve_e = stats(expected)
    shaped = isinstance(got, (tuple, list)) and len(got) == 4 and all(_fits(g, e) for g, e in zip(got, expected))
    mine = stats(got) if shaped else None
    top = np.argsort(-np.abs(r_e))[:12]
    label = "this token repeats an earlier one" if params.get("source") == "probe" else "the point comes from cluster 0"
    caption = (f"Correlation of each SAE feature with the label ({label}), never shown to the SAE, for the 12 features the "
               f"expected SAE ranks highest. Expected SAE: mean L0 {l0_e:.1f} of {r_e.size} features, {ve_e:.1%} of variance "
               f"explained, best |r| {np.abs(r_e).max():.2f}.")
    if mine is not None:
        caption += f" Yours: mean L0 {mine[1]:.1f}, {mine[2]:.1%} explained, best |r| {np.abs(mine[0]).max():.2f}."
    return [labelled_bars("features vs the label", [f"#{i}" for i in top], r_e[top], mine[0][top] if mine else None, caption)]


FIGURES.update({
    "circuits.ov_copying_scores": ov_copying_bars,
    "superposition.train_toy_model": toy_model_arrows,
    "superposition.feature_dimensionality": input_arrows,
    "sae.train_sae": sae_label_bars,
})
