"""Plain-data encoding of function outputs: JSON for structure and scalars, safetensors for
tensors. Never pickle: the grading process decodes only these two formats, so nothing a
submission returns (a tensor subclass, an object with a forged ``__eq__``) can cross over.

An encoded value is ``(tree, tensors)``: ``tree`` is JSON-able and refers to tensors by key.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save


class EncodeError(TypeError):
    """The value holds something that is not plain data; ``str`` says what and where."""


def encode(value: Any, tensors: dict[str, torch.Tensor] | None = None, path: str = "output") -> tuple[Any, dict]:
    tensors = {} if tensors is None else tensors
    kind = type(value)  # exact types: subclasses of float, tuple or Tensor are refused
    if kind is torch.nn.Parameter:
        value, kind = value.detach(), torch.Tensor
    if kind is torch.Tensor:
        if value.is_sparse or value.is_complex() or value.dtype in (torch.uint16, torch.uint32, torch.uint64):
            raise EncodeError(f"{path} is a {value.dtype} {value.layout} tensor; return a dense real tensor")
        key = str(len(tensors))
        tensors[key] = value.detach().cpu().contiguous().clone()
        return {"t": "tensor", "k": key}, tensors
    if kind in (bool, int, str) or value is None:
        return {"t": kind.__name__, "v": value}, tensors
    if kind is float:
        return {"t": "float", "v": value if math.isfinite(value) else repr(value)}, tensors
    if kind in (list, tuple):
        items = [encode(v, tensors, f"{path}[{i}]")[0] for i, v in enumerate(value)]
        return {"t": kind.__name__, "items": items}, tensors
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise EncodeError(f"{path} is a dict whose keys are not all strings")
        items = [[k, encode(v, tensors, f"{path}[{k!r}]")[0]] for k, v in value.items()]
        return {"t": "dict", "items": items}, tensors
    mod = getattr(kind, "__module__", "")
    if mod == "numpy" or mod.startswith("numpy."):
        convert = "torch.from_numpy(x)" if kind.__name__ == "ndarray" else "float(x) (or int(x))"
        raise EncodeError(f"{path} is a numpy.{kind.__qualname__}; return {convert} instead: the grader compares torch tensors and Python numbers")
    raise EncodeError(f"{path} is a {mod + '.' if mod not in ('builtins', '') else ''}{kind.__qualname__}, not plain data (a torch.Tensor, float, int, str, list, tuple or dict)")


def decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    t = tree["t"]
    if t == "tensor":
        return tensors[tree["k"]]
    if t == "float":
        return float(tree["v"])
    if t in ("bool", "int", "str", "NoneType"):
        return {"bool": bool, "int": int, "str": str, "NoneType": lambda v: None}[t](tree["v"])
    if t in ("list", "tuple"):
        items = [decode(v, tensors) for v in tree["items"]]
        return items if t == "list" else tuple(items)
    if t == "dict":
        return {str(k): decode(v, tensors) for k, v in tree["items"]}
    raise ValueError(f"unknown encoded type {t!r}")


def to_bytes(tree: Any, tensors: dict[str, torch.Tensor], *, provenance: dict[str, str] | None = None) -> bytes:
    """One self-describing blob: the JSON tree rides in the safetensors metadata, and so does
    ``provenance`` (where the values were computed; answer keys record it) when given."""
    metadata = {"tree": json.dumps(tree)}
    if provenance is not None:
        metadata["provenance"] = json.dumps(provenance, sort_keys=True)
    return st_save(tensors, metadata=metadata)


def from_bytes(blob: bytes, *, with_provenance: bool = False) -> Any:
    """The value; with ``with_provenance``, ``(value, provenance)``, where ``provenance`` is the
    dict given to ``to_bytes``, or None for a blob written without one (or an unreadable one)."""
    tensors = st_load(blob)  # validates the format before we read the header ourselves
    header_len = int.from_bytes(blob[:8], "little")
    meta = json.loads(blob[8: 8 + header_len]).get("__metadata__", {})
    value = decode(json.loads(meta["tree"]), tensors)
    if not with_provenance:
        return value
    try:
        provenance = json.loads(meta["provenance"]) if "provenance" in meta else None
    except ValueError:
        provenance = None
    return value, provenance if isinstance(provenance, dict) else None
