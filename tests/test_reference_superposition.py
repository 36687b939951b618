"""The superposition reference and SAE training against hand-built geometries and second,
differently written implementations (hand-written Adam, einsum), within the graders' tolerance."""

from __future__ import annotations

import math

import pytest
import torch

from mechgrade.exercises.lesson27 import cases
from mechgrade.reference.lesson27 import sae, superposition as sp
from mechgrade.spec import load_lesson


def tolerance(target: str) -> tuple[float, float]:
    _, function = load_lesson("lesson27").functions[target]
    return function.atol, function.rtol


def adam(params, grads_of, steps, lr, betas=(0.9, 0.999), eps=1e-8):
    """torch.optim.Adam's defaults, written out: a second implementation of the optimiser."""
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        grads = grads_of(t - 1, params)
        for k, g in enumerate(grads):
            m[k] = betas[0] * m[k] + (1 - betas[0]) * g
            v[k] = betas[1] * v[k] + (1 - betas[1]) * g * g
            step = lr * (m[k] / (1 - betas[0] ** t)) / ((v[k] / (1 - betas[1] ** t)).sqrt() + eps)
            params[k] = params[k] - step
    return params


def test_sparse_features_follow_the_recipe():
    x = sp.generate_sparse_features(50, 7, 0.2, seed=3)
    g = torch.Generator().manual_seed(3)
    values, coins = torch.rand(50, 7, generator=g), torch.rand(50, 7, generator=g)
    assert torch.equal(x, torch.where(coins < 0.2, values, 0.0)) and x.dtype == torch.float32


@pytest.mark.parametrize("W, expected", [
    (torch.eye(3), [1.0, 1.0, 1.0]),  # orthogonal
    (torch.tensor([[1.0, -1.0]]), [0.5, 0.5]),  # antipodal pair
    (torch.stack([torch.tensor([math.cos(2 * math.pi * k / 5), math.sin(2 * math.pi * k / 5)]) for k in range(5)], dim=1), [0.4] * 5),
    (torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]]), [1.0, 1.0, 0.0]),  # a dropped feature scores 0
])
def test_feature_dimensionality_on_hand_built_geometries(W, expected):
    torch.testing.assert_close(sp.feature_dimensionality(W), torch.tensor(expected), atol=1e-6, rtol=0)


