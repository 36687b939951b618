"""What does the Gradescope autograder cost over a local `mechgrade check --hidden`? Side by side.

Exports the embedded-model autograder, lays it out under a root like /autograder and runs its
setup.sh (timed once), then alternates, on the reference solutions:
  autograder: run_autograder (stages the submission for the student user, grades public and
              hidden cases with the worker running as that user, kills its processes, writes
              results.json)
  check:      mechgrade check lesson27 --hidden on the same files, as the invoking user
and prints medians, the ratio, and each command's peak PSS over its whole process tree.

--container: then runs run_autograder in Gradescope's default container, a cgroup limited to
768 MB (page cache counted, as Docker counts it) and 0.5 CPU (tests/container.py), on the
reference (page cache of the runtime dropped first, as in a fresh container) and on each worst
case of issue 13 (tests/worst_cases.py), and prints per run: wall time, the cgroup's peak
(page cache included), the processes' peak anonymous memory, OOM kills, the score.
Needs root (setup.sh adds a user; cgroups).

Usage: sudo python benchmarks/autograder.py [--repeats 3] [--container] [--mem-mb 768] [--cpus 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from check_vs_floor import interleaved, print_rows, timed  # noqa: E402


def in_container(root: Path, env: dict, mem_mb: int, cpus: float) -> None:
    """The reference and each worst case, graded by run_autograder in a limited cgroup."""
    from container import Limits, evict_page_cache, unsupported
    from worst_cases import worst_cases

    from mechgrade.spec import load_lesson
    from mechgrade.workspace import module_sources

    why = unsupported()
    if why:
        print(f"no container rows: {why}")
        return
    runs = {"reference (cold page cache)": module_sources(load_lesson("lesson27"), solutions=True), **worst_cases()}
    print(f"run_autograder in a cgroup of {mem_mb} MB (page cache counted) and {cpus:g} CPU; time limit 10 min")
    for name, files in runs.items():
        shutil.rmtree(root / "submission", ignore_errors=True)
        (root / "submission").mkdir()
        for file, text in files.items():
            (root / "submission" / file).write_text(text)
        if name.startswith("reference"):
            evict_page_cache(root / "runtime", root / "source")
        with Limits(mem_mb, cpus, pids=512) as cgroup:
            run = cgroup.run(["bash", str(root / "source" / "run_autograder")], env=env, cwd=root)
        data = json.loads((root / "results" / "results.json").read_text())
        print(f"  {name:<38} {run.seconds:6.1f} s   cgroup peak {run.peak_mb:4.0f} MB   processes' anon peak {run.peak_anon_mb:4.0f} MB"
              f"   OOM kills {run.oom_kills}   score {data['score']:g}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--container", action="store_true", help="also grade the reference and the worst cases in a limited cgroup")
    ap.add_argument("--mem-mb", type=int, default=768)
    ap.add_argument("--cpus", type=float, default=0.5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: setup.sh creates the student user")
    root = Path(tempfile.mkdtemp(prefix="mechgrade-bench-", dir="/tmp"))
    root.chmod(0o755)
    try:
        start = time.perf_counter()
        subprocess.run(["mechgrade", "export", "gradescope", "lesson27", "-o", str(root / "autograder.zip")], check=True,
                       stdout=subprocess.DEVNULL)
        exported = time.perf_counter() - start
        (root / "source").mkdir()
        with zipfile.ZipFile(root / "autograder.zip") as zf:
            zf.extractall(root / "source")
        env = {**os.environ, "MECHGRADE_AUTOGRADER_ROOT": str(root)}
        start = time.perf_counter()
        subprocess.run(["bash", str(root / "source" / "setup.sh")], check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        set_up = time.perf_counter() - start
        subprocess.run(["mechgrade", "start", "lesson27", str(root / "submission"), "--solutions"], check=True,
                       stdout=subprocess.DEVNULL)
        commands = {
            "autograder": ["bash", str(root / "source" / "run_autograder")],
            "check": ["mechgrade", "check", "lesson27", "--path", str(root / "submission"), "--hidden"],
        }
        timed(commands["check"])  # warms the answer-key cache and the OS file cache
        rows, peaks = interleaved(commands, args.repeats, pss=True, env=env)
        score = json.loads((root / "results" / "results.json").read_text())["score"]
        print(f"export {exported:.1f} s, setup.sh {set_up:.1f} s (venv + packages from the registry + user)")
        print(f"reference solutions, public + hidden cases; median of {args.repeats} interleaved runs; autograder score {score:g}")
        med = print_rows(rows, peaks, memory="PSS")
        print(f"  autograder / check = {med['autograder'] / med['check']:.2f}")
        if args.container:
            in_container(root, {k: v for k, v in env.items() if not k.startswith(("HF_", "VIRTUAL_ENV"))}, args.mem_mb, args.cpus)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
