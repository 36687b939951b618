"""What does one hanging function cost a local `mechgrade check`? Now, and at an earlier commit.

A workspace filled with the reference, except that sae_encode loops forever (3 cases, public and
hidden, 20 s limit each; the reference's sae_loss calls sae_encode, so it hangs too):
`mechgrade check lesson27 -e sae --hidden` is timed, minus the same
check on the reference, so the figure is what the loop costs.

--before REV also times the grading side as it was at REV (git archive of REV laid out as the
`mechgrade` package, first on PYTHONPATH; the worker, started with `python -I`, is this tree's,
which interrupts a call only when the grading side asks it to).

Usage: python benchmarks/hanging_function.py [--before REV]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The engine package's folder was `core/` before lessons became plugins; either is found.
LAYOUT = {"mechgrade": "mechgrade", "core": "mechgrade", "cli": "mechgrade/cli", "exercises": "mechgrade/exercises", "graders": "mechgrade/graders",
          "reference": "mechgrade/reference", "student_template": "mechgrade/student_template"}


def package_at(rev: str, dest: Path) -> Path:
    """The `mechgrade` import package as it was at ``rev``, under ``dest``."""
    tree = subprocess.run(["git", "-C", str(REPO), "ls-tree", "--name-only", rev], check=True, capture_output=True, text=True).stdout.split()
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, *(top for top in LAYOUT if top in tree)], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            top, _, rest = member.name.partition("/")
            if member.isfile() and top in LAYOUT:
                target = dest / LAYOUT[top] / rest
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
    return dest


def timed_check(ws: Path, env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from mechgrade.cli.main import main; main()", "check", "lesson27", "--path", str(ws),
                           "-e", "sae", "--hidden"], env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1) or "Total:" not in done.stdout:
        sys.exit(f"check failed ({done.returncode}): {done.stderr[-1000:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default=None, help="also time the grading side at this git revision")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mechgrade-hang-"))
    ref, hang = tmp / "ref", tmp / "hang"
    subprocess.run(["mechgrade", "start", "lesson27", str(ref), "--solutions"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["mechgrade", "start", "lesson27", str(hang), "--solutions"], check=True, stdout=subprocess.DEVNULL)
    text = (hang / "sae.py").read_text()
    start = text.index("def sae_encode(")
    body = text.index('"""', text.index('"""', start) + 3) + 3  # after the docstring
    (hang / "sae.py").write_text(text[:body] + "\n    while True:\n        pass\n" + text[body:])
    env = {**os.environ, "MECHGRADE_CACHE_DIR": str(tmp / "cache")}
    sides = {"now": env}
    if args.before:
        sides[f"at {args.before}"] = {**env, "PYTHONPATH": str(package_at(args.before, tmp / "before"))}
    timed_check(ref, env)  # fills the key cache for the hidden cases
    print("one endless loop in sae_encode, which sae_loss calls (2 functions of 3 cases, 20 s limit each):")
    print("`check -e sae --hidden`, minus the same check of the reference")
    for name, side_env in sides.items():
        base, hung = timed_check(ref, side_env), timed_check(hang, side_env)
        print(f"  {name:<14} hanging {hung:6.1f} s, reference {base:5.1f} s: the loop costs {hung - base:6.1f} s")


if __name__ == "__main__":
    main()
