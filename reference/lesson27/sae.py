"""Sparse autoencoders: encoder, decoder and the training loss."""

import torch
from jaxtyping import Float
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
