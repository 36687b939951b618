"""The answer key is itself tested: each reference function against an independent
implementation (TransformerLens's own tools, the logits, closed forms), on the embedded
model and on a GPT-2-architecture checkpoint with random weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mechgrade.exercises.lesson27 import cases
from mechgrade.exercises.lesson27.datasets import continuation_tokens, probe_dataset, repeat_labels
from mechgrade.models import load_model
from mechgrade.reference.lesson27 import dla, hooks, induction, patching, probe, sae


@pytest.fixture(scope="module", params=["embedded", "tiny-gpt2"])
def any_model(request, tiny_gpt2_dir):
    return load_model("embedded" if request.param == "embedded" else str(tiny_gpt2_dir))


@pytest.fixture(scope="module")
def pair(any_model):
    clean, corrupted, correct, incorrect = cases.induction_pair(any_model, {"seq_len": 8, "m": 3, "batch": 3, "seed": 0})
    return clean, corrupted, correct, incorrect


def test_get_activations_equals_run_with_cache(any_model):
    tokens = induction.generate_repeated_tokens(any_model, 6, 2, 1)
    names = ["blocks.1.hook_resid_pre", "blocks.0.attn.hook_pattern", "ln_final.hook_scale"]
    got = hooks.get_activations(any_model, tokens, names)
    _, cache = any_model.run_with_cache(tokens)
    assert set(got) == set(names)
    for name in names:
        torch.testing.assert_close(got[name], cache[name])
    assert sum(len(m._forward_hooks) for m in any_model.modules() if type(m).__name__ == "HookPoint") == 0


def test_repeated_tokens_follow_the_recipe(any_model):
    toks = induction.generate_repeated_tokens(any_model, 5, 2, 3)
    half = torch.randint(0, any_model.cfg.d_vocab, (2, 5), generator=torch.Generator().manual_seed(3))
    assert toks.dtype == torch.int64 and toks.shape == (2, 11)
    assert (toks[:, 0] == any_model.tokenizer.bos_token_id).all()
    assert torch.equal(toks[:, 1:6], half) and torch.equal(toks[:, 6:], half)


def test_head_scores_against_explicit_loops(any_model):
    seq_len = 7
    toks = induction.generate_repeated_tokens(any_model, seq_len, 2, 0)
    _, cache = any_model.run_with_cache(toks)
    ind, prev = induction.induction_scores(cache, seq_len), induction.prev_token_scores(cache)
    for layer in range(any_model.cfg.n_layers):
        pat = cache["pattern", layer]
        for head in range(any_model.cfg.n_heads):
            i = sum(pat[b, head, q, q - seq_len + 1] for b in range(2) for q in range(seq_len + 1, 2 * seq_len + 1)) / (2 * seq_len)
            p = sum(pat[b, head, q, q - 1] for b in range(2) for q in range(1, 2 * seq_len + 1)) / (2 * 2 * seq_len)
            torch.testing.assert_close(ind[layer, head], i)
            torch.testing.assert_close(prev[layer, head], p)


def test_prev_token_score_agrees_with_head_detector_definition(model):
    """TransformerLens's head_detector scores a head by attention mass on a detection pattern;
    for the previous-token pattern with exclude_bos=False, exclude_current_token=False it is
    our definition plus query 0's (zero) contribution, averaged over all queries, so
    ours * (n-1)/n equals its score. Documented difference: it averages over all n queries."""
    from transformer_lens.head_detector import detect_head

    prompt = "When Mary and John went to the store, John gave a drink to"
    toks = model.to_tokens(prompt)
    _, cache = model.run_with_cache(toks)
    ours = induction.prev_token_scores(cache)
    theirs = detect_head(model, prompt, "previous_token_head", exclude_bos=False, exclude_current_token=False, error_measure="mul")
    n = toks.shape[1]
    torch.testing.assert_close(ours * (n - 1) / n, theirs.to(ours.dtype), atol=1e-5, rtol=1e-4)


def test_logit_diff_and_metric_end_points(any_model, pair):
    clean, corrupted, correct, incorrect = pair
    clean_logits, corrupted_logits = any_model(clean), any_model(corrupted)
    ld = patching.logit_diff(clean_logits, correct, incorrect)
    expect = torch.stack([clean_logits[b, -1, correct[b]] - clean_logits[b, -1, incorrect[b]] for b in range(3)])
    torch.testing.assert_close(ld, expect)
    c, k = float(ld.mean()), float(patching.logit_diff(corrupted_logits, correct, incorrect).mean())
    assert float(patching.normalized_patching_metric(clean_logits, correct, incorrect, c, k)) == pytest.approx(1.0, abs=1e-5)
    assert float(patching.normalized_patching_metric(corrupted_logits, correct, incorrect, c, k)) == pytest.approx(0.0, abs=1e-5)


def test_patch_residual_stream_equals_transformer_lens_patching(any_model):
    from transformer_lens.patching import get_act_patch_resid_pre

    kwargs = cases.patching_inputs(any_model, {"seq_len": 5, "m": 2, "batch": 2, "seed": 4})
    ours = patching.patch_residual_stream(**kwargs)
    theirs = get_act_patch_resid_pre(any_model, kwargs["corrupted_tokens"], kwargs["clean_cache"], kwargs["metric"])
    torch.testing.assert_close(ours, theirs.to(ours.dtype), atol=1e-5, rtol=1e-4)


def test_patching_finds_the_induction_circuit_on_the_embedded_model(model):
    kwargs = cases.patching_inputs(model, {"seq_len": 8, "m": 3, "batch": 4, "seed": 0})
    result = patching.patch_residual_stream(**kwargs)
    # Only the corrupted first-copy position matters, in both layers: it is where the
    # induction head at the last position looks (its previous token is the current token).
    m = 3
    assert (result[:, 1 + m] > 0.9).all()
    others = torch.cat([result[:, : 1 + m], result[:, 2 + m:]], dim=1)
    assert others.abs().max() < 0.1, result


def test_component_attribution_matches_cache_tools_and_the_logits(any_model, pair):
    clean, _, correct, incorrect = pair
    logits, cache = any_model.run_with_cache(clean)
    attrs, labels = dla.component_logit_attribution(any_model, cache, correct, incorrect)
    stack, tl_labels = cache.decompose_resid(layer=-1, pos_slice=-1, return_labels=True)
    assert labels == tl_labels
    direction = dla.logit_diff_direction(any_model, correct, incorrect)
    torch.testing.assert_close(direction, (any_model.W_U[:, correct] - any_model.W_U[:, incorrect]).T)
    theirs = cache.logit_attrs(stack, tokens=correct, incorrect_tokens=incorrect, pos_slice=-1)
    torch.testing.assert_close(attrs, theirs, atol=1e-4, rtol=1e-4)
    bias = any_model.b_U[correct] - any_model.b_U[incorrect]
    total = attrs.sum(0) + bias
    torch.testing.assert_close(total, patching.logit_diff(logits, correct, incorrect), atol=1e-3, rtol=1e-4)


def test_head_attribution_matches_stack_head_results(any_model, pair):
    clean, _, correct, incorrect = pair
    _, cache = any_model.run_with_cache(clean)
    ours = dla.head_logit_attribution(any_model, cache, correct, incorrect)
    stack = cache.stack_head_results(layer=-1, pos_slice=-1)  # (layer head) batch d_model
    theirs = cache.logit_attrs(stack, tokens=correct, incorrect_tokens=incorrect, pos_slice=-1, has_batch_dim=True)
    torch.testing.assert_close(ours, theirs.reshape(any_model.cfg.n_layers, any_model.cfg.n_heads, -1), atol=1e-4, rtol=1e-4)
    # Heads plus each layer's b_O make up the attention outputs.
    comp, _ = dla.component_logit_attribution(any_model, cache, correct, incorrect)
    attn_rows = comp[2::2]
    assert ours.sum(1).shape == attn_rows.shape


def test_probe_first_adam_step_closed_form():
    """One Adam step from zero moves every parameter by -lr * sign(gradient)."""
    gen = torch.Generator().manual_seed(0)
    acts, labels = torch.randn(50, 6, generator=gen), torch.randint(0, 2, (50,), generator=gen)
    w, b = probe.train_linear_probe(acts, labels, epochs=1, lr=0.1)
    grad_w = acts.T @ (0.5 - labels.float()) / 50
    grad_b = (0.5 - labels.float()).mean()
    torch.testing.assert_close(w, -0.1 * grad_w.sign())
    torch.testing.assert_close(b, -0.1 * grad_b.sign())


def test_probe_converges_to_a_stationary_point():
    gen = torch.Generator().manual_seed(1)
    acts = torch.randn(200, 4, generator=gen)
    labels = (acts @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.3 * torch.randn(200, generator=gen) > 0).long()
    w, b = probe.train_linear_probe(acts, labels, epochs=2000, lr=0.05)
    w.requires_grad_(), b.requires_grad_()
    F.binary_cross_entropy_with_logits(acts @ w + b, labels.float()).backward()
    assert w.grad.abs().max() < 1e-3 and b.grad.abs() < 1e-3
    assert probe.probe_accuracy(acts, labels, w.detach(), b.detach()) > 0.9


def test_probe_accuracy_by_counting():
    acts = torch.tensor([[1.0], [-1.0], [2.0], [-3.0]])
    labels = torch.tensor([1, 1, 0, 0])
    assert probe.probe_accuracy(acts, labels, torch.tensor([1.0]), torch.tensor(0.0)) == 0.5
    assert type(probe.probe_accuracy(acts, labels, torch.tensor([1.0]), torch.tensor(0.0))) is float


def test_repeat_labels_by_hand():
    toks = torch.tensor([[9, 1, 2, 3, 1, 2, 4, 2, 9]])
    assert repeat_labels(toks)[0].tolist() == [0, 0, 0, 0, 1, 1, 0, 1, 0]  # BOS at 0 does not count
    t = continuation_tokens(512, 511, 4, 64, seed=0)
    assert t.shape == (4, 64) and (t[:, 0] == 511).all()


def test_probe_reads_the_repeat_feature_and_not_shuffled_labels(model):
    """The lesson's claim: >= 90% held-out after layer 1, chance on shuffled labels, and near
    chance after layer 0, before the induction head has run."""
    acts, labels = probe_dataset(model, n=1024, seed=0, layer=1)
    test_acts, test_labels = probe_dataset(model, n=1024, seed=1000, layer=1)
    w, b = probe.train_linear_probe(acts, labels)
    assert probe.probe_accuracy(test_acts, test_labels, w, b) >= 0.9
    # Control task: labels shuffled (train and held-out alike) carry no information, and the
    # same recipe cannot predict them on new prompts.
    gen = torch.Generator().manual_seed(0)
    shuffled = labels[torch.randperm(len(labels), generator=gen)]
    test_shuffled = test_labels[torch.randperm(len(test_labels), generator=gen)]
    w, b = probe.train_linear_probe(acts, shuffled)
    assert abs(probe.probe_accuracy(test_acts, test_shuffled, w, b) - 0.5) < 0.08
    acts0, labels0 = probe_dataset(model, n=1024, seed=0, layer=0)
    test0, test_labels0 = probe_dataset(model, n=1024, seed=1000, layer=0)
    w, b = probe.train_linear_probe(acts0, labels0)
    assert probe.probe_accuracy(test0, test_labels0, w, b) < 0.7


def test_sae_closed_forms():
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    W_enc = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0]])  # d_model d_sae
    b_enc = torch.tensor([0.0, -1.0, 0.5])
    b_dec = torch.tensor([1.0, 0.0])
    W_dec = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 4.0]])  # row norms 2, 1, 5
    f = sae.sae_encode(x, W_enc, b_enc, b_dec)
    # x - b_dec = [[0, 2], [2, -1]] -> pre = [[0, 1, 2.5], [2, -2, -2.5]] -> relu
    torch.testing.assert_close(f, torch.tensor([[0.0, 1.0, 2.5], [2.0, 0.0, 0.0]]))
    x_hat = sae.sae_decode(f, W_dec, b_dec)
    torch.testing.assert_close(x_hat, torch.tensor([[1 + 7.5, 1 + 10.0], [1 + 4.0, 0.0]]))
    total, recon, sparsity = sae.sae_loss(x, W_enc, b_enc, W_dec, b_dec, l1_coeff=0.1)
    # squared errors summed over d_model: (7.5^2 + 9^2) and (2^2 + 1^2); batch mean
    assert float(recon) == pytest.approx((7.5**2 + 9**2 + 2**2 + 1**2) / 2)
    # sum_i |f_i| ||W_dec[i]||: row 0: 1*1 + 2.5*5 = 13.5; row 1: 2*2 = 4; mean 8.75
    assert float(sparsity) == pytest.approx(8.75)
    assert float(total) == pytest.approx(float(recon) + 0.875)
