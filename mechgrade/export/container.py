"""What the container grants this process: its memory limit and CPU quota, read from cgroups
(v2 ``memory.max`` / ``cpu.max``, or v1 ``memory.limit_in_bytes`` / ``cpu.cfs_quota_us``), and
how the student's memory allowance is sized from them.

The figures below were measured with ``benchmarks/autograder.py`` (a cgroup with the page cache
counted, as Docker counts it; see the README's Performance table)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63

# A lesson's measured peak memory of grading its reference (``LessonPlugin.peak_mb``, processes
# only, page cache on top) wins; these defaults are for a lesson that measured nothing: the
# grading process (torch, pytest: 0.17 GB) plus a worker with torch, TransformerLens and the model
# booted (0.33 GB embedded), with a margin; any other model is sized as GPT-2 small (124M
# parameters: 2,018 MB measured on a random checkpoint of that size, key cached).
BASE_MB = {"embedded": 600}
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


Peaks = Mapping[str, int]


def base_mb(model: str, peaks: Peaks) -> int:
    """The peak memory of grading a correct submission on ``model`` (processes only): the
    lesson's measurement (``peaks``, by model spec) or the defaults above."""
    return peaks.get(model, BASE_MB.get(model, GPT2_BASE_MB))


def needed_mb(model: str, peaks: Peaks, student_mb: int = MIN_STUDENT_MB) -> int:
    """The container memory that grades ``model`` with ``student_mb`` for the student's code."""
    return base_mb(model, peaks) + CACHE_RESERVE_MB + student_mb


def student_allowance(model: str, peaks: Peaks, wanted_mb: int, limits: ContainerLimits) -> int | None:
    """The memory the student's code may add to the worker: ``wanted_mb``, cut down so that a
    submission that uses all of it still fits the container; None if not even a correct
    submission would fit (the container is too small for the model)."""
    if limits.memory_mb is None:
        return wanted_mb
    room = math.floor(limits.memory_mb) - base_mb(model, peaks) - CACHE_RESERVE_MB
    return min(wanted_mb, room) if room >= MIN_STUDENT_MB else None


def recommended_mb(model: str, peaks: Peaks) -> int:
    """The container memory to set for ``model``: Gradescope's default (768 MB) or the next
    multiple of 256 MB that leaves the student's code at least ``GOOD_STUDENT_MB``."""
    return max(768, math.ceil(needed_mb(model, peaks, GOOD_STUDENT_MB) / 256) * 256)


def cpu_advice(model: str, advice: Mapping[str, str]) -> str:
    """The CPU to set for ``model``, in words: the lesson's own measurement where it gave one."""
    if model in advice:
        return advice[model]
    if model == "embedded":
        return "CPU 0.5 (Gradescope's default; this lesson gives no measurement: time a correct submission in it)"
    return "CPU 2 or more (a GPT-2-small-sized model; this lesson gives no measurement: time a correct submission in it)"
