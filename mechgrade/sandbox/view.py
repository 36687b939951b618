"""The filesystem a sandboxed worker sees: built from an empty root, never from ``/`` minus a
list, so that a path nobody thought of (the instructor's home, a class folder, the key
cache) is simply absent."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from mechgrade.sandbox.rooms import ROOM_MB

SYSTEM = ("/usr", "/etc", "/opt")
MERGED = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# mechgrade's folders the worker imports from; of the rest, the reference and graders are
# left out, and inside the lesson folders the keys and the mutants' reference snippets.
WORKER_PACKAGES = ("mechgrade", "mechgrade.exercises", "mechgrade.student_template")
SECRET_PACKAGES = ("mechgrade.reference", "mechgrade.graders")


PROBE = r"""
import importlib.util, json, sys
def where(name):
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        return []
    return list(spec.submodule_search_locations or []) if spec else []
print(json.dumps({"path": sys.path, "packages": {n: where(n) for n in sys.argv[1:]}}))
"""


@functools.lru_cache(maxsize=1)
def _worker_python() -> dict:
    """What the worker's ``python -I`` imports from: its path, and where it finds mechgrade's
    packages. Asked of that interpreter itself: the trusted process may import another copy
    (the autograder's trusted package), which the sandbox must not show."""
    out = subprocess.run([sys.executable, "-I", "-c", PROBE, *WORKER_PACKAGES, *SECRET_PACKAGES],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def python_paths() -> tuple[str, ...]:
    """The installation the worker imports from (prefix, base prefix, and each folder on its
    path, such as a base environment a ``.pth`` file adds)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in _worker_python()["path"] if p)
    return tuple(sorted(p for p in paths if os.path.isdir(p)))


def _locations(packages) -> list[str]:
    found = _worker_python()["packages"]
    return [os.path.realpath(p) for name in packages for p in found.get(name, [])]


def secret_paths() -> list[str]:
    """What must not be readable even where its parent folder is: the reference solutions, the
    graders, and in each lesson folder the answer keys and the mutant catalogue."""
    paths = _locations(SECRET_PACKAGES)
    for lessons in _locations(("mechgrade.exercises",)):
        for lesson in Path(lessons).iterdir():
            for name in ("keys", "mutants.toml"):
                if (lesson / name).exists():
                    paths.append(str(lesson / name))
    return paths


def bwrap_args(*, scratch: Path, readable: tuple[Path, ...] = (), root: bool = False) -> list[str]:
    """bubblewrap's arguments for one worker (see ``mechgrade.sandbox``)."""
    args = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "mechgrade-worker"]
    if not root:
        args.append("--unshare-user")
    for path in MERGED:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in SYSTEM:
        args += ["--ro-bind-try", path, path]
    args += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu",
             "--proc", "/proc", "--dev", "/dev"]
    for place in ("/tmp", "/var/tmp", "/dev/shm"):  # private, empty, sticky, capped: as on any machine
        args += ["--perms", "1777", "--size", str(ROOM_MB << 20), "--tmpfs", place]
    binds = [*python_paths(), *_locations(WORKER_PACKAGES), *map(str, readable)]
    scratch = os.path.realpath(scratch)
    # bubblewrap run as root makes the folders leading to a mount point 0700: make them
    # traversable (they are empty folders on the sandbox's own root, not the host's).
    for parent in _parents([*binds, scratch]):
        args += ["--perms", "0755", "--dir", parent]
    for path in binds:
        args += ["--ro-bind", path, path]
    for path in secret_paths():
        args += (["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path])
    args += ["--bind", scratch, scratch, "--chdir", scratch]
    return args


def _parents(targets: list[str]) -> list[str]:
    """The folders above ``targets`` that the sandbox's root must provide (not those inside
    another target or a system folder, which come with their mount)."""
    covered = [*targets, *SYSTEM, *MERGED]
    mounts = {"/", "/tmp", "/var/tmp", "/proc", "/dev"}  # the sandbox's own: their subfolders still need making
    out = set()
    for target in targets:
        for parent in Path(target).parents:
            p = str(parent)
            if p not in mounts and not any(p == c or p.startswith(c.rstrip("/") + "/") for c in covered):
                out.add(p)
    return sorted(out, key=lambda p: (p.count("/"), p))