def test_forward_and_loss_by_hand():
    W = torch.tensor([[1.0, 0.0, -1.0]])  # d_hidden 1, 3 features
    x = torch.tensor([[1.0, 0.5, 0.0]])
    out = sp.toy_model_forward(x, W, torch.tensor([0.0, 0.2, -0.5]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.2, 0.0]]))  # h = 1; W.T h = [1, 0, -1]
    loss = sp.importance_weighted_loss(x, out, torch.tensor([1.0, 2.0, 3.0]))
    assert float(loss) == pytest.approx((0.0 + 2 * 0.09 + 0.0) / 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_train_toy_model_agrees_with_a_second_implementation(dtype):
    atol, rtol = tolerance("superposition.train_toy_model")
    gen = torch.Generator().manual_seed(0)
    W0, b0 = torch.randn(2, 5, generator=gen) * 0.5, torch.zeros(5)
    importance = 0.9 ** torch.arange(5.0)
    W_in = W0.clone()
    W, b = sp.train_toy_model(W0, b0, importance, 0.1, steps=300, lr=1e-2, batch=64, seed=2)
    assert torch.equal(W0, W_in) and not W.requires_grad

    def grads(s, params):
        Wt, bt = (p.detach().requires_grad_() for p in params)
        g = torch.Generator().manual_seed(2 + s)
        vals, coin = torch.rand(64, 5, generator=g), torch.rand(64, 5, generator=g)
        x = (vals * (coin < 0.1).float()).to(dtype)
        h = torch.einsum("bf,hf->bh", x, Wt)
        out = torch.clamp(torch.einsum("bh,hf->bf", h, Wt) + bt, min=0)
        loss = torch.einsum("f,bf->", importance.to(dtype), (x - out) ** 2) / x.numel()
        return torch.autograd.grad(loss, [Wt, bt])

    W2, b2 = adam([W0.to(dtype), b0.to(dtype)], grads, 300, 1e-2)
    torch.testing.assert_close(W.to(dtype), W2, atol=atol / 10, rtol=rtol / 10)
    torch.testing.assert_close(b.to(dtype), b2, atol=atol / 10, rtol=rtol / 10)


def test_toy_model_learns_the_pentagon_and_antipodal_pairs():
    W0 = torch.randn(2, 5, generator=torch.Generator().manual_seed(0)) * 0.5
    W, _ = sp.train_toy_model(W0, torch.zeros(5), torch.ones(5), 0.05)
    assert ((sp.feature_dimensionality(W) - 0.4).abs() < 0.02).all()
    W, _ = sp.train_toy_model(W0, torch.zeros(5), torch.ones(5), 0.3)
    dims = sp.feature_dimensionality(W).sort().values
    assert dims[0] < 0.01 and ((dims[1:] - 0.5).abs() < 0.02).all()


def sae_second_implementation(acts, d_sae, l1_coeff, steps, lr, seed, dtype=torch.float32):
    """einsum, clamp and a hand-written Adam; in float64, it also shows that no ReLU sits so
    close to its threshold that rounding (another CPU's) could flip it and change the result."""
    g = torch.Generator().manual_seed(seed)
    dec = torch.randn(d_sae, acts.shape[1], generator=g)
    dec = (dec / torch.linalg.vector_norm(dec, dim=1, keepdim=True)).to(dtype)
    acts = acts.to(dtype)

    def grads(_, params):
        W_enc, b_enc, W_dec, b_dec = (p.detach().requires_grad_() for p in params)
        f = torch.clamp(torch.einsum("bd,ds->bs", acts - b_dec, W_enc) + b_enc, min=0)
        err = torch.einsum("bs,sd->bd", f, W_dec) + b_dec - acts
        loss = torch.einsum("bd,bd->", err, err) / len(acts) + l1_coeff * torch.einsum("bs,s->", f, torch.linalg.vector_norm(W_dec, dim=1)) / len(acts)
        return torch.autograd.grad(loss, [W_enc, b_enc, W_dec, b_dec])

    return adam([dec.T.contiguous(), torch.zeros(d_sae, dtype=dtype), dec, acts.mean(0)], grads, steps, lr)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("label", ["public 1", "public 2", "hidden 1"])
def test_train_sae_agrees_with_a_second_implementation(model, label, dtype):
    atol, rtol = tolerance("sae.train_sae")
    _, function = load_lesson("lesson27").functions["sae.train_sae"]
    (case,) = [c for c in function.cases if c.label == label]
    kwargs = cases.sae_train_inputs(model, case.params)
    ours = sae.train_sae(**kwargs)
    theirs = sae_second_implementation(kwargs["acts"], kwargs["d_sae"], kwargs["l1_coeff"], kwargs["steps"], kwargs["lr"], kwargs["seed"], dtype)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.to(dtype), b, atol=atol / 10, rtol=rtol / 10)


def sae_measurements(model, params) -> tuple[float, float, float]:
    """(mean L0, variance explained, max |r| with the repeat label) of the reference SAE
    trained on the public case's activations."""
    acts, labels = cases.sae_training_acts(model, params)
    W_enc, b_enc, W_dec, b_dec = sae.train_sae(acts, params["d_sae"], params["l1_coeff"], steps=params["steps"], lr=params["lr"])
    f = sae.sae_encode(acts, W_enc, b_enc, b_dec)
    x_hat = sae.sae_decode(f, W_dec, b_dec)
    l0 = float((f > 0).float().sum(-1).mean())
    explained = 1 - float(((acts - x_hat) ** 2).sum() / ((acts - acts.mean(0)) ** 2).sum())
    r = float(sae.feature_label_correlation(f, labels).abs().max())
    return l0, explained, r


def test_the_sae_finds_the_repeat_feature(model):
    """The lesson's claim: trained without labels, the SAE is sparse (mean L0 <= 20 of 64),
    reconstructs (>= 80% of variance) and has a feature that tracks "this token repeats an
    earlier one" (|r| >= 0.8)."""
    _, function = load_lesson("lesson27").functions["sae.train_sae"]
    l0, explained, r = sae_measurements(model, function.cases[0].params)
    assert l0 <= 20 and explained >= 0.8 and r >= 0.8, (l0, explained, r)


def test_feature_label_correlation_against_corrcoef():
    gen = torch.Generator().manual_seed(0)
    labels = (torch.rand(40, generator=gen) < 0.5).long()
    acts = torch.relu(torch.randn(40, 6, generator=gen) + labels[:, None])
    acts[:, 2] = 0.0
    acts[:, 4] = 1.5
    ours = sae.feature_label_correlation(acts, labels)
    for i in (0, 1, 3, 5):
        theirs = torch.corrcoef(torch.stack([acts[:, i], labels.float()]))[0, 1]
        assert float(ours[i]) == pytest.approx(float(theirs), abs=1e-5)
    assert float(ours[2]) == 0.0 and float(ours[4]) == 0.0
