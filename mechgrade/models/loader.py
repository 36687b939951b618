"""Boot a resolved model spec as a TransformerLens 4.x ``TransformerBridge``.

Compatibility mode gives HookedTransformer numerics (LayerNorm folded, weights centred) and
the hook names the lesson uses (``blocks.L.attn.hook_pattern``, ``ln_final.hook_scale``...).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import warnings
from pathlib import Path

from mechgrade.errors import ModelUnavailable
from mechgrade.models.spec import ModelSource, resolve


def _quiet_hf() -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("transformer_lens").setLevel(logging.ERROR)


def boot(source: ModelSource):
    """Boot ``source`` fresh (uncached): CPU, float32, eval mode, compatibility mode."""
    with warnings.catch_warnings():  # importing them in Jupyter without ipywidgets warns "IProgress not found"
        warnings.simplefilter("ignore")
        import torch
        from transformer_lens.model_bridge import TransformerBridge

        _quiet_hf()
    target = str(source.directory) if source.directory is not None else source.repo_id
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bridge = TransformerBridge.boot_transformers(target, device="cpu", dtype=torch.float32)
            bridge.enable_compatibility_mode()
    except (OSError, ValueError, KeyError) as err:
        raise ModelUnavailable(f"Could not load model '{source.spec}' from {target}: {err}") from err
    bridge.eval()
    return bridge


@functools.lru_cache(maxsize=4)
def _load_cached(source: ModelSource):
    return boot(source)


def load_model(spec: str | None = None):
    """The process-wide ``TransformerBridge`` for ``spec`` (booted once per process)."""
    return _load_cached(resolve(spec))


def weights_fingerprint(source: ModelSource) -> str:
    """sha256 over the weight and config files: the answer key is valid for exactly these bytes."""
    if source.directory is None:
        return f"hub:{source.repo_id}"
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        path = Path(source.directory) / name
        if path.exists():
            h.update(name.encode())
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]
