"""Compare a student's decoded output with the expected one, and say what differs.

Checks go from coarse to fine (type, length/keys, dtype, shape, NaN/inf, values) and stop
at the first difference, so the message names the real problem. Tensor positions are named
with the function's TransformerLens dimension names (``layer=1, head=2``).
"""

from __future__ import annotations

import itertools
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
        sub = dims if isinstance(dims, list) and len(dims) == len(expected) and not all(isinstance(d, str) for d in dims) else [None] * len(expected)
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


POSITION_DIMS = ("pos", "query_pos", "key_pos")


def _close(a: torch.Tensor, b: torch.Tensor, atol: float, rtol: float) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol))


def _activation_dims(name: str, t: torch.Tensor) -> list[str] | None:
    """TransformerLens's layout of an activation, from its hook name (for dict outputs)."""
    if name.endswith(("hook_pattern", "hook_attn_scores")) and t.dim() == 4:
        return ["batch", "head_index", "query_pos", "key_pos"]
    if t.dim() >= 2:
        return ["batch", "pos"] + [f"axis {i}" for i in range(2, t.dim())]
    return None


def structural_hint(got: Any, expected: Any, *, atol: float, rtol: float, dims: Dims = None) -> str | None:
    """Mistakes recognisable from the expected output alone, without a catalogue: permuted or
    swapped axes, a shift along a position axis, a sign, a complement (1 - expected), a constant
    factor, all zeros, NaN where a 0 was due, and integer outputs with the right structure but a
    different random draw. Tuples and dicts are searched item by item."""
    if isinstance(expected, (tuple, list)) and isinstance(got, (tuple, list)) and len(got) == len(expected):
        sub = dims if isinstance(dims, list) and len(dims) == len(expected) and not all(isinstance(d, str) for d in dims) else [None] * len(expected)
        for i, (g, e, d) in enumerate(zip(got, expected, sub)):
            if not compare(g, e, atol=atol, rtol=rtol, dims=d).passed:
                hint = structural_hint(g, e, atol=atol, rtol=rtol, dims=d)
                return f"output[{i}]: {hint}" if hint else None
        return None
    if isinstance(expected, dict) and isinstance(got, dict) and set(got) != set(expected):
        missing = [k for k in expected if k not in got]
        return (f"Your dict lacks {len(missing)} of the {len(expected)} requested keys: return one entry per name you were given, "
                "keyed by exactly that name." if missing else "Your dict has keys nobody asked for: return only the requested names.")
    if isinstance(expected, dict) and isinstance(got, dict):
        for k, e in expected.items():
            if isinstance(e, torch.Tensor) and not compare(got[k], e, atol=atol, rtol=rtol).passed:
                hint = structural_hint(got[k], e, atol=atol, rtol=rtol, dims=_activation_dims(str(k), e))
                return f"[{k!r}]: {hint}" if hint else None
        return None
    if isinstance(expected, float) and type(got) in (float, int):
        got, expected, dims = torch.tensor(float(got), dtype=torch.float64), torch.tensor(expected, dtype=torch.float64), []
    if not (isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor)) or got.dtype != expected.dtype:
        return None
    if not expected.is_floating_point():
        return _draw_hint(got, expected)
    names = dims if isinstance(dims, list) and len(dims) == expected.dim() and all(isinstance(d, str) for d in dims) else None
    if got.shape != expected.shape:
        return _permuted_hint(got, expected, atol, rtol, names) or _short_hint(got, expected, atol, rtol, names)
    finite = torch.isfinite(got)
    if not finite.all():
        if finite.any() and (expected[~finite] == 0).all() and _close(got[finite], expected[finite], atol, rtol):
            return ("Your output is NaN (or inf) exactly where the expected value is 0: a 0/0 (for example a feature that "
                    "never varies, or a zero norm); return 0 there, as the docstring says.")
        return None
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    if scale <= atol:
        return None
    if not got.any():
        return ("Your output is all zeros: nothing was written into it (a loop that never ran, a hook that never fired), "
                "or you read entries that are always 0 (e.g. attention to a later key, which the causal mask zeroes).")
    if _close(got, -expected, atol, rtol):
        return "Your values have the right size but the opposite sign: check the order of a subtraction."
    if _close(got, 1 - expected, atol, rtol) and not _close(expected, torch.full_like(expected, 0.5), atol, rtol):
        return ("Your values are 1 - expected: a complement (an inverted comparison such as < for >, a flipped condition, "
                "or a difference measured from the wrong end).")
    if expected.dim() == 2 and expected.shape[0] == expected.shape[1] and _close(got, expected.T, atol, rtol):
        a, b = names or ["rows", "columns"]
        return f"Your axes are swapped: you returned [{b}, {a}]; expected [{a}, {b}] (check which index is which in your loops or einsum)."
    hint = _shift_hint(got, expected, atol, rtol, names)
    if hint:
        return hint
    if expected.numel() > 1:
        ratio = float((got.double() * expected.double()).sum() / (expected.double() ** 2).sum())
        # The key is within the tolerance of the true values, so ratio * key is within ratio times it.
        if abs(ratio - 1) > 1e-3 and abs(ratio) > 1e-3 and _close(got, ratio * expected, atol * max(1.0, abs(ratio)), rtol):
            return f"Your values are the expected ones times {ratio:.4g}: a sum where a mean was meant (or the reverse), or a missing normalisation."
    return None


