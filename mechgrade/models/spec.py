"""Resolve a model spec to where its weights live, without importing torch.

Spec precedence: the explicit ``--model`` value, else ``$MECHGRADE_MODEL``, else ``embedded``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mechgrade.errors import ModelUnavailable

EMBEDDED = "embedded"
EMBEDDED_DIR = Path(__file__).parent / "embedded"
# TransformerLens short names whose Hugging Face repository has another id.
HUB_ALIASES = {
    "gpt2": ("openai-community/gpt2", "gpt2"),
    "gpt2-small": ("openai-community/gpt2", "gpt2"),
    "gpt2-medium": ("openai-community/gpt2-medium", "gpt2-medium"),
    "gpt2-large": ("openai-community/gpt2-large", "gpt2-large"),
    "gpt2-xl": ("openai-community/gpt2-xl", "gpt2-xl"),
}


class ModelSource(BaseModel):
    """Where a spec's weights are: always a local directory by the time we boot."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    spec: str = Field(description="The spec as the user wrote it.")
    kind: Literal["embedded", "path", "hub"]
    directory: Path | None = Field(description="Local HF-format directory; None if it must be downloaded.")
    repo_id: str | None = None


def spec_from_env(spec: str | None = None) -> str:
    return spec or os.environ.get("MECHGRADE_MODEL") or EMBEDDED


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time (tests move it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def cached_snapshot(repo_id: str) -> Path | None:
    """The newest cached snapshot of ``repo_id`` holding a config and weights, if any."""
    snapshots = hf_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    candidates = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for snap in candidates:
        has_weights = any((snap / f).exists() for f in ("model.safetensors", "pytorch_model.bin"))
        if (snap / "config.json").exists() and has_weights:
            return snap
    return None


def hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve(spec: str | None = None, *, allow_download: bool = True) -> ModelSource:
    """Find the weights for ``spec``; raise ``ModelUnavailable`` with what to do if we can't."""
    spec = spec_from_env(spec)
    if spec == EMBEDDED:
        if not (EMBEDDED_DIR / "config.json").exists():
            raise ModelUnavailable(f"The embedded model is missing from {EMBEDDED_DIR}; reinstall mechgrade.")
        return ModelSource(spec=spec, kind="embedded", directory=EMBEDDED_DIR)
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith((".", "/", "~")):
        if not path.exists():
            raise ModelUnavailable(f"The model directory '{spec}' does not exist (resolved to {path.absolute()}); "
                                   f"give the path of a saved Hugging Face model, or --model {EMBEDDED}.")
        if not (path / "config.json").is_file():
            raise ModelUnavailable(
                f"'{spec}' is not a Hugging Face model directory (no config.json there); "
                "save one with model.save_pretrained(DIR) and tokenizer.save_pretrained(DIR)."
            )
        return ModelSource(spec=spec, kind="path", directory=path.resolve())
    for repo_id in HUB_ALIASES.get(spec, (spec,)):
        snap = cached_snapshot(repo_id)
        if snap is not None:
            return ModelSource(spec=spec, kind="hub", directory=snap, repo_id=repo_id)
    if allow_download and hub_reachable():
        return ModelSource(spec=spec, kind="hub", directory=None, repo_id=HUB_ALIASES.get(spec, (spec,))[0])
    raise ModelUnavailable(
        f"The weights of '{spec}' are not in the Hugging Face cache ({hf_cache_dir()}) and huggingface.co "
        f"cannot be reached: run once with network access to cache them, or use --model {EMBEDDED}."
    )


def provenance(spec: str, source: ModelSource) -> str:
    """'embedded (shipped with mechgrade)', 'gpt2 (Hugging Face openai-community/gpt2)', 'DIR (local directory)'."""
    kind = {"embedded": "shipped with mechgrade", "path": "local directory"}.get(source.kind, f"Hugging Face {source.repo_id}")
    return f"{spec} ({kind})"


def portable_spec(spec: str) -> str:
    """``spec`` as a process started in another folder reads it: a local directory becomes its
    absolute path (the student worker runs in its own scratch folder); other specs are unchanged."""
    path = Path(spec).expanduser()
    if spec != EMBEDDED and path.exists():
        return str(path.resolve())
    return spec


class Availability(BaseModel):
    spec: str
    available: bool
    detail: str


def available_models() -> list[Availability]:
    """What `mechgrade models` lists: the embedded model and the GPT-2 family's cache state."""
    out = []
    for spec in (EMBEDDED, "gpt2", "gpt2-medium"):
        try:
            src = resolve(spec, allow_download=False)
            out.append(Availability(spec=spec, available=True, detail=str(src.directory)))
        except ModelUnavailable:
            out.append(Availability(spec=spec, available=False, detail="not cached (needs network once)"))
    return out
