"""Linear probes: is a property linearly readable from the residual stream?"""

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor


def train_linear_probe(
    acts: Float[Tensor, "n d_model"], labels: Int[Tensor, "n"], epochs: int = 200, lr: float = 0.01
) -> tuple[Float[Tensor, "d_model"], Float[Tensor, ""]]:
    """Logistic regression: w and b start at zero; `epochs` full-batch steps of
    `torch.optim.Adam(lr=lr)` on the mean binary cross-entropy of the logits `acts @ w + b`
    against `labels` (0/1). Returns the detached (w, b)."""
    w = torch.zeros(acts.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr)
    target = labels.float()
    for _ in range(epochs):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(acts @ w + b, target)
        loss.backward()
        opt.step()
    return w.detach(), b.detach()


def probe_accuracy(
    acts: Float[Tensor, "n d_model"], labels: Int[Tensor, "n"], w: Float[Tensor, "d_model"], b: Float[Tensor, ""]
) -> float:
    """The fraction of rows where the prediction `acts @ w + b > 0` equals the label, as a float."""
    return float(((acts @ w + b > 0).long() == labels).float().mean())
