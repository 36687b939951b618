"""How much does grading cost over the unavoidable work? Measured side by side in one run.

floor: one Python process that imports TransformerLens, boots the same model and runs every
       public case's reference function once (the least any grader must do).
check: `mechgrade check lesson27` on a workspace filled with the reference.
help:  `mechgrade --help`.

Usage: python benchmarks/check_vs_floor.py [--model SPEC] [--repeats 3]
Prints each figure's median and the ratio check / floor; peak RSS of all processes via
/usr/bin/time-style accounting (resource.getrusage of children).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = r"""
import sys
from mechgrade.models import load_model
from mechgrade.exercises import load_builders
from mechgrade.spec import load_lesson
import importlib
model = load_model(sys.argv[1])
build = load_builders("lesson27")
lesson = load_lesson("lesson27")
for e, f, c in lesson.iter_cases():
    getattr(importlib.import_module(f"mechgrade.reference.lesson27.{e.id}"), f.name)(**build(model, f.builder, c.params))
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB of the largest child process so far)."""
    start = time.perf_counter()
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ws = Path(tempfile.mkdtemp()) / "lesson27"
    subprocess.run(["mechgrade", "start", "lesson27", str(ws), "--solutions"], check=True, stdout=subprocess.DEVNULL)
    check = ["mechgrade", "check", "lesson27", "--path", str(ws), "--model", args.model]
    floor = [sys.executable, "-c", FLOOR, args.model]
    timed(check)  # warm the answer-key cache and the OS file cache once
    rows: dict[str, list[float]] = {"floor": [], "check": [], "help": []}
    for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
        rows["floor"].append(timed(floor)[0])
        rows["check"].append(timed(check)[0])
        rows["help"].append(timed(["mechgrade", "--help"])[0])
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"model: {args.model}; median of {args.repeats} interleaved runs")
    for k, v in med.items():
        print(f"  {k:<6} {v:6.2f} s   (runs: {', '.join(f'{x:.2f}' for x in rows[k])})")
    print(f"  check / floor = {med['check'] / med['floor']:.2f}")
    print(f"  peak RSS of the largest single process: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
