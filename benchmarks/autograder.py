"""What does the Gradescope autograder cost over a local `mechgrade check --hidden`? Side by side.

Exports the embedded-model autograder, lays it out under a root like /autograder and runs its
setup.sh (timed once), then alternates, on the reference solutions:
  autograder: run_autograder (stages the submission for the student user, grades public and
              hidden cases with the worker running as that user, kills its processes, writes
              results.json)
  check:      mechgrade check lesson27 --hidden on the same files, as the invoking user
and prints medians, the ratio, and each command's peak PSS over its whole process tree (the
figure to compare with Gradescope's container memory). Needs root (setup.sh adds a user).

Usage: sudo python benchmarks/autograder.py [--repeats 3]
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
from check_vs_floor import interleaved, print_rows, timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
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
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
