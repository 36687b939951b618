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
# The worker imports mechgrade and each lesson's data and stubs packages; each lesson's
# reference and checks are left out, and inside its data folder the keys and the mutants'
# reference snippets (``lessons.LessonPlugin``). Lesson 27's top-level folders are hidden whole.
CONTAINERS = ("mechgrade.reference", "mechgrade.graders")


def worker_packages() -> tuple[str, ...]:
    from mechgrade import lessons

    return tuple(dict.fromkeys(["mechgrade", *(m for p in lessons.installed().values() for m in p.worker_modules())]))


def secret_packages() -> tuple[str, ...]:
    from mechgrade import lessons

    return (*CONTAINERS, *(m for p in lessons.installed().values() for m in p.secret_modules()))


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
    out = subprocess.run([sys.executable, "-I", "-c", PROBE, *worker_packages(), *secret_packages()],
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


def _module_files(names) -> list[str]:
    """Single-module secrets (a lesson's checks.py): their file, as the worker would import it."""
    import importlib.util

    out = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            continue
        if spec is not None and not spec.submodule_search_locations and spec.origin and os.path.isfile(spec.origin):
            out.append(os.path.realpath(spec.origin))
    return out


def secret_paths() -> list[str]:
    """What must not be readable even where its parent folder is: the reference solutions, the
    graders, and in each lesson folder the answer keys and the mutant catalogue."""
    from mechgrade import lessons

    paths = _locations(secret_packages()) + _module_files(secret_packages())
    for lesson in _locations(tuple(p.data for p in lessons.installed().values())):
        for name in ("keys", "mutants.toml"):
            if (Path(lesson) / name).exists():
                paths.append(str(Path(lesson) / name))
    return list(dict.fromkeys(paths))


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
    binds = [*python_paths(), *_locations(worker_packages()), *map(str, readable)]
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
