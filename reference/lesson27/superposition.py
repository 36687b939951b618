"""Superposition: toy models that store more features than they have dimensions (Elhage et al. 2022)."""

import torch
from jaxtyping import Float
from torch import Tensor


def generate_sparse_features(
    batch: int, n_features: int, feature_probability: float, seed: int = 0
) -> Float[Tensor, "batch feature"]:
    """Sparse inputs: each feature is present with probability `feature_probability`, and a
    present feature has a value uniform in [0, 1). Exactly this recipe, in this order:
    `g = torch.Generator().manual_seed(seed)`; `values = torch.rand((batch, n_features),
    generator=g)`; `present = torch.rand((batch, n_features), generator=g) < feature_probability`;
    return `values * present` (float32)."""
    g = torch.Generator().manual_seed(seed)
    values = torch.rand((batch, n_features), generator=g)
    present = torch.rand((batch, n_features), generator=g) < feature_probability
    return values * present


def toy_model_forward(
    x: Float[Tensor, "batch feature"], W: Float[Tensor, "d_hidden feature"], b: Float[Tensor, "feature"]
) -> Float[Tensor, "batch feature"]:
    """The toy model `relu(x @ W.T @ W + b)`: project the features down to d_hidden with W,
    back up with W.T, add the bias, ReLU. Column i of W is feature i's direction."""
    return torch.relu(x @ W.T @ W + b)


def importance_weighted_loss(
    x: Float[Tensor, "batch feature"], x_hat: Float[Tensor, "batch feature"], importance: Float[Tensor, "feature"]
) -> Float[Tensor, ""]:
    """`importance * (x - x_hat)**2`, averaged over the batch AND over features (a mean over
    every entry, not a sum over features), as a 0-dimensional tensor."""
    return (importance * (x - x_hat) ** 2).mean()


def train_toy_model(
    W: Float[Tensor, "d_hidden feature"],
    b: Float[Tensor, "feature"],
    importance: Float[Tensor, "feature"],
    feature_probability: float,
    steps: int = 1000,
    lr: float = 1e-2,
    batch: int = 256,
    seed: int = 0,
) -> tuple[Float[Tensor, "d_hidden feature"], Float[Tensor, "feature"]]:
    """Train the toy model from (copies of) W and b; the inputs are never modified.
    `torch.optim.Adam([W, b], lr=lr)`; step s (0 .. steps-1) draws
    `generate_sparse_features(batch, n_features, feature_probability, seed + s)` and takes one
    step on `importance_weighted_loss(x, toy_model_forward(x, W, b), importance)`. Returns the
    detached (W, b)."""
    W = W.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([W, b], lr=lr)
    for s in range(steps):
        x = generate_sparse_features(batch, W.shape[1], feature_probability, seed + s)
        opt.zero_grad()
        importance_weighted_loss(x, toy_model_forward(x, W, b), importance).backward()
        opt.step()
    return W.detach(), b.detach()


def feature_dimensionality(W: Float[Tensor, "d_hidden feature"]) -> Float[Tensor, "feature"]:
    """How many dimensions each feature gets: `D_i = ||W_i||^2 / sum_j (Ŵ_i · W_j)^2`, where W_i
    is column i of W and Ŵ_i = W_i / ||W_i|| (the sum runs over every j, i included). D_i is 0
    where ||W_i|| < 1e-6 (a dropped feature). Orthogonal features score 1, an antipodal pair
    1/2 each, a pentagon in 2-D 2/5 each."""
    norms = W.norm(dim=0)  # feature
    unit = W / norms.clamp_min(1e-6)
    overlaps = (unit.T @ W) ** 2  # feature feature: (Ŵ_i · W_j)^2
    dims = norms**2 / overlaps.sum(dim=1).clamp_min(1e-12)
    return torch.where(norms < 1e-6, torch.zeros_like(dims), dims)
