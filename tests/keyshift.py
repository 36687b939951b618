"""The shipped answer key as another CPU would have computed it: every float moved by a fixed
fraction of its function's grading tolerance, ``x + s * fraction * (atol + rtol * |x|)`` with a
sign ``s`` that varies per entry. Floating-point results differ between CPUs (vector width,
thread count, BLAS kernels) by far less than the tolerance; a test that passes with the real
key and fails with this one compares more tightly than the grader does.

Written to ``<cache>/keys/<lesson>/<key id>.safetensors``, which ``AnswerKey`` reads after the
shipped file, so its entries take precedence. A catalogued mistake's output at the same place
moves with the same signs, so that its distance from the expected output hardly changes.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import torch

from mechgrade.engine.codec import from_bytes
from mechgrade.engine.key import AnswerKey, entry_hash
from mechgrade.spec import load_lesson

DEFAULT_FRACTION = 0.25


def _signs(shape: torch.Size, seed: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(zlib.crc32(seed.encode()))
    return torch.randint(0, 2, shape, generator=gen).double() * 2 - 1


def shift(value: Any, fraction: float, atol: float, rtol: float, seed: str) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        x = value.double()
        return (x + _signs(value.shape, seed) * fraction * (atol + rtol * x.abs())).to(value.dtype)
    if isinstance(value, float):
        return value + float(_signs(torch.Size([]), seed)) * fraction * (atol + rtol * abs(value))
    if isinstance(value, (list, tuple)):
        return type(value)(shift(v, fraction, atol, rtol, f"{seed}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: shift(v, fraction, atol, rtol, f"{seed}[{k!r}]") for k, v in value.items()}
    return value


def write_shifted_key(cache_dir: Path, lesson_id: str = "lesson27", fraction: float = DEFAULT_FRACTION) -> Path:
    """The shifted copy of the embedded model's shipped key, in ``cache_dir``'s key cache."""
    lesson = load_lesson(lesson_id)
    key = AnswerKey(lesson, "embedded")
    shipped = from_bytes(key.shipped_path.read_bytes())  # the file itself: the key cache may already hold a shifted copy
    out = {}
    for exercise, function, case in lesson.iter_cases(hidden=True):
        entry = shipped.get(case.number)
        if entry is None:
            continue
        tol = (fraction, function.atol, function.rtol)
        out[case.number] = {"expected": shift(entry["expected"], *tol, seed=case.number),
                            "mutants": {name: shift(v, *tol, seed=case.number) for name, v in entry["mutants"].items()}}
    # Written as mechgrade writes a cached key (this machine's provenance, a manifest of hashes),
    # or it is not believed: it would be dropped and recomputed, and the shift would test nothing.
    key.entries = out
    folder = Path(cache_dir) / "keys" / lesson_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in key.cache_files().items():
        (folder / name).write_bytes(data)
    return folder / key.cache_path.name


def assert_believed(lesson_id: str = "lesson27") -> None:
    """The shifted key (in MECHGRADE_CACHE_DIR) is the one grading reads: no notice, and its
    values are the shifted ones."""
    key = AnswerKey(load_lesson(lesson_id), "embedded")
    shipped = from_bytes(key.shipped_path.read_bytes())
    number = next(iter(shipped))
    assert key.notices == [] and not key.unverified, key.notices
    assert entry_hash(key.entries[number]) != entry_hash(shipped[number])
