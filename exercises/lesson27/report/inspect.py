"""What ``mechgrade models --inspect SPEC`` prints for lesson 27: the induction circuit measured
with the lesson's own definitions, and the SAE training case's features."""

from __future__ import annotations

import torch

from mechgrade.exercises.lesson27.report.model import head_scores

SEQ_LENS = (8, 16, 32, 64)


def half_losses(model, seq_len: int, batch: int = 8, seed: int = 0, ablate: tuple[int, int] | None = None) -> tuple[float, float]:
    """Mean next-token loss on the first and the repeated half; ``ablate=(layer, head)`` zeroes
    that head's ``hook_z`` (zero-ablation)."""
    from mechgrade.reference.lesson27.induction import generate_repeated_tokens

    tokens = generate_repeated_tokens(model, seq_len, batch, seed)
    hooks = []
    if ablate is not None:
        layer, head = ablate

        def zero(z, hook):
            z[:, :, head, :] = 0.0
            return z

        hooks = [(f"blocks.{layer}.attn.hook_z", zero)]
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
    logp = logits.log_softmax(-1)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]  # batch pos-1
    # Predictions of first-half tokens 2..seq_len, and of the whole repeated half.
    return float(-logp[:, 1:seq_len].mean()), float(-logp[:, seq_len:].mean())


def inspect(model) -> list[str]:
    from mechgrade import lessons

    lessons.get("lesson27").require_reference("`mechgrade models --inspect`'s head scores")  # they use the reference
    cfg = model.cfg
    lines = []
    prev, _ = head_scores(model, 32)
    lp, hp = divmod(int(prev.argmax()), cfg.n_heads)
    lines.append(f"previous-token head: L{lp}H{hp}, score {float(prev.max()):.3f}")
    for seq_len in SEQ_LENS:
        _, ind = head_scores(model, seq_len)
        li, hi = divmod(int(ind.argmax()), cfg.n_heads)
        first, second = half_losses(model, seq_len)
        lines.append(f"seq_len {seq_len:>2}: induction head L{li}H{hi} score {float(ind.max()):.3f}; "
                     f"loss first half {first:.2f}, repeated half {second:.2f}")
    # The circuit is canonical if zeroing either head undoes the repeated half's advantage.
    first, second = half_losses(model, 32)
    for name, head in (("previous-token", (lp, hp)), ("induction", (li, hi))):
        _, ablated = half_losses(model, 32, ablate=head)
        lines.append(f"zero-ablating the {name} head L{head[0]}H{head[1]} at seq_len 32: repeated-half loss "
                     f"{second:.2f} -> {ablated:.2f} ({(ablated - second) / (first - second):.0%} of the gap to the first half)")
    lines.append(sae_summary(model))
    return lines


def sae_summary(model) -> str:
    """The lesson's SAE training case (sae.train_sae, public 1) trained with the reference:
    sparsity, reconstruction, and the feature that tracks the probe's label."""
    from mechgrade.exercises.lesson27.cases import SAE_HOOK, sae_training_acts
    from mechgrade.reference.lesson27.sae import feature_label_correlation, sae_decode, sae_encode, train_sae
    from mechgrade.spec import load_lesson

    _, function = load_lesson("lesson27").functions["sae.train_sae"]
    p = function.cases[0].params
    acts, labels = sae_training_acts(model, p)
    W_enc, b_enc, W_dec, b_dec = train_sae(acts, p["d_sae"], p["l1_coeff"], steps=p["steps"], lr=p["lr"])
    f = sae_encode(acts, W_enc, b_enc, b_dec)
    explained = 1 - float((acts - sae_decode(f, W_dec, b_dec)).pow(2).sum() / (acts - acts.mean(0)).pow(2).sum())
    r = feature_label_correlation(f, labels)
    best = int(r.abs().argmax())
    return (f"SAE on blocks.{p['layer']}.{SAE_HOOK} (the lesson's training case): mean L0 {float((f > 0).float().sum(-1).mean()):.1f} "
            f"of {p['d_sae']} features, {explained:.1%} of variance explained; feature {best} tracks the probe's "
            f"'repeats an earlier token' label at r = {float(r[best]):.2f}")
