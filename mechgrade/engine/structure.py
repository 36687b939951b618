"""Mistakes recognisable from the expected output alone, without a catalogue of mutants.

Each detector compares the student's output with a transformation of the expected one (a
permutation, a shift or a reversal along an axis, a slice, a sign, a complement, a constant
factor or offset, a square, a mask) at the function's own tolerance, and names the mistake
that produces exactly that transformation. Detectors run from the most specific to the most
general, and ``structural_hint`` returns the first that fits: a hint is only given when the
output *is* that transformation, never as a guess. The last resort, a near miss, says so.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from mechgrade.engine.compare import Dims, compare, item_dims

POSITION_DIMS = ("pos", "query_pos", "key_pos")
NEAR_MISS = 0.02  # largest difference, relative to the output's scale, still called "close"
NEAR_MISS_TEXT = "Your values are close to the expected ones"


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
    """A sentence naming the mistake that turns ``expected`` into ``got``, or None. Tuples and
    dicts are searched item by item; ``dims`` are the output's TransformerLens dimension names."""
    if isinstance(expected, (tuple, list)) and isinstance(got, (tuple, list)) and len(got) == len(expected):
        return _item_hint(got, expected, atol, rtol, dims)
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
    names = dims if isinstance(dims, list) and len(dims) == expected.dim() and all(isinstance(d, str) for d in dims) else None
    if got.shape != expected.shape:
        return _first_hint((_permuted_hint, _short_hint, _long_hint, _squeezed_hint, _pairs_hint), got, expected, atol, rtol, names)
    if not expected.is_floating_point():
        return _draw_hint(got, expected)
    return _value_hint(got, expected, atol, rtol, names)


def _item_hint(got, expected, atol, rtol, dims) -> str | None:
    """The first wrong item of a tuple, explained; if nothing explains it but every other item
    is right, that is worth saying too: the mistake is in how that one item is made."""
    sub = item_dims(dims, len(expected))
    wrong = [i for i, (g, e, d) in enumerate(zip(got, expected, sub)) if not compare(g, e, atol=atol, rtol=rtol, dims=d).passed]
    if not wrong:
        return None
    i = wrong[0]
    hint = structural_hint(got[i], expected[i], atol=atol, rtol=rtol, dims=sub[i])
    if len(wrong) == 1 and len(expected) > 1 and (hint is None or hint.startswith(NEAR_MISS_TEXT)):
        return (f"output[{i}] is wrong while every other item is right: the mistake is in how output[{i}] is made from "
                "the others (a coefficient, a power, a sign, or which terms are combined).")
    return f"output[{i}]: {hint}" if hint else None


def _value_hint(got: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float, names) -> str | None:
    """Same shape, floating point: what transformation of the expected values are these?"""
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
    return _first_hint((_shift_hint, _flip_hint, _mask_hint, _power_hint, _scale_hint, _offset_hint, _near_hint),
                       got, expected, atol, rtol, names)


def _first_hint(detectors, got, expected, atol, rtol, names) -> str | None:
    """The first of ``detectors`` (most specific first) that recognises the output."""
    return next((hint for detector in detectors if (hint := detector(got, expected, atol, rtol, names))), None)


def _label(names, axis: int) -> str:
    return names[axis] if names else f"axis {axis}"


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


def _flip_hint(got, expected, atol, rtol, names) -> str | None:
    """The right values in reverse order along one axis."""
    for axis in range(expected.dim()):
        if expected.shape[axis] > 1 and _close(got, expected.flip(axis), atol, rtol):
            name = _label(names, axis)
            return (f"Your values are the right ones in reverse order along {name}: yours at {name} i are the expected ones at "
                    f"{name} -1 - i (an index counted from the wrong end, a loop running backwards, or the axes mixed up).")
    return None


