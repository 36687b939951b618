"""Circuits: reverse-engineering the induction circuit (Elhage et al. 2021; Olsson et al. 2022)."""
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

def head_ablation_scores(model, tokens: Int[Tensor, 'batch pos']) -> Float[Tensor, 'layer head']:
    """How much each head matters for predicting the repeated half, by zero-ablation.

    `tokens` is BOS, seq_len tokens, then the same seq_len tokens again (as from
    `generate_repeated_tokens`), so seq_len = (pos - 1) // 2. The loss is the mean cross-entropy
    of predicting `tokens[:, -(seq_len - 1):]` from `logits[:, -seq_len:-1]` (the second copy
    after its first token, whose prediction no head can help with), averaged over batch and
    positions. `scores[L, H]` is that loss with head H of layer L zero-ablated (its
    `blocks.L.attn.hook_z` set to 0 for head_index H, at every position), minus the clean loss:
    positive where the head helps. One forward pass per head plus one clean pass.
    """
    raise NotImplementedError('TODO: implement head_ablation_scores')

def composition_score(W_A: Float[Tensor, 'd_model d_model'], W_B: Float[Tensor, 'd_model d_model']) -> float:
    """`||W_A @ W_B||_F / (||W_A||_F * ||W_B||_F)` (Frobenius norms), as a Python float: how
    much of what W_A writes, W_B reads (1 when their singular directions line up perfectly).
    Two random low-rank matrices give a small baseline (about 0.09 for heads of the embedded
    model); heads that compose score clearly above it."""
    raise NotImplementedError('TODO: implement composition_score')

def k_composition_scores(model, layer_from: int=0, layer_to: int=1) -> Float[Tensor, 'head_from head_to']:
    """K-composition of every head of `layer_from` into every head of `layer_to`.

    `scores[i, j] = composition_score(W_OV[layer_from, i], W_QK[layer_to, j].T)`, where per head
    `W_OV = W_V @ W_O` and `W_QK = W_Q @ W_K.T`, each [d_model, d_model] (read from
    `model.W_V`, `model.W_O`, `model.W_Q`, `model.W_K`, all [layer, head_index, ...]). The
    transpose puts the keys' side of W_QK next to what head i writes.
    """
    raise NotImplementedError('TODO: implement k_composition_scores')

def ov_copying_scores(model, tokens: Int[Tensor, 'n']) -> Float[Tensor, 'layer head']:
    """Per head: the fraction of the given token ids t for which the row
    `W_E[t] @ W_V @ W_O @ W_U` of the full OV circuit has its largest entry at column t (the
    head, attending to t, raises t's logit most: it copies). Only the rows of `tokens` are
    computed (all d_vocab columns), so GPT-2's 50,257-token vocabulary stays affordable. No
    LayerNorm and no biases: the weights as the model holds them (LayerNorm folded in)."""
    raise NotImplementedError('TODO: implement ov_copying_scores')
