"""Sparse autoencoders: encoder, decoder and the training loss."""
import torch
from jaxtyping import Float, Int
from torch import Tensor

def sae_encode(x: Float[Tensor, 'batch d_model'], W_enc: Float[Tensor, 'd_model d_sae'], b_enc: Float[Tensor, 'd_sae'], b_dec: Float[Tensor, 'd_model']) -> Float[Tensor, 'batch d_sae']:
    """Feature activations `relu((x - b_dec) @ W_enc + b_enc)`."""
    raise NotImplementedError('TODO: implement sae_encode')

def sae_decode(f: Float[Tensor, 'batch d_sae'], W_dec: Float[Tensor, 'd_sae d_model'], b_dec: Float[Tensor, 'd_model']) -> Float[Tensor, 'batch d_model']:
    """Reconstruction `f @ W_dec + b_dec`."""
    raise NotImplementedError('TODO: implement sae_decode')

def sae_loss(x: Float[Tensor, 'batch d_model'], W_enc: Float[Tensor, 'd_model d_sae'], b_enc: Float[Tensor, 'd_sae'], W_dec: Float[Tensor, 'd_sae d_model'], b_dec: Float[Tensor, 'd_model'], l1_coeff: float) -> tuple[Float[Tensor, ''], Float[Tensor, ''], Float[Tensor, '']]:
    """(total, reconstruction, sparsity): reconstruction is the batch mean of the squared error
    summed over d_model; sparsity the batch mean of sum_i |f_i| * ||W_dec[i]||_2 (decoder row
    norms, so shrinking W_enc while growing W_dec cannot fake sparsity); total is
    reconstruction + l1_coeff * sparsity."""
    raise NotImplementedError('TODO: implement sae_loss')

def train_sae(acts: Float[Tensor, 'batch d_model'], d_sae: int, l1_coeff: float, steps: int=500, lr: float=0.001, seed: int=0) -> tuple[Float[Tensor, 'd_model d_sae'], Float[Tensor, 'd_sae'], Float[Tensor, 'd_sae d_model'], Float[Tensor, 'd_model']]:
    """Train an SAE on `acts`; returns the detached (W_enc, b_enc, W_dec, b_dec).

    Initialisation, exactly: `g = torch.Generator().manual_seed(seed)`;
    `W_dec = torch.randn((d_sae, d_model), generator=g)` with each row scaled to unit L2 norm;
    `W_enc = W_dec.T` (a copy, not a view); `b_enc = 0` [d_sae]; `b_dec = acts.mean(0)`. Then
    `steps` full-batch steps of `torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=lr)` on
    `sae_loss(acts, W_enc, b_enc, W_dec, b_dec, l1_coeff)[0]` (this lesson's loss: squared error
    summed over d_model, L1 weighted by the decoder row norms; W_dec is not renormalised
    between steps).
    """
    raise NotImplementedError('TODO: implement train_sae')

def feature_label_correlation(feature_acts: Float[Tensor, 'batch d_sae'], labels: Int[Tensor, 'batch']) -> Float[Tensor, 'd_sae']:
    """Pearson correlation of each feature's activation with the 0/1 label, over the batch:
    cov(f_i, label) / (std(f_i) * std(label)). A feature that never varies (e.g. never fires)
    gets 0, not NaN."""
    raise NotImplementedError('TODO: implement feature_label_correlation')
