"""Activation patching with a normalized logit-difference metric."""

from typing import Callable

import torch
from jaxtyping import Float, Int
from torch import Tensor


def logit_diff(
    logits: Float[Tensor, "batch pos d_vocab"],
    correct: Int[Tensor, "batch"],
    incorrect: Int[Tensor, "batch"],
) -> Float[Tensor, "batch"]:
    """At the LAST position of each prompt: logit of `correct` minus logit of `incorrect`."""
    last = logits[:, -1, :]  # batch d_vocab
    return last.gather(-1, correct[:, None])[:, 0] - last.gather(-1, incorrect[:, None])[:, 0]


def normalized_patching_metric(
    logits: Float[Tensor, "batch pos d_vocab"],
    correct: Int[Tensor, "batch"],
    incorrect: Int[Tensor, "batch"],
    clean_logit_diff: float,
    corrupted_logit_diff: float,
) -> Float[Tensor, ""]:
    """(mean over the batch of logit_diff - corrupted_logit_diff) / (clean_logit_diff -
    corrupted_logit_diff): 1 on the clean run's logits, 0 on the corrupted run's."""
    diff = logit_diff(logits, correct, incorrect).mean()
    return (diff - corrupted_logit_diff) / (clean_logit_diff - corrupted_logit_diff)


def patch_residual_stream(
    model,
    corrupted_tokens: Int[Tensor, "batch pos"],
    clean_cache,
    metric: Callable[[Tensor], Tensor],
) -> Float[Tensor, "layer pos"]:
    """For every layer L and position p: run the model on `corrupted_tokens` with
    `blocks.{L}.hook_resid_pre` at position p replaced by the clean run's activation there, and
    record `metric(patched_logits)`. Must agree with
    `transformer_lens.patching.get_act_patch_resid_pre`."""
    n_layers, n_pos = model.cfg.n_layers, corrupted_tokens.shape[1]
    results = torch.zeros(n_layers, n_pos)
    for layer in range(n_layers):
        name = f"blocks.{layer}.hook_resid_pre"
        clean = clean_cache[name]  # batch pos d_model
        for pos in range(n_pos):

            def patch(resid: Tensor, hook, pos: int = pos, clean: Tensor = clean) -> Tensor:
                resid[:, pos, :] = clean[:, pos, :]
                return resid

            with torch.no_grad():
                logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(name, patch)])
            results[layer, pos] = metric(logits)
    return results
