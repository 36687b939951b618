"""The model layer: a model spec (``embedded``, ``gpt2``, a local directory) becomes a
ready ``TransformerBridge`` in compatibility mode (folded LayerNorm, centred weights, the
classic hook names), on CPU, float32, eval mode, cached per process.

``resolve`` is torch-free so the CLI can report availability without importing torch.
"""

from mechgrade.models.spec import EMBEDDED, ModelSource, available_models, resolve, spec_from_env

__all__ = ["EMBEDDED", "ModelSource", "available_models", "load_model", "resolve", "spec_from_env"]


def load_model(spec: str | None = None):
    """Return the (cached) ``TransformerBridge`` for ``spec``; see ``mechgrade.models.loader``."""
    from mechgrade.models.loader import load_model as _load

    return _load(spec)
