"""Compare a student's decoded output with the expected one, and say what differs.

Checks go from coarse to fine (type, length/keys, dtype, shape, NaN/inf, values) and stop
at the first difference, so the message names the real problem. Tensor positions are named
with the function's TransformerLens dimension names (``layer=1, head=2``).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel

Dims = Any  # list[str] for a tensor, a list of Dims for a tuple, None when unknown


class Verdict(BaseModel):
    passed: bool
    message: str = ""


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _shape(t: torch.Tensor, dims: list[str] | None) -> str:
    shape = "[" + ", ".join(str(s) for s in t.shape) + "]"
    if dims and len(dims) == t.dim():
        return f"{shape} ({', '.join(dims)})"
    return shape


def _kind(v: Any) -> str:
    return "a torch.Tensor" if isinstance(v, torch.Tensor) else f"a {type(v).__name__}"


def _where(index: tuple[int, ...], dims: list[str] | None) -> str:
    if dims and len(dims) == len(index):
        return ", ".join(f"{d}={i}" for d, i in zip(dims, index))
    return "index [" + ", ".join(str(i) for i in index) + "]"


def item_dims(dims: Dims, n: int) -> list:
    """Per-item dims of an ``n``-tuple output (a list of Dims), or ``n`` unknowns."""
    return dims if isinstance(dims, list) and len(dims) == n and not all(isinstance(d, str) for d in dims) else [None] * n


def compare(got: Any, expected: Any, *, atol: float, rtol: float, dims: Dims = None, path: str = "output") -> Verdict:
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return Verdict(passed=False, message=f"{path} should be a torch.Tensor of shape {_shape(expected, dims)}, got {_kind(got)}")
        return _compare_tensor(got, expected, atol=atol, rtol=rtol, dims=dims, path=path)
    if isinstance(expected, float):
        if type(got) not in (float, int) or isinstance(got, bool):
            return Verdict(passed=False, message=f"{path} should be a Python float, got {_kind(got)}")
        return _compare_tensor(torch.tensor(float(got)), torch.tensor(expected), atol=atol, rtol=rtol, dims=[], path=path)
    if isinstance(expected, (tuple, list)):
        if type(got) not in (tuple, list):
            return Verdict(passed=False, message=f"{path} should be a {type(expected).__name__} of {len(expected)}, got {_kind(got)}")
        if len(got) != len(expected):
            return Verdict(passed=False, message=f"{path} should have {len(expected)} items, got {len(got)}")
        sub = item_dims(dims, len(expected))
        for i, (g, e, d) in enumerate(zip(got, expected, sub)):
            v = compare(g, e, atol=atol, rtol=rtol, dims=d, path=f"{path}[{i}]")
            if not v.passed:
                return v
        return Verdict(passed=True)
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return Verdict(passed=False, message=f"{path} should be a dict keyed by {sorted(expected)}, got {_kind(got)}")
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        if missing or extra:
            parts = ([f"missing keys {missing}"] if missing else []) + ([f"unexpected keys {extra}"] if extra else [])
            return Verdict(passed=False, message=f"{path} has {' and '.join(parts)}")
        for k in expected:
            v = compare(got[k], expected[k], atol=atol, rtol=rtol, dims=None, path=f"{path}[{k!r}]")
            if not v.passed:
                return v
        return Verdict(passed=True)
    if got != expected or type(got) is not type(expected):
        return Verdict(passed=False, message=f"{path} is {got!r}, expected {expected!r}")
    return Verdict(passed=True)


def _compare_tensor(got: torch.Tensor, expected: torch.Tensor, *, atol: float, rtol: float, dims: list[str] | None, path: str) -> Verdict:
    if got.dtype != expected.dtype:
        return Verdict(passed=False, message=f"{path} has dtype {got.dtype}, expected {expected.dtype}")
    if got.shape != expected.shape:
        return Verdict(passed=False, message=f"{path} has shape {_shape(got, None)}, expected {_shape(expected, dims)}")
    if got.is_floating_point():
        bad = ~torch.isfinite(got) & torch.isfinite(expected)
        if bad.any():
            index = tuple(int(i) for i in torch.nonzero(bad)[0])
            return Verdict(passed=False, message=f"{path} contains {got[index].item()} at {_where(index, dims)} ({int(bad.sum())} non-finite values)")
    g, e = got.double(), expected.double()
    err = (g - e).abs()
    allowed = atol + rtol * e.abs()
    if err.numel() == 0 or bool((err <= allowed).all()):
        return Verdict(passed=True)
    worst = int(torch.argmax(err - allowed))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), got.shape)) if got.dim() else ()
    rel = float((err / e.abs().clamp_min(1e-12)).max())
    n_bad = int((err > allowed).sum())
    where = f" at {_where(index, dims)}" if index else ""
    return Verdict(passed=False, message=(
        f"{path} differs from the expected values in {n_bad} of {err.numel()} entries "
        f"(max abs error {_fmt(float(err.max()))}, max rel error {_fmt(rel)}; tolerance atol={atol:g}, rtol={rtol:g}); "
        f"largest{where}: got {_fmt(float(g[index]))}, expected {_fmt(float(e[index]))}"))
