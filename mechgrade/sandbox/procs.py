"""Processes and leftovers of a dedicated worker uid (the trusted side runs as root)."""

from __future__ import annotations

import os
import pwd
import random
import signal
import time
from pathlib import Path


# Worker uids are drawn from here when no named user is given: far above any real account
# (useradd stops at 60000; container tools map 100000-165535), and checked to be unused.
UID_RANGE = (2_000_000, 2_900_000)


def uid_processes(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def kill_uid(uid: int) -> int:
    """SIGKILL every process of ``uid``; passes until none is left (a fork bomb spawns while we
    scan: a SIGSTOP first freezes each one found, so the next pass catches its children)."""
    killed = 0
    for attempt in range(50):
        pids = uid_processes(uid)
        if not pids:
            break
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                    killed += sig == signal.SIGKILL
                except (ProcessLookupError, PermissionError):
                    pass
        time.sleep(0.01 * min(attempt + 1, 10))
    return killed


def free_uid() -> int:
    """An unused uid for one run's worker: no account has it and no process runs as it."""
    for _ in range(100):
        uid = random.randrange(*UID_RANGE)
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        if not uid_processes(uid):
            return uid
    raise RuntimeError("no free uid found for the worker")
