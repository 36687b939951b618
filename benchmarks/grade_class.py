"""What does a class cost? `mechgrade grade` (one zygote per process, a fork per student)
against one `mechgrade check` per student, side by side in one run.

Usage: python benchmarks/grade_class.py [--students 8] [--jobs 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp())
    subprocess.run(["mechgrade", "start", "lesson27", str(root / "ref"), "--solutions"], check=True, stdout=subprocess.DEVNULL)
    subs = root / "submissions"
    for i in range(args.students):
        shutil.copytree(root / "ref", subs / f"student{i:03d}")
    subprocess.run(["mechgrade", "check", "lesson27", "--path", str(root / "ref")], stdout=subprocess.DEVNULL)  # warm caches

    start = time.perf_counter()
    for i in range(args.students):
        subprocess.run(["mechgrade", "check", "lesson27", "--path", str(subs / f"student{i:03d}")], stdout=subprocess.DEVNULL)
    one_by_one = time.perf_counter() - start

    start = time.perf_counter()
    subprocess.run(["mechgrade", "grade", "lesson27", str(subs), "-o", str(root / "gb.csv"), "-j", "1"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    grade_1 = time.perf_counter() - start

    start = time.perf_counter()
    subprocess.run(["mechgrade", "grade", "lesson27", str(subs), "-o", str(root / "gb2.csv"), "-j", str(args.jobs)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    grade_j = time.perf_counter() - start

    n = args.students
    print(f"{n} reference submissions, public cases, embedded model")
    print(f"  mechgrade check per student: {one_by_one:6.1f} s  ({one_by_one / n:.2f} s/student)")
    print(f"  mechgrade grade -j 1:        {grade_1:6.1f} s  ({grade_1 / n:.2f} s/student)  ratio {grade_1 / one_by_one:.2f}")
    print(f"  mechgrade grade -j {args.jobs}:        {grade_j:6.1f} s  ({grade_j / n:.2f} s/student)  ratio {grade_j / one_by_one:.2f}")


if __name__ == "__main__":
    main()