def _permuted_hint(got, expected, atol, rtol, names) -> str | None:
    if sorted(got.shape) != sorted(expected.shape) or got.dim() < 2:
        return None
    for perm in itertools.permutations(range(expected.dim())):
        if perm != tuple(range(expected.dim())) and expected.permute(perm).shape == got.shape and _close(expected.permute(perm), got, atol, rtol):
            labels = names or [f"axis {i}" for i in range(expected.dim())]
            return f"Your axes are permuted: you returned [{', '.join(labels[p] for p in perm)}]; expected [{', '.join(labels)}]."
    return None


def _position_axes(names, n: int) -> list[tuple[int, str]]:
    return [(i, d) for i, d in enumerate(names or []) if d in POSITION_DIMS and i < n]


def _shift_hint(got, expected, atol, rtol, names) -> str | None:
    """The same values moved by k positions along a position axis (compared where they overlap)."""
    for axis, name in _position_axes(names, expected.dim()):
        n = expected.shape[axis]
        for k in (1, -1, 2, -2):
            if n - abs(k) < 2:
                continue
            g = got.narrow(axis, max(k, 0), n - abs(k))
            e = expected.narrow(axis, max(-k, 0), n - abs(k))
            if _close(g, e, atol, rtol) and not _close(got, expected, atol, rtol):
                return (f"Your values are shifted by {abs(k)} along {name}: yours at {name} p are the expected ones at "
                        f"{name} p {'-' if k > 0 else '+'} {abs(k)} (off by one position: q vs q - 1, or a slice that starts or ends one early).")
    return None


def _short_hint(got, expected, atol, rtol, names) -> str | None:
    """Positions missing at one end of a position axis (or of axis 1 when names are unknown)."""
    if got.dim() != expected.dim():
        return None
    differ = [i for i in range(expected.dim()) if got.shape[i] != expected.shape[i]]
    if len(differ) != 1:
        return None
    axis = differ[0]
    name = names[axis] if names else f"axis {axis}"
    missing = expected.shape[axis] - got.shape[axis]
    if missing <= 0 or (names and name not in POSITION_DIMS):
        return None
    if _close(got, expected.narrow(axis, missing, got.shape[axis]), atol, rtol):
        return f"Your output is {missing} position(s) short along {name}: you dropped the first position(s) (keep BOS; use the tokens exactly as given)."
    if _close(got, expected.narrow(axis, 0, got.shape[axis]), atol, rtol):
        return f"Your output is {missing} position(s) short along {name}: you dropped the last position(s); use the tokens exactly as given."
    return None


def _draw_hint(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    """Integer outputs (tokens): the expected layout (constant columns such as BOS, and repeats
    within a row) is there, but the values are not: the random draw differs."""
    if got.shape != expected.shape or expected.dim() != 2 or torch.equal(got, expected) or expected.shape[1] < 2:
        return None
    first = expected[:, :1]
    if (expected[:, :1] == first[0]).all() and (got[:, 0] != first[0, 0]).all() and (got == first[0, 0]).any(dim=1).all():
        return (f"Position 0 must hold the fixed first token (id {int(first[0, 0])}, e.g. BOS); yours has it elsewhere in each row. "
                "Put it first, then the rest in the docstring's order.")
    constant = (expected == expected[:1]).all(dim=0) if expected.shape[0] > 1 else torch.zeros(expected.shape[1], dtype=torch.bool)
    if not torch.equal(got[:, constant], expected[:, constant]):
        return None
    eq_e = expected[:, :, None] == expected[:, None, :]  # batch pos pos
    eq_g = got[:, :, None] == got[:, None, :]
    off = ~torch.eye(expected.shape[1], dtype=torch.bool)
    repeats = eq_e & off
    if not repeats.any() or float((eq_g & repeats).sum()) < 0.9 * float(repeats.sum()):
        return None
    return ("Right structure (the same fixed positions such as BOS, the same repeats), different values: your random "
            "draw differs. Use exactly the docstring's recipe: its generator and seed, bounds, shape and order of draws.")
