"""The probe's labelled data: does the current token repeat an earlier token of its row?

Each row is BOS then random tokens in which a few segments are copied from earlier positions.
Position t is labelled 1 when token[t] already occurred earlier in the row: exactly when an
induction head at t has somewhere to look (a position whose previous token is token[t]), and so
what the model must detect before it can predict token[t+1] by copying. Read after layer 1 a
linear probe finds it (>= 90% held-out on the embedded model); after layer 0, before any
induction head has run, it cannot (close to chance), which is the point the exercise makes.
(A stricter label, "the bigram (token[t-1], token[t]) occurred before", is not what the model
computes at t and tops out near 88%.) Labels are balanced by sampling equal numbers of positives
and negatives (positions >= 2 only). Everything is derived from ``seed``; nothing is stored.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor


def continuation_tokens(d_vocab: int, bos: int, n_rows: int, seq_len: int, seed: int) -> Int[Tensor, "batch pos"]:
    gen = torch.Generator()
    gen.manual_seed(seed)
    toks = torch.randint(0, d_vocab, (n_rows, seq_len), generator=gen)
    for row in range(n_rows):
        for _ in range(3):  # three copied segments per row, random source, length and target
            length = int(torch.randint(4, 12, (1,), generator=gen))
            src = int(torch.randint(1, seq_len // 2 - length, (1,), generator=gen))
            dst = int(torch.randint(src + length, seq_len - length, (1,), generator=gen))
            toks[row, dst: dst + length] = toks[row, src: src + length].clone()
    toks[:, 0] = bos
    return toks


def repeat_labels(toks: Int[Tensor, "batch pos"]) -> Int[Tensor, "batch pos"]:
    labels = torch.zeros_like(toks)
    for row in range(toks.shape[0]):
        seen: set[int] = set()
        for t, tok in enumerate(toks[row].tolist()):
            labels[row, t] = int(t > 0 and tok in seen)
            if t > 0:
                seen.add(tok)
    return labels


# Seeds of the held-out prompts that the probe's check and the report measure a probe on: the
# training seed plus this, so no case's training prompts are ever among them.
HELDOUT_SEED_OFFSET = 1000


def probe_dataset(
    model, *, n: int, seed: int, layer: int, hook: str = "hook_resid_post", seq_len: int = 64
) -> tuple[Float[Tensor, "n d_model"], Int[Tensor, "n"]]:
    """``n`` balanced (activation, label) pairs read at ``blocks.{layer}.{hook}``."""
    n_rows = max(8, n // 8)
    toks = continuation_tokens(model.cfg.d_vocab, model.tokenizer.bos_token_id, n_rows, seq_len, seed)
    labels = repeat_labels(toks)
    name = f"blocks.{layer}.{hook}"
    with torch.no_grad():  # stop after that block: GPT-2's logits for 64 x 64 tokens would be 0.8 GB
        _, cache = model.run_with_cache(toks, names_filter=lambda x: x == name, stop_at_layer=layer + 1)
    acts = cache[name][:, 2:].reshape(-1, model.cfg.d_model)
    flat = labels[:, 2:].reshape(-1)
    gen = torch.Generator().manual_seed(seed + 1)
    pos = torch.nonzero(flat == 1)[:, 0]
    neg = torch.nonzero(flat == 0)[:, 0]
    k = min(n // 2, len(pos), len(neg))
    idx = torch.cat([pos[torch.randperm(len(pos), generator=gen)[:k]], neg[torch.randperm(len(neg), generator=gen)[:k]]])
    idx = idx[torch.randperm(len(idx), generator=gen)]
    return acts[idx].clone(), flat[idx].clone()
