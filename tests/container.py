"""Run a command the way Gradescope's container limits it: a cgroup with a memory limit that
counts page cache (as Docker does), a CPU quota, and a process cap, then read the cgroup's
peak memory and OOM kills. cgroup v1 (memory, cpu, pids hierarchies) or v2 (one unified tree).

Used by tests/test_container.py and benchmarks/autograder.py. Needs a writable cgroup (root);
``unsupported()`` says why not where there is none.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CG = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


@dataclass
class Run:
    returncode: int
    seconds: float
    peak_mb: float  # the cgroup's peak charge: process memory plus page cache, as the container counts it
    peak_anon_mb: float  # the most anonymous memory (what processes allocated; no page cache) seen, sampled
    oom_kills: int
    stdout: str
    stderr: str


def _version() -> int | None:
    if (CG / "memory" / "memory.limit_in_bytes").exists() and (CG / "cpu" / "cpu.cfs_quota_us").exists():
        return 1
    controllers = CG / "cgroup.controllers"
    if controllers.exists() and {"memory", "cpu"} <= set(controllers.read_text().split()):
        return 2
    return None


def unsupported() -> str | None:
    """Why no limited cgroup can be made here, or None."""
    version = _version()
    if version is None:
        return "no cgroup v1 memory+cpu hierarchies and no cgroup v2 tree with the memory and cpu controllers"
    try:
        with Limits(64, 1.0):
            pass
    except OSError as err:
        return f"cannot create a cgroup (v{version}): {err}"
    return None


def evict_page_cache(*roots: Path) -> None:
    """Drop the cached pages of every file under ``roots`` (only those files: nobody else's
    cache), so that a run reads them again and the cgroup is charged for them, as a fresh
    container would be."""
    for root in roots:
        for path in Path(root).rglob("*"):
            try:
                if path.is_file() and not path.is_symlink():
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    finally:
                        os.close(fd)
            except OSError:
                pass


class Limits:
    """A fresh cgroup limited to ``mem_mb`` (page cache counted) and ``cpus``; ``run`` starts a
    command inside it and waits. Removed on exit, after killing whatever is left in it."""

    def __init__(self, mem_mb: int | None, cpus: float | None, pids: int | None = None):
        self.version = _version()
        self.name = f"mechgrade-test-{uuid.uuid4().hex[:8]}"
        self.mem_mb, self.cpus, self.pids = mem_mb, cpus, pids
        self.dirs: dict[str, Path] = {}

    def __enter__(self) -> "Limits":
        if self.version == 1:
            for ctl in ("memory", "cpu", "pids"):
                if (CG / ctl).is_dir():
                    self.dirs[ctl] = CG / ctl / self.name
                    self.dirs[ctl].mkdir()
            mem, cpu = self.dirs["memory"], self.dirs["cpu"]
            if self.mem_mb:
                (mem / "memory.limit_in_bytes").write_text(str(self.mem_mb << 20))
            if self.cpus:
                (cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (cpu / "cpu.cfs_quota_us").write_text(str(int(self.cpus * PERIOD_US)))
            if self.pids and "pids" in self.dirs:
                (self.dirs["pids"] / "pids.max").write_text(str(self.pids))
        else:
            wanted = {"memory", "cpu", "pids"} & set((CG / "cgroup.controllers").read_text().split())
            enabled = set((CG / "cgroup.subtree_control").read_text().split())
            if wanted - enabled:
                (CG / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted - enabled))
            d = CG / self.name
            d.mkdir()
            self.dirs = {"memory": d, "cpu": d, "pids": d}
            if self.mem_mb:
                (d / "memory.max").write_text(str(self.mem_mb << 20))
                (d / "memory.swap.max").write_text("0") if (d / "memory.swap.max").exists() else None
            if self.cpus:
                (d / "cpu.max").write_text(f"{int(self.cpus * PERIOD_US)} {PERIOD_US}")
            if self.pids:
                (d / "pids.max").write_text(str(self.pids))
        return self

    def run(self, cmd: list[str], *, env: dict | None = None, cwd: Path | None = None, timeout: float = 1500) -> Run:
        """Run ``cmd`` in the cgroup (it joins before exec) and wait; a hung command is killed."""
        procs = " ".join(str(d / "cgroup.procs") for d in dict.fromkeys(self.dirs.values()))
        wrapper = ["sh", "-c", f'for f in {procs}; do echo $$ > "$f"; done; exec "$@"', "sh", *cmd]
        start = time.perf_counter()
        proc = subprocess.Popen(wrapper, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                cwd=cwd)
        anon = [0.0]
        sampler = threading.Thread(target=self._sample_anon, args=(proc, anon), daemon=True)
        sampler.start()
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            out, err = proc.communicate()
        seconds = time.perf_counter() - start
        sampler.join()
        return Run(proc.returncode, seconds, self.peak_mb(), anon[0], self.oom_kills(), out, err)

    def _sample_anon(self, proc: subprocess.Popen, peak: list[float]) -> None:
        key = "total_rss" if self.version == 1 else "anon"
        while proc.poll() is None:
            try:
                stat = dict(line.split() for line in (self.dirs["memory"] / "memory.stat").read_text().splitlines())
                peak[0] = max(peak[0], int(stat[key]) / 2**20)
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(0.2)

    def peak_mb(self) -> float:
        mem = self.dirs["memory"]
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        return int((mem / name).read_text()) / 2**20

    def oom_kills(self) -> int:
        mem = self.dirs["memory"]
        text = (mem / ("memory.oom_control" if self.version == 1 else "memory.events")).read_text()
        fields = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return int(fields.get("oom_kill", 0))

    def pids_now(self) -> list[int]:
        return [int(p) for p in (self.dirs["memory"] / "cgroup.procs").read_text().split()]

    def kill_all(self) -> None:
        for _ in range(20):
            pids = self.pids_now()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.kill_all()
        for d in dict.fromkeys(self.dirs.values()):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:  # processes still exiting
                    time.sleep(0.1)
