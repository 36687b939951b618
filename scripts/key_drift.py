"""How far this machine's reference outputs are from the shipped answer key, per function, as a
fraction of the grading tolerance (1.0 = at the tolerance's edge). The shipped key was computed
on another CPU; a margin well below 1 is what lets every machine pass the suite.

Usage: python scripts/key_drift.py [lesson27] [--threads N]
"""

import argparse
import importlib

import torch

from mechgrade.engine.key import AnswerKey, roundtrip
from mechgrade import lessons
from mechgrade.spec import load_lesson


def leaves(value, path="output"):
    """(path, float64 tensor) for every float tensor or float in ``value``."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        yield path, value.double()
    elif isinstance(value, float):
        yield path, torch.tensor(value, dtype=torch.float64)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}[{k!r}]")


def drift(got, expected, atol: float, rtol: float) -> float:
    """max over entries of |got - expected| / (atol + rtol |expected|); inf where the tolerance is 0."""
    worst = 0.0
    for (_, g), (_, e) in zip(leaves(got), leaves(expected)):
        err = (g - e).abs()
        allowed = atol + rtol * e.abs()
        if err.numel():
            ratio = torch.where(err == 0, torch.zeros_like(err), err / allowed)
            worst = max(worst, float(ratio.max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lesson", nargs="?", default="lesson27")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lesson = load_lesson(args.lesson)
    key = AnswerKey(lesson, "embedded")
    build = lessons.get(lesson.id).builders()
    print(f"torch threads: {torch.get_num_threads()}")
    for exercise, function, case in lesson.iter_cases():
        if case.number not in key.entries:
            continue
        reference = importlib.import_module(f"mechgrade.reference.{lesson.id}.{exercise.id}")
        got = roundtrip(getattr(reference, function.name)(**build(key.model, function.builder, case.params)))
        expected = key.entries[case.number]["expected"]
        abs_err = max((float((g - e).abs().max()) for (_, g), (_, e) in zip(leaves(got), leaves(expected)) if g.numel()), default=0.0)
        print(f"{exercise.id}.{function.name} [{case.label}]: max |diff| {abs_err:.3g}, "
              f"{drift(got, expected, function.atol, function.rtol):.3f} of the tolerance")


if __name__ == "__main__":
    main()