def _mask_hint(got, expected, atol, rtol, names) -> str | None:
    """Right wherever one of the two is nonzero, wrong only where the other is 0: a mask, ReLU
    or clamp missing (or one too many)."""
    zero = expected == 0
    if zero.any() and (~zero).any() and _close(got[~zero], expected[~zero], atol, rtol):
        negative = bool((got[zero] < -atol).any())
        return ("Your values are right wherever the expected value is nonzero, but not where it is 0"
                + (" (yours are negative there)" if negative else "") +
                ": a ReLU (keeping values non-negative), a mask or a clamp at 0 is missing or leaky.")
    kept = got != 0
    if (~kept).any() and kept.any() and _close(got[kept], expected[kept], atol, rtol) and not _close(expected[~kept], got[~kept], atol, rtol):
        return ("Your values are 0 where the expected ones are not, and right everywhere else: an extra mask, ReLU or clamp, "
                "or entries you never wrote.")
    return None


def _power_hint(got, expected, atol, rtol, names) -> str | None:
    if _close(got, expected**2, atol, rtol):
        return ("Your values are the squares of the expected ones: a squared norm where the norm was meant (a missing square "
                "root), or a square too many.")
    if bool((got >= 0).all()) and _close(got**2, expected, atol, rtol):
        return "Your values are the square roots of the expected ones: a norm where its square was meant (a square root too many)."
    return None


def _scale_hint(got, expected, atol, rtol, names) -> str | None:
    """A constant factor. Any number is a multiple of any other, so a single number only counts
    for a percentage (x100 or /100), the one factor that is hard to get by accident."""
    ratio = float((got.double() * expected.double()).sum() / (expected.double() ** 2).sum())
    # The key is within the tolerance of the true values, so ratio * key is within ratio times it.
    if abs(ratio - 1) <= 1e-3 or abs(ratio) <= 1e-3 or not _close(got, ratio * expected, atol * max(1.0, abs(ratio)), rtol):
        return None
    bessel = _bessel(ratio) if expected.numel() > 1 else None  # one number near 1 is (n - 1) / n for some n
    if bessel is not None:
        return (f"Your values are the expected ones times {ratio:.4g}, which is {bessel}: a variance or standard deviation "
                "with the other normalisation (torch's std and var divide by n - 1 by default, a mean divides by n).")
    percent = next((p for p in (100.0, 0.01) if abs(ratio / p - 1) < 1e-3), None)
    if percent is not None:
        return (f"Your values are the expected ones times {percent:g}: a percentage where a fraction between 0 and 1 was "
                "meant (or the reverse).")
    if expected.numel() > 1:
        return f"Your values are the expected ones times {ratio:.4g}: a sum where a mean was meant (or the reverse), or a missing normalisation."
    return None


def _bessel(ratio: float) -> str | None:
    """'(n - 1) / n' (or its inverse, or their square roots) if ``ratio`` is one of them for a
    whole n >= 3: the footprint of dividing by n versus n - 1 in a variance."""
    if not 0.5 < ratio < 2 or abs(ratio - 1) < 1e-5:
        return None
    for power, root in ((1, ""), (2, "sqrt")):
        r = ratio**power
        n = r / (r - 1) if r > 1 else 1 / (1 - r)
        if n >= 3 and abs(n - round(n)) < 0.02:
            fraction = "n / (n - 1)" if r > 1 else "(n - 1) / n"
            return f"{root}({fraction}) for n = {round(n)}" if root else f"{fraction} for n = {round(n)}"
    return None


def _offset_hint(got, expected, atol, rtol, names) -> str | None:
    """The same constant added everywhere (more than one number: any two differ by a constant)."""
    if expected.numel() < 2:
        return None
    offset = float((got.double() - expected.double()).mean())
    if abs(offset) > atol and _close(got, expected + offset, atol, rtol):
        return (f"Your values are all the expected ones {'plus' if offset > 0 else 'minus'} the same constant ({abs(offset):.4g}): "
                "a baseline (such as the clean run's value) not subtracted, or subtracted twice; a bias added or missing; or a range "
                "shifted by a constant offset.")
    return None


