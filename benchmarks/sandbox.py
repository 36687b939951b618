"""What the sandbox costs `mechgrade check`, measured side by side in one run.

Each sandbox layer this machine offers (``$MECHGRADE_SANDBOX``: none, user, namespaces, auto)
grades the same reference workspace, the runs interleaved so that machine noise hits every
layer alike. Prints each median, its ratio to ``none``, and the peak memory of the process
tree. Layers this machine cannot build (user needs root, namespaces need bubblewrap) are
left out, and say so.

Usage: python benchmarks/sandbox.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from check_vs_floor import interleaved, print_rows  # noqa: E402


def main() -> None:
    from mechgrade.sandbox import namespaces_work

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ws = Path(tempfile.mkdtemp()) / "lesson27"
    subprocess.run(["mechgrade", "start", "lesson27", str(ws), "--solutions"], check=True, stdout=subprocess.DEVNULL)
    layers = ["none"]
    if os.geteuid() == 0:
        layers.append("user")
    else:
        print("  user: left out (needs root)")
    if namespaces_work():
        layers.append("auto" if os.geteuid() == 0 else "namespaces")
    else:
        print("  namespaces: left out (bubblewrap cannot create namespaces here)")
    check = ["mechgrade", "check", "lesson27", "--path", str(ws)]
    commands = {}
    envs = {}
    for layer in layers:
        name = "namespaces + user" if layer == "auto" else layer
        commands[name] = check
        envs[name] = {**os.environ, "MECHGRADE_SANDBOX": "namespaces" if layer == "auto" else layer}
    subprocess.run(check, stdout=subprocess.DEVNULL)  # warm the key cache and the OS file cache
    rows, peaks = {}, {}
    for _ in range(args.repeats):  # interleaved: each round runs every layer once
        for name, cmd in commands.items():
            r, p = interleaved({name: cmd}, 1, env=envs[name])
            rows.setdefault(name, []).extend(r[name])
            peaks[name] = max(peaks.get(name, 0.0), p[name])
    print(f"mechgrade check lesson27 (reference, embedded model), median of {args.repeats} interleaved runs per sandbox:")
    med = print_rows(rows, peaks)
    for name, seconds in med.items():
        if name != "none":
            print(f"  {name} / none = {seconds / med['none']:.2f}")


if __name__ == "__main__":
    main()
