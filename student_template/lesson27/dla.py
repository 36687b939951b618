"""Direct logit attribution: which components write the answer into the residual stream."""
import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor

def logit_diff_direction(model, correct: Int[Tensor, 'batch'], incorrect: Int[Tensor, 'batch']) -> Float[Tensor, 'batch d_model']:
    """`W_U[:, correct] - W_U[:, incorrect]`, transposed to [batch, d_model]: the residual
    direction whose dot product (after the final LayerNorm) is the logit difference."""
    raise NotImplementedError('TODO: implement logit_diff_direction')

def component_logit_attribution(model, cache, correct: Int[Tensor, 'batch'], incorrect: Int[Tensor, 'batch']) -> tuple[Float[Tensor, 'component batch'], list[str]]:
    """Decompose the last position's residual stream into embed, pos_embed, then each layer's
    attention and MLP output (labels and order as `cache.decompose_resid(return_labels=True)`,
    e.g. `0_attn_out`), scale each by the final LayerNorm as `cache.apply_ln_to_stack` does, and
    dot with `logit_diff_direction`. Returns (attributions, labels)."""
    raise NotImplementedError('TODO: implement component_logit_attribution')

def head_logit_attribution(model, cache, correct: Int[Tensor, 'batch'], incorrect: Int[Tensor, 'batch']) -> Float[Tensor, 'layer head batch']:
    """The same per attention head: each head's output at the last position (`hook_z` times
    `W_O`, without the bias `b_O`), scaled by the final LayerNorm, dotted with the direction."""
    raise NotImplementedError('TODO: implement head_logit_attribution')
