"""What the container grants this process: its memory limit and CPU quota, read from cgroups
(v2 ``memory.max`` / ``cpu.max``, or v1 ``memory.limit_in_bytes`` / ``cpu.cfs_quota_us``), and
how the student's memory allowance is sized from them.

The figures below were measured with ``benchmarks/autograder.py`` (a cgroup with the page cache
counted, as Docker counts it; see the README's Performance table)."""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel

UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63

# Peak anonymous memory (what the processes allocate; page cache comes on top) of run_autograder
# grading the reference, public and hidden cases: grading process (torch to compare numbers,
# pytest: 0.17 GB) plus the worker (torch, TransformerLens, the model: 0.33 GB booted, 0.41 GB
# in the probe exercise). Measured 541-575 MB for the embedded model; a margin on top.
BASE_MB = {"embedded": 600}
# GPT-2 small (124M parameters), and any other model: measured on a GPT-2-small-sized random
# checkpoint, `mechgrade check --hidden` with its key cached (as run_autograder runs): 2,018 MB.
GPT2_BASE_MB = 2100
# What the container must keep beyond the processes' memory for the page cache: the libraries'
# code that is running (torch alone maps ~0.4 GB). Below this the run still passes, but slower.
CACHE_RESERVE_MB = 68
GOOD_STUDENT_MB = 64  # what the recommended container leaves the student's code, at least
MIN_STUDENT_MB = 32  # below this, even a correct submission may not fit: refuse to grade, say why


class ContainerLimits(BaseModel):
    memory_mb: float | None = None  # None: no limit found
    cpus: float | None = None


def _cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """{controller: path} from /proc/self/cgroup; cgroup v2's single tree is under ''."""
    paths: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def _ancestors(base: Path, path: str) -> list[Path]:
    """``base/path`` and each of its parents up to ``base``: a limit anywhere above applies."""
    parts = [p for p in path.strip("/").split("/") if p]
    return [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_limits(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")) -> ContainerLimits:
    """The tightest memory limit and CPU quota on this process's cgroups (v2, else v1)."""
    paths = _cgroup_paths(proc_cgroup)
    memory: list[float] = []
    cpus: list[float] = []
    if "" in paths and (root / "cgroup.controllers").exists():  # v2
        for d in _ancestors(root, paths[""]):
            value = _read(d / "memory.max")
            if value and value != "max":
                memory.append(int(value) / 2**20)
            quota = (_read(d / "cpu.max") or "max").split()
            if quota[0] != "max" and len(quota) == 2:
                cpus.append(int(quota[0]) / int(quota[1]))
    else:  # v1: one hierarchy per controller, e.g. /sys/fs/cgroup/memory, /sys/fs/cgroup/cpu,cpuacct
        if "memory" in paths:
            for d in _ancestors(root / "memory", paths["memory"]):
                value = _read(d / "memory.limit_in_bytes")
                if value and int(value) < UNLIMITED:
                    memory.append(int(value) / 2**20)
        if "cpu" in paths:
            for d in _ancestors(root / "cpu", paths["cpu"]):
                quota, period = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
                if quota and period and int(quota) > 0:
                    cpus.append(int(quota) / int(period))
    return ContainerLimits(memory_mb=min(memory) if memory else None, cpus=min(cpus) if cpus else None)


def base_mb(model: str) -> int:
    """The measured peak memory of grading a correct submission on ``model`` (processes only)."""
    return BASE_MB.get(model, GPT2_BASE_MB)


def needed_mb(model: str, student_mb: int = MIN_STUDENT_MB) -> int:
    """The container memory that grades ``model`` with ``student_mb`` for the student's code."""
    return base_mb(model) + CACHE_RESERVE_MB + student_mb


def student_allowance(model: str, wanted_mb: int, limits: ContainerLimits) -> int | None:
    """The memory the student's code may add to the worker: ``wanted_mb``, cut down so that a
    submission that uses all of it still fits the container; None if not even a correct
    submission would fit (the container is too small for the model)."""
    if limits.memory_mb is None:
        return wanted_mb
    room = math.floor(limits.memory_mb) - base_mb(model) - CACHE_RESERVE_MB
    return min(wanted_mb, room) if room >= MIN_STUDENT_MB else None


def recommended_mb(model: str) -> int:
    """The container memory to set for ``model``: Gradescope's default (768 MB) or the next
    multiple of 256 MB that leaves the student's code at least ``GOOD_STUDENT_MB``."""
    return max(768, math.ceil(needed_mb(model, GOOD_STUDENT_MB) / 256) * 256)


def measured(model: str) -> str:
    """The CPU to set, and the measurement behind it, in words (for the export's advice)."""
    if model == "embedded":
        return ("CPU 0.5 (Gradescope's default): grading a correct submission took 34-54 s at 0.5 CPU in 768 MB "
                "(the README's \"Memory, CPU and time\")")
    return ("CPU 2 or more: on a GPT-2-small-sized model the reference's patch_residual_stream alone ran past its 60 s "
            "limit on 2 busy cores here")
