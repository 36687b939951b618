"""Activation patching with a normalized logit-difference metric."""
from typing import Callable
import torch
from jaxtyping import Float, Int
from torch import Tensor

def logit_diff(logits: Float[Tensor, 'batch pos d_vocab'], correct: Int[Tensor, 'batch'], incorrect: Int[Tensor, 'batch']) -> Float[Tensor, 'batch']:
    """At the LAST position of each prompt: logit of `correct` minus logit of `incorrect`."""
    raise NotImplementedError('TODO: implement logit_diff')

def normalized_patching_metric(logits: Float[Tensor, 'batch pos d_vocab'], correct: Int[Tensor, 'batch'], incorrect: Int[Tensor, 'batch'], clean_logit_diff: float, corrupted_logit_diff: float) -> Float[Tensor, '']:
    """(mean over the batch of logit_diff - corrupted_logit_diff) / (clean_logit_diff -
    corrupted_logit_diff): 1 on the clean run's logits, 0 on the corrupted run's."""
    raise NotImplementedError('TODO: implement normalized_patching_metric')

def patch_residual_stream(model, corrupted_tokens: Int[Tensor, 'batch pos'], clean_cache, metric: Callable[[Tensor], Tensor]) -> Float[Tensor, 'layer pos']:
    """For every layer L and position p: run the model on `corrupted_tokens` with
    `blocks.{L}.hook_resid_pre` at position p replaced by the clean run's activation there, and
    record `metric(patched_logits)`. Must agree with
    `transformer_lens.patching.get_act_patch_resid_pre`."""
    raise NotImplementedError('TODO: implement patch_residual_stream')
