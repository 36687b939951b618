"""Run inside the worker (or a forked worker) while it is still root, after its model has
booted and before any student code: become the dedicated unprivileged uid for good."""

from __future__ import annotations

import ctypes
import os
import resource

PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
NPROC = 256  # processes the worker's uid may have: a fork bomb stops here


def oom_first() -> None:
    """If memory still runs out, the kernel kills this process first. Written as root, the
    value is also the floor (``oom_score_adj_min``): the student's code cannot lower it. Written
    by an ordinary user it is only a request the student could undo; then the namespaces and
    the memory limit are what protect the grading process."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def drop_to(uid: int, gid: int) -> None:
    """Irrevocably become ``uid``:``gid`` with no supplementary groups, no capabilities and
    ``no_new_privs`` (no setuid binary can give anything back), under a process limit."""
    oom_first()
    resource.setrlimit(resource.RLIMIT_NPROC, (NPROC, NPROC))
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid or os.getgroups() not in ([], [gid]):
        raise OSError("the worker could not drop its privileges")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise OSError("the worker could regain root after dropping its privileges")


def not_dumpable() -> None:
    """A process of the same uid can no longer ptrace this one or read its memory (the zygote,
    which later submissions are forked from, under the namespace layer)."""
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
