"""Input builders: a case's ``params`` (seeds, sizes, prompts) -> the function's keyword arguments.

Trusted lesson code. It runs twice per case, in the grading process (for the answer key) and
in the student worker (for the student's call), and is deterministic, so both sides see equal
inputs without ever shipping a tensor across the boundary. It never calls student code.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechgrade.exercises.lesson27.datasets import probe_dataset

Builder = Callable[[Any, dict[str, Any]], dict[str, Any]]
BUILDERS: dict[str, Builder] = {}


def builder(fn: Builder) -> Builder:
    BUILDERS[fn.__name__] = fn
    return fn


def repeated_tokens(model, seq_len: int, batch: int, seed: int) -> Int[Tensor, "batch pos"]:
    """The lesson's repeated random tokens (its own copy: builders never trust student code)."""
    # Written differently from the reference on purpose: students (and their code, in the
    # worker) can read this file, so it must not spell out a solution (tests/test_export.py).
    gen = torch.Generator()
    gen.manual_seed(seed)
    half = torch.randint(model.cfg.d_vocab, size=(batch, seq_len), generator=gen)
    start = half.new_full((batch, 1), model.tokenizer.bos_token_id)
    return torch.hstack((start, half.repeat(1, 2)))


def induction_pair(model, p: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(clean, corrupted, correct, incorrect) for the induction task.

    Clean: BOS, x_1..x_L, then x_1..x_m again, so the next token should be x_{m+1}.
    Corrupted: the same with the first copy's x_{m+1} replaced by another token y, so the
    induction circuit now predicts y. correct = x_{m+1}, incorrect = y.
    """
    seq_len, m, batch, seed = p["seq_len"], p["m"], p.get("batch", 1), p["seed"]
    full = repeated_tokens(model, seq_len, batch, seed)
    clean = full[:, : 1 + seq_len + m]
    correct = full[:, 1 + m].clone()
    gen = torch.Generator().manual_seed(seed + 7)
    incorrect = (correct + torch.randint(1, model.cfg.d_vocab, (batch,), generator=gen)) % model.cfg.d_vocab
    corrupted = clean.clone()
    corrupted[:, 1 + m] = incorrect
    return clean, corrupted, correct, incorrect


def _cache(model, tokens: Tensor):
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    return cache


def _logit_diff(logits: Float[Tensor, "batch pos d_vocab"], correct: Tensor, incorrect: Tensor) -> Tensor:
    final = logits[:, -1, :]
    at = lambda ids: torch.take_along_dim(final, ids.unsqueeze(-1), dim=-1).squeeze(-1)  # noqa: E731
    return at(correct) - at(incorrect)


def _tokens(model, p: dict[str, Any]) -> Int[Tensor, "batch pos"]:
    """A prompt if the case gives one, else repeated random tokens."""
    if "prompt" in p:
        return model.to_tokens(p["prompt"])
    return repeated_tokens(model, p["seq_len"], p["batch"], p["seed"])


@builder
def activations(model, p):
    return {"model": model, "tokens": _tokens(model, p), "hook_names": list(p["hook_names"])}


@builder
def repeat_args(model, p):
    return {"model": model, "seq_len": p["seq_len"], "batch": p["batch"], "seed": p["seed"]}


@builder
def induction_cache(model, p):
    return {"cache": _cache(model, repeated_tokens(model, p["seq_len"], p["batch"], p["seed"])), "seq_len": p["seq_len"]}


@builder
def pattern_cache(model, p):
    return {"cache": _cache(model, _tokens(model, p))}


@builder
def logit_diff_inputs(model, p):
    clean, corrupted, correct, incorrect = induction_pair(model, p)
    with torch.no_grad():
        logits = model(corrupted if p.get("corrupted") else clean)
    return {"logits": logits, "correct": correct, "incorrect": incorrect}


@builder
def metric_inputs(model, p):
    """Logits of a run on a half-corrupted batch, scored against the clean and corrupted runs."""
    clean, corrupted, correct, incorrect = induction_pair(model, p)
    mixed = torch.where(torch.arange(clean.shape[0])[:, None] % 2 == 0, clean, corrupted)
    with torch.no_grad():
        clean_ld = float(_logit_diff(model(clean), correct, incorrect).mean())
        corrupted_ld = float(_logit_diff(model(corrupted), correct, incorrect).mean())
        logits = model(mixed)
    return {"logits": logits, "correct": correct, "incorrect": incorrect,
            "clean_logit_diff": clean_ld, "corrupted_logit_diff": corrupted_ld}


@builder
def patching_inputs(model, p):
    clean, corrupted, correct, incorrect = induction_pair(model, p)
    with torch.no_grad():
        clean_logits, clean_cache = model.run_with_cache(clean)
        clean_ld = float(_logit_diff(clean_logits, correct, incorrect).mean())
        corrupted_ld = float(_logit_diff(model(corrupted), correct, incorrect).mean())

    def metric(logits: Float[Tensor, "batch pos d_vocab"]) -> Float[Tensor, ""]:
        return (_logit_diff(logits, correct, incorrect).mean() - corrupted_ld) / (clean_ld - corrupted_ld)

    return {"model": model, "corrupted_tokens": corrupted, "clean_cache": clean_cache, "metric": metric}


@builder
def direction_inputs(model, p):
    gen = torch.Generator().manual_seed(p["seed"])
    correct = torch.randint(0, model.cfg.d_vocab, (p["batch"],), generator=gen)
    incorrect = torch.randint(0, model.cfg.d_vocab, (p["batch"],), generator=gen)
    return {"model": model, "correct": correct, "incorrect": incorrect}


@builder
def dla_inputs(model, p):
    clean, _, correct, incorrect = induction_pair(model, p)
    return {"model": model, "cache": _cache(model, clean), "correct": correct, "incorrect": incorrect}


@builder
def probe_train_inputs(model, p):
    acts, labels = probe_dataset(model, n=p["n"], seed=p["seed"], layer=p["layer"])
    return {"acts": acts, "labels": labels, "epochs": p.get("epochs", 200), "lr": p.get("lr", 0.01)}


@builder
def probe_accuracy_inputs(model, p):
    """A class-mean-difference probe (not the student's): its accuracy is neither 0 nor 1."""
    acts, labels = probe_dataset(model, n=p["n"], seed=p["seed"], layer=p["layer"])
    mu_pos, mu_neg = acts[labels == 1].mean(0), acts[labels == 0].mean(0)
    w = mu_pos - mu_neg
    w = w / (acts @ w).std()  # logits of unit spread, so that where you threshold them matters
    b = -(w @ (mu_pos + mu_neg) / 2) + p.get("bias_shift", 0.0)
    return {"acts": acts, "labels": labels, "w": w, "b": b}


def _sae_params(model, p):
    gen = torch.Generator().manual_seed(p["seed"])
    d_model, d_sae, batch = p.get("d_model", model.cfg.d_model), p["d_sae"], p["batch"]
    if p.get("source") == "resid":
        toks = repeated_tokens(model, 16, max(1, batch // 33 + 1), p["seed"])
        x = _cache(model, toks)[f"blocks.{p.get('layer', 0)}.hook_resid_post"].reshape(-1, model.cfg.d_model)[:batch]
        d_model = model.cfg.d_model
    else:
        x = torch.randn(batch, d_model, generator=gen)
    return {
        "x": x.clone(),
        "W_enc": torch.randn(d_model, d_sae, generator=gen) / d_model**0.5,
        "b_enc": torch.randn(d_sae, generator=gen) * 0.1 - 0.05,
        "W_dec": torch.randn(d_sae, d_model, generator=gen) * torch.rand(d_sae, 1, generator=gen) / d_sae**0.5,
        "b_dec": torch.randn(d_model, generator=gen) * 0.1,
    }


@builder
def sae_encode_inputs(model, p):
    s = _sae_params(model, p)
    return {"x": s["x"], "W_enc": s["W_enc"], "b_enc": s["b_enc"], "b_dec": s["b_dec"]}


@builder
def sae_decode_inputs(model, p):
    s = _sae_params(model, p)
    f = torch.relu((s["x"] - s["b_dec"]) @ s["W_enc"] + s["b_enc"])
    return {"f": f, "W_dec": s["W_dec"], "b_dec": s["b_dec"]}


@builder
def sae_loss_inputs(model, p):
    return {**_sae_params(model, p), "l1_coeff": p["l1_coeff"]}


# --- circuits ----------------------------------------------------------------------------
@builder
def ablation_tokens(model, p):
    return {"model": model, "tokens": repeated_tokens(model, p["seq_len"], p["batch"], p["seed"])}


@builder
def composition_inputs(model, p):
    """Two [d_model, d_model] matrices: random ones of rank ``rank``, or two heads' circuits."""
    if "heads" in p:  # (layer, head) writing, (layer, head) reading with its keys
        (la, ha), (lb, hb) = p["heads"]
        return {"W_A": (model.W_V[la, ha] @ model.W_O[la, ha]).detach().clone(),
                "W_B": (model.W_K[lb, hb] @ model.W_Q[lb, hb].T).detach().clone()}
    gen = torch.Generator().manual_seed(p["seed"])
    d, r = p["d_model"], p["rank"]
    low_rank = lambda: torch.randn(d, r, generator=gen) @ torch.randn(r, d, generator=gen)  # noqa: E731
    return {"W_A": low_rank(), "W_B": low_rank()}


@builder
def layer_pair(model, p):
    return {"model": model, "layer_from": p["layer_from"], "layer_to": p["layer_to"]}


@builder
def copying_tokens(model, p):
    """Token ids 0..n-1, or ``n`` distinct ids in a random order."""
    if p.get("shuffled"):
        ids = torch.randperm(model.cfg.d_vocab, generator=torch.Generator().manual_seed(p["seed"]))[: p["n"]]
    else:
        ids = torch.arange(p["n"])
    return {"model": model, "tokens": ids}


# --- superposition -----------------------------------------------------------------------
def sparse_batch(batch: int, n: int, p: float, seed: int) -> Float[Tensor, "batch feature"]:
    """The toy model's inputs (this file's own copy of the recipe; see ``repeated_tokens``)."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    size = torch.Size([batch, n])
    magnitude, coin = torch.rand(size, generator=gen), torch.rand(size, generator=gen)
    return torch.where(coin < p, magnitude, torch.zeros(()))


def _toy_weights(p) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(p["seed"])
    W = torch.randn(p["d_hidden"], p["n_features"], generator=gen) * p.get("init_scale", 0.5)
    b = torch.randn(p["n_features"], generator=gen) * p.get("bias_scale", 0.0)
    return W, b


def _importance(p) -> Tensor:
    return p.get("importance_decay", 1.0) ** torch.arange(p["n_features"], dtype=torch.float32)


@builder
def sparse_args(model, p):
    return {"batch": p["batch"], "n_features": p["n_features"], "feature_probability": p["p"], "seed": p["seed"]}


@builder
def toy_forward_inputs(model, p):
    W, b = _toy_weights(p)
    return {"x": sparse_batch(p["batch"], p["n_features"], p["p"], p["seed"] + 100), "W": W, "b": b}


@builder
def toy_loss_inputs(model, p):
    x = sparse_batch(p["batch"], p["n_features"], p["p"], p["seed"])
    gen = torch.Generator().manual_seed(p["seed"] + 1)
    x_hat = torch.relu(x + 0.3 * torch.randn(x.shape, generator=gen))
    return {"x": x, "x_hat": x_hat, "importance": _importance(p)}


@builder
def toy_train_inputs(model, p):
    W, b = _toy_weights(p)
    return {"W": W, "b": b, "importance": _importance(p), "feature_probability": p["p"],
            "steps": p["steps"], "lr": p.get("lr", 1e-2), "batch": p.get("batch", 256), "seed": p.get("train_seed", 0)}


@builder
def feature_weights(model, p):
    W, _ = _toy_weights(p)
    for i in p.get("dropped", []):
        W[:, i] = 0.0
    return {"W": W}


# --- SAE training and features -----------------------------------------------------------
SAE_HOOK = "hook_resid_post"


def sae_training_acts(model, p) -> tuple[Float[Tensor, "batch d_model"], Int[Tensor, "batch"]]:
    """Activations to train an SAE on, and the probe's "repeats an earlier token" label.

    ``source = "probe"``: the probe exercise's balanced dataset at ``blocks.{layer}.hook_resid_post``,
    divided by one number so that the mean squared distance from the mean activation is 1 (so
    that ``l1_coeff`` means the same on any model). Otherwise: random Gaussian clusters.
    """
    if p.get("source") == "probe":
        acts, labels = probe_dataset(model, n=p["n"], seed=p["seed"], layer=p["layer"], hook=SAE_HOOK)
        spread = (acts - acts.mean(0)).pow(2).sum(-1).mean().sqrt()
        return acts / spread, labels
    gen = torch.Generator().manual_seed(p["seed"])
    centres = torch.randn(p["clusters"], p["d_model"], generator=gen)
    which = torch.randint(0, p["clusters"], (p["n"],), generator=gen)
    acts = centres[which] * torch.rand(p["n"], 1, generator=gen) + 0.05 * torch.randn(p["n"], p["d_model"], generator=gen)
    return acts, (which == 0).long()


@builder
def sae_train_inputs(model, p):
    acts, _ = sae_training_acts(model, p)
    return {"acts": acts, "d_sae": p["d_sae"], "l1_coeff": p["l1_coeff"], "steps": p["steps"], "lr": p.get("lr", 1e-3),
            "seed": p.get("train_seed", 0)}


@builder
def feature_label_inputs(model, p):
    """Non-negative, mostly-zero feature activations, some tied to the label, some dead."""
    gen = torch.Generator().manual_seed(p["seed"])
    labels = (torch.rand(p["batch"], generator=gen) < 0.4).long()
    tie = torch.randn(p["d_sae"], generator=gen)
    pre = torch.randn(p["batch"], p["d_sae"], generator=gen) + labels[:, None] * tie - 0.5
    acts = torch.relu(pre)
    acts[:, p.get("dead", [])] = 0.0
    for i in p.get("constant", []):
        acts[:, i] = 0.7
    return {"feature_acts": acts, "labels": labels}


def build(model, builder_name: str, params: dict[str, Any]) -> dict[str, Any]:
    return BUILDERS[builder_name](model, params)
