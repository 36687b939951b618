"""Direct logit attribution: which components write the answer into the residual stream."""

import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor


def logit_diff_direction(
    model, correct: Int[Tensor, "batch"], incorrect: Int[Tensor, "batch"]
) -> Float[Tensor, "batch d_model"]:
    """`W_U[:, correct] - W_U[:, incorrect]`, transposed to [batch, d_model]: the residual
    direction whose dot product (after the final LayerNorm) is the logit difference."""
    return (model.W_U[:, correct] - model.W_U[:, incorrect]).T


def _final_ln(cache, stack: Float[Tensor, "component batch d_model"]) -> Float[Tensor, "component batch d_model"]:
    """Apply the final LayerNorm as a linear map (the model's folded LN): centre, then divide by
    the scale the full residual stream had at the last position."""
    scale = cache["ln_final.hook_scale"][:, -1, :]  # batch 1
    return (stack - stack.mean(dim=-1, keepdim=True)) / scale


def component_logit_attribution(
    model, cache, correct: Int[Tensor, "batch"], incorrect: Int[Tensor, "batch"]
) -> tuple[Float[Tensor, "component batch"], list[str]]:
    """Decompose the last position's residual stream into embed, pos_embed, then each layer's
    attention and MLP output (labels and order as `cache.decompose_resid(return_labels=True)`,
    e.g. `0_attn_out`), scale each by the final LayerNorm as `cache.apply_ln_to_stack` does, and
    dot with `logit_diff_direction`. Returns (attributions, labels)."""
    parts = [cache["hook_embed"][:, -1], cache["hook_pos_embed"][:, -1]]
    labels = ["embed", "pos_embed"]
    for layer in range(model.cfg.n_layers):
        parts += [cache[f"blocks.{layer}.hook_attn_out"][:, -1], cache[f"blocks.{layer}.hook_mlp_out"][:, -1]]
        labels += [f"{layer}_attn_out", f"{layer}_mlp_out"]
    stack = _final_ln(cache, torch.stack(parts))  # component batch d_model
    direction = logit_diff_direction(model, correct, incorrect)  # batch d_model
    return einops.einsum(stack, direction, "component batch d_model, batch d_model -> component batch"), labels


def head_logit_attribution(
    model, cache, correct: Int[Tensor, "batch"], incorrect: Int[Tensor, "batch"]
) -> Float[Tensor, "layer head batch"]:
    """The same per attention head: each head's output at the last position (`hook_z` times
    `W_O`, without the bias `b_O`), scaled by the final LayerNorm, dotted with the direction."""
    per_layer = []
    for layer in range(model.cfg.n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"][:, -1]  # batch head_index d_head
        per_layer.append(einops.einsum(z, model.W_O[layer], "batch head d_head, head d_head d_model -> head batch d_model"))
    stack = _final_ln(cache, torch.cat(per_layer))  # (layer head) batch d_model
    direction = logit_diff_direction(model, correct, incorrect)
    attrs = einops.einsum(stack, direction, "component batch d_model, batch d_model -> component batch")
    return einops.rearrange(attrs, "(layer head) batch -> layer head batch", layer=model.cfg.n_layers)
