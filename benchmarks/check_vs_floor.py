"""How much does grading cost over the unavoidable work? Measured side by side in one run.

floor: one Python process that imports TransformerLens, boots the same model and runs every
       public case's reference function once (the least any grader must do).
check: `mechgrade check lesson27` on a workspace filled with the reference.
help:  `mechgrade --help`.

Usage: python benchmarks/check_vs_floor.py [--model SPEC] [--repeats 3]
Prints each figure's median, the ratio check / floor, and the peak resident memory of each
command's whole process tree (grading process + worker), sampled from /proc.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = r"""
import sys
from mechgrade.models import load_model
from mechgrade import lessons
from mechgrade.spec import load_lesson
import importlib
model = load_model(sys.argv[1])
build = lessons.get("lesson27").builders()
lesson = load_lesson("lesson27")
for e, f, c in lesson.iter_cases():
    getattr(importlib.import_module(f"mechgrade.reference.lesson27.{e.id}"), f.name)(**build(model, f.builder, c.params))
"""


def _pss(pid: str) -> int:
    """Proportional set size: shared pages split among their sharers, so that a sum over
    processes counts each page once (what a container's memory limit sees, roughly)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def _tree_rss_mb(root: int, *, pss: bool = False) -> float:
    """Resident memory (or PSS) of ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = _pss(entry) if pss else int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total / 2**20


def timed(cmd: list[str], *, pss: bool = False, env: dict | None = None) -> tuple[float, float]:
    """(seconds, peak resident memory (or PSS) of the whole process tree in MB, sampled every 50 ms)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid, pss=pss))
        time.sleep(0.05)
    return time.perf_counter() - start, peak


def interleaved(commands: dict[str, list[str]], repeats: int, **timed_kw) -> tuple[dict[str, list[float]], dict[str, float]]:
    """({name: seconds per run}, {name: peak MB}) with the commands run in turn ``repeats``
    times, so that machine noise hits every command alike."""
    rows: dict[str, list[float]] = {k: [] for k in commands}
    peaks: dict[str, float] = {k: 0.0 for k in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            seconds, peak = timed(cmd, **timed_kw)
            rows[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
    return rows, peaks


def print_rows(rows: dict[str, list[float]], peaks: dict[str, float], memory: str = "RSS") -> dict[str, float]:
    """Print each command's median, peak memory and runs; return the medians."""
    med = {k: statistics.median(v) for k, v in rows.items()}
    width = max(map(len, med))
    for k, v in med.items():
        print(f"  {k:<{width}} {v:6.2f} s   peak {memory} (all processes) {peaks[k]:7.0f} MB   runs: {', '.join(f'{x:.2f}' for x in rows[k])}")
    return med


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ws = Path(tempfile.mkdtemp()) / "lesson27"
    subprocess.run(["mechgrade", "start", "lesson27", str(ws), "--solutions"], check=True, stdout=subprocess.DEVNULL)
    check = ["mechgrade", "check", "lesson27", "--path", str(ws), "--model", args.model]
    floor = [sys.executable, "-c", FLOOR, args.model]
    cold = timed(check)  # computes the answer key if it is not cached yet, warms the OS file cache
    rows, peaks = interleaved({"floor": floor, "check": check, "help": ["mechgrade", "--help"]}, args.repeats)
    print(f"model: {args.model}; median of {args.repeats} interleaved runs")
    print(f"  first check (computes the answer key if not cached): {cold[0]:.2f} s, peak RSS {cold[1]:.0f} MB")
    med = print_rows(rows, peaks)
    print(f"  check / floor = {med['check'] / med['floor']:.2f}")


if __name__ == "__main__":
    main()