def _near_hint(got, expected, atol, rtol, names) -> str | None:
    """Close to the expected values, but outside the tolerance: the right method, a slightly
    different recipe. Said as what it is, a near miss, with the usual causes."""
    err = float((got.double() - expected.double()).abs().max())
    scale = float(expected.double().abs().max())
    if err > NEAR_MISS * scale:
        return None
    return (f"{NEAR_MISS_TEXT} (largest difference {err / scale:.2%} of their size) but outside the "
            "tolerance: the right method with a slightly different recipe. Check the number of steps, the learning rate, "
            "the initialisation, any epsilon or clamp, and the order of random draws against the docstring.")


def _short_hint(got, expected, atol, rtol, names) -> str | None:
    """Entries missing at one end of one axis: positions dropped, or only part of the batch kept."""
    if got.dim() != expected.dim():
        return None
    differ = [i for i in range(expected.dim()) if got.shape[i] != expected.shape[i]]
    if len(differ) != 1:
        return None
    axis = differ[0]
    name = _label(names, axis)
    missing = expected.shape[axis] - got.shape[axis]
    if missing <= 0:
        return None
    position = not names or name in POSITION_DIMS
    if _close(got, expected.narrow(axis, missing, got.shape[axis]), atol, rtol):
        if position:
            return f"Your output is {missing} position(s) short along {name}: you dropped the first position(s) (keep BOS; use the tokens exactly as given)."
        return f"Your output lacks the first {missing} of {expected.shape[axis]} entries along {name}: keep every one, as given."
    if _close(got, expected.narrow(axis, 0, got.shape[axis]), atol, rtol):
        if position:
            return f"Your output is {missing} position(s) short along {name}: you dropped the last position(s); use the tokens exactly as given."
        return (f"Your output keeps only the first {got.shape[axis]} of {expected.shape[axis]} entries along {name} "
                f"(a slice such as [:1] where the whole {name} was meant): keep every one.")
    return None


def _squeezed_hint(got, expected, atol, rtol, names) -> str | None:
    """An axis of size 1 dropped (a squeeze), or one added."""
    if got.dim() == expected.dim() - 1:
        for axis in range(expected.dim()):
            if expected.shape[axis] == 1 and _close(got, expected.squeeze(axis), atol, rtol):
                return (f"Your output lacks the {_label(names, axis)} axis of size 1 (a squeeze, or an index such as [0]): "
                        f"keep it; the expected shape is {list(expected.shape)}.")
    if got.dim() == expected.dim() + 1:
        for axis in range(got.dim()):
            if got.shape[axis] == 1 and _close(got.squeeze(axis), expected, atol, rtol):
                return f"Your output has an extra axis of size 1 at position {axis}: the expected shape is {list(expected.shape)}."
    return None


def _pairs_hint(got, expected, atol, rtol, names) -> str | None:
    """An [n, n] table of every pair whose diagonal is the expected [n]: two index tensors
    broadcast against each other, where each example should use its own."""
    if expected.dim() == 1 and got.dim() == 2 and got.shape == (expected.shape[0],) * 2 and expected.shape[0] > 1 \
            and _close(got.diagonal(), expected, atol, rtol):
        return (f"Your output is an [{expected.shape[0]}, {expected.shape[0]}] table of every pair, whose diagonal is the expected "
                "values: indexing with two index tensors (or broadcasting [n, 1] against [n]) pairs every example with every "
                "other; pick one entry per example (torch.gather, or x[torch.arange(n), idx]).")
    return None


def _long_hint(got, expected, atol, rtol, names) -> str | None:
    """The expected output, with extra entries at the end of one axis (one copy too many)."""
    if got.dim() != expected.dim():
        return None
    differ = [i for i in range(expected.dim()) if got.shape[i] != expected.shape[i]]
    if len(differ) != 1 or got.shape[differ[0]] <= expected.shape[differ[0]]:
        return None
    axis = differ[0]
    extra = got.shape[axis] - expected.shape[axis]
    if _close(got.narrow(axis, 0, expected.shape[axis]), expected, atol, rtol):
        return (f"Your output starts with exactly the expected values but has {extra} extra entries along {_label(names, axis)} "
                f"({got.shape[axis]} instead of {expected.shape[axis]}): one copy, repeat or step too many; check the shape the docstring gives.")
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
