"""Induction heads on repeated random tokens (Olsson et al. 2022)."""

import torch
from jaxtyping import Float, Int
from torch import Tensor


def generate_repeated_tokens(model, seq_len: int, batch: int = 1, seed: int = 0) -> Int[Tensor, "batch 1+2*seq_len"]:
    """The BOS token, then `seq_len` tokens drawn uniformly from the whole vocabulary, then the
    same tokens again.

    Draw exactly `torch.randint(0, model.cfg.d_vocab, (batch, seq_len),
    generator=torch.Generator().manual_seed(seed))`; the BOS id is
    `model.tokenizer.bos_token_id`. Returns int64 tokens of shape [batch, 1 + 2 * seq_len].
    """
    gen = torch.Generator().manual_seed(seed)
    half = torch.randint(0, model.cfg.d_vocab, (batch, seq_len), generator=gen)
    bos = torch.full((batch, 1), model.tokenizer.bos_token_id, dtype=half.dtype)
    return torch.cat([bos, half, half], dim=1)


def induction_scores(cache, seq_len: int) -> Float[Tensor, "layer head"]:
    """For every head, the attention from each query position q in seq_len+1 .. 2*seq_len to key
    position q - seq_len + 1 (the token after q's earlier copy), averaged over those queries and
    the batch.

    `cache` comes from `model.run_with_cache` on `generate_repeated_tokens(model, seq_len, ...)`;
    `cache["pattern", layer]` has shape [batch, head_index, query_pos, key_pos]. The cache knows
    its model: `cache.model.cfg.n_layers` layers of `cache.model.cfg.n_heads` heads each.
    """
    n_layers = cache.model.cfg.n_layers
    q = torch.arange(seq_len + 1, 2 * seq_len + 1)
    scores = [cache["pattern", layer][:, :, q, q - seq_len + 1].mean(dim=(0, 2)) for layer in range(n_layers)]
    return torch.stack(scores)


def prev_token_scores(cache) -> Float[Tensor, "layer head"]:
    """For every head, the attention from each query position q >= 1 to key position q - 1,
    averaged over those queries and the batch.

    `cache["pattern", layer]` has shape [batch, head_index, query_pos, key_pos]; there are
    `cache.model.cfg.n_layers` layers.
    """
    n_layers = cache.model.cfg.n_layers
    scores = []
    for layer in range(n_layers):
        pattern = cache["pattern", layer]  # batch head_index query_pos key_pos
        q = torch.arange(1, pattern.shape[-2])
        scores.append(pattern[:, :, q, q - 1].mean(dim=(0, 2)))
    return torch.stack(scores)
