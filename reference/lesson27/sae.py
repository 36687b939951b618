"""Sparse autoencoders: encoder, decoder and the training loss."""

import torch
from jaxtyping import Float, Int
from torch import Tensor


def sae_encode(
    x: Float[Tensor, "batch d_model"],
    W_enc: Float[Tensor, "d_model d_sae"],
    b_enc: Float[Tensor, "d_sae"],
    b_dec: Float[Tensor, "d_model"],
) -> Float[Tensor, "batch d_sae"]:
    """Feature activations `relu((x - b_dec) @ W_enc + b_enc)`."""
    return torch.relu((x - b_dec) @ W_enc + b_enc)


def sae_decode(
    f: Float[Tensor, "batch d_sae"], W_dec: Float[Tensor, "d_sae d_model"], b_dec: Float[Tensor, "d_model"]
) -> Float[Tensor, "batch d_model"]:
    """Reconstruction `f @ W_dec + b_dec`."""
    return f @ W_dec + b_dec


def sae_loss(
    x: Float[Tensor, "batch d_model"],
    W_enc: Float[Tensor, "d_model d_sae"],
    b_enc: Float[Tensor, "d_sae"],
    W_dec: Float[Tensor, "d_sae d_model"],
    b_dec: Float[Tensor, "d_model"],
    l1_coeff: float,
) -> tuple[Float[Tensor, ""], Float[Tensor, ""], Float[Tensor, ""]]:
    """(total, reconstruction, sparsity): reconstruction is the batch mean of the squared error
    summed over d_model; sparsity the batch mean of sum_i |f_i| * ||W_dec[i]||_2 (decoder row
    norms, so shrinking W_enc while growing W_dec cannot fake sparsity); total is
    reconstruction + l1_coeff * sparsity."""
    f = sae_encode(x, W_enc, b_enc, b_dec)
    x_hat = sae_decode(f, W_dec, b_dec)
    reconstruction = (x_hat - x).pow(2).sum(dim=-1).mean()
    sparsity = (f.abs() * W_dec.norm(dim=-1)).sum(dim=-1).mean()
    return reconstruction + l1_coeff * sparsity, reconstruction, sparsity


def train_sae(
    acts: Float[Tensor, "batch d_model"], d_sae: int, l1_coeff: float, steps: int = 500, lr: float = 1e-3, seed: int = 0
) -> tuple[Float[Tensor, "d_model d_sae"], Float[Tensor, "d_sae"], Float[Tensor, "d_sae d_model"], Float[Tensor, "d_model"]]:
    """Train an SAE on `acts`; returns the detached (W_enc, b_enc, W_dec, b_dec).

    Initialisation, exactly: `g = torch.Generator().manual_seed(seed)`;
    `W_dec = torch.randn((d_sae, d_model), generator=g)` with each row scaled to unit L2 norm;
    `W_enc = W_dec.T` (a copy, not a view); `b_enc = 0` [d_sae]; `b_dec = acts.mean(0)`. Then
    `steps` full-batch steps of `torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=lr)` on
    `sae_loss(acts, W_enc, b_enc, W_dec, b_dec, l1_coeff)[0]` (this lesson's loss: squared error
    summed over d_model, L1 weighted by the decoder row norms; W_dec is not renormalised
    between steps).
    """
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn((d_sae, acts.shape[1]), generator=g)
    W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True)
    W_enc = W_dec.T.clone()
    b_enc = torch.zeros(d_sae)
    b_dec = acts.mean(0).clone()
    params = [p.requires_grad_(True) for p in (W_enc, b_enc, W_dec, b_dec)]
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        sae_loss(acts, *params, l1_coeff)[0].backward()
        opt.step()
    return tuple(p.detach() for p in params)


def feature_label_correlation(feature_acts: Float[Tensor, "batch d_sae"], labels: Int[Tensor, "batch"]) -> Float[Tensor, "d_sae"]:
    """Pearson correlation of each feature's activation with the 0/1 label, over the batch:
    cov(f_i, label) / (std(f_i) * std(label)). A feature that never varies (e.g. never fires)
    gets 0, not NaN."""
    varies = (feature_acts != feature_acts[:1]).any(dim=0)  # d_sae
    f = feature_acts - feature_acts.mean(0)
    y = labels.float() - labels.float().mean()
    r = (f * y[:, None]).sum(0) / (f.norm(dim=0) * y.norm()).clamp_min(1e-12)
    return torch.where(varies, r, torch.zeros_like(r))
