"""Where student code runs: one ``Sandbox``, chosen once per run, that the worker launcher,
the zygote of ``mechgrade grade`` and the Gradescope autograder all use.

Two layers, each used where the platform offers it:

- **namespaces** (bubblewrap, as any user on Linux): the worker gets its own PID namespace
  (``kill(-1)`` reaches only its own processes; when it ends, all of them end), no network,
  private ``/tmp``, ``/var/tmp`` and ``/dev/shm``, and a filesystem view built from nothing:
  the system folders and the Python installation read-only, mechgrade's worker-side modules
  (no reference, graders, answer keys or mutant snippets), the model, and its scratch copy of
  the workspace, the one writable place. ``$HOME``, the key cache, other submissions and the
  gradebook do not exist there.
- **user** (as root): the worker boots its model, then drops to a dedicated unprivileged uid
  (a fresh one per run, or the autograder's named user) with no groups, no capabilities,
  ``no_new_privs``, a process limit and an ``oom_score_adj`` of 1000 it cannot lower. Every
  process of that uid is killed when the run ends; the worker seals itself in a room where
  the kernel allows (``mechgrade.sandbox.rooms``), and elsewhere what its uid left in the
  machine's writable places and IPC is swept.

In both, the worker seals itself in a room of its own where the zygote of ``mechgrade grade``
forks it (``mechgrade.sandbox.rooms``: its own writable places and IPC), and installs a
system-call filter (``mechgrade.sandbox.seccomp``) just before any student code.

``none`` (no bubblewrap, not root: macOS, or user namespaces disabled) protects nothing
beyond the worker being a separate process; ``mechgrade grade`` refuses it unless told
``--no-sandbox``. ``$MECHGRADE_SANDBOX`` (``auto``, ``namespaces``, ``user``, ``none``)
overrides the choice, e.g. for a benchmark.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mechgrade.errors import MechgradeError


class SandboxUnavailable(MechgradeError):
    pass


NO_SANDBOX_HELP = ("no sandbox is available here (bubblewrap is not installed or user namespaces are disabled, and "
                   "this is not root): install bubblewrap (Debian/Ubuntu: apt install bubblewrap), or grade as root "
                   "inside a container, or pass --no-sandbox to run student code as yourself")


@dataclass(frozen=True)
class Sandbox:
    namespaces: bool
    uid: int | None = None       # root only: the worker drops to this uid before any student code
    gid: int | None = None
    user: str | None = None      # a named account (the autograder's), else a fresh numeric uid

    @property
    def name(self) -> str:
        layers = (["namespaces (bubblewrap)"] if self.namespaces else []) + \
                 ([f"user {self.user or self.uid}"] if self.uid is not None else [])
        return " + ".join(layers) or "none"

    @property
    def isolated(self) -> bool:
        return self.namespaces or self.uid is not None

    def command(self, argv: list[str], *, scratch: Path, readable: tuple[Path, ...] = ()) -> list[str]:
        """``argv`` wrapped so that it starts inside the namespaces (unchanged without them).
        ``scratch`` is the one writable folder; ``readable`` adds read-only paths (a model)."""
        if not self.namespaces:
            return argv
        from mechgrade.sandbox.view import bwrap_args

        return ["bwrap", *bwrap_args(scratch=scratch, readable=readable, root=os.geteuid() == 0), "--", *argv]

    @property
    def seal(self) -> str | None:
        """How a worker forked by ``mechgrade grade``'s zygote enters its sealed room
        (``mechgrade.sandbox.rooms``): required inside the namespaces (the forks share the
        zygote's bubblewrap; its user namespace always allows a room), tried as root without
        them (a container's seccomp profile may refuse it; ``cleanup`` then sweeps)."""
        return "required" if self.namespaces else "try" if self.uid is not None else None

    def worker_args(self) -> list[str]:
        """Arguments that make a worker started on its own seal itself in (the user layer
        alone: under the namespaces, its own bubblewrap is its room), drop to the sandbox's
        uid, and confine itself (``mechgrade.sandbox.seccomp``), after booting its model."""
        if not self.isolated:
            return []
        if self.uid is None:
            return ["--confine"]
        return (["--seal", "try"] if not self.namespaces else []) + ["--drop-uid", str(self.uid), "--drop-gid", str(self.gid), "--confine"]

    def own(self, path: Path) -> None:
        """Hand a tree the trusted side just built to the worker's uid (no-op without one)."""
        if self.uid is not None:
            from mechgrade.sandbox.fs import chown_tree

            chown_tree(path, self.uid, self.gid)

    def cleanup(self) -> None:
        """Kill what the worker's uid left running and remove its files in shared temporary
        folders (the namespace layer needs neither: its processes and /tmp die with it)."""
        if self.uid is not None:
            from mechgrade.sandbox.procs import kill_uid
            from mechgrade.sandbox.rooms import sweep_uid

            kill_uid(self.uid)
            if not self.namespaces:
                sweep_uid(self.uid)


@functools.lru_cache(maxsize=1)
def namespaces_work() -> bool:
    """Whether bubblewrap can build our sandbox here (installed, user namespaces allowed)."""
    if not shutil.which("bwrap"):
        return False
    try:
        probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent",
                                *([] if os.geteuid() == 0 else ["--unshare-user"]), "true"],
                               capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def choose(*, user: str | None = None, required: bool = False) -> Sandbox:
    """The strongest sandbox this process can build. ``user``: the named account to drop to as
    root (the autograder's); otherwise a fresh unused uid. ``required``: raise
    ``SandboxUnavailable`` (one sentence) instead of returning ``none``."""
    mode = os.environ.get("MECHGRADE_SANDBOX", "auto")
    if mode not in ("auto", "namespaces", "user", "none"):
        raise SandboxUnavailable(f"MECHGRADE_SANDBOX={mode!r} is not one of auto, namespaces, user, none")
    root = os.geteuid() == 0
    ns = mode in ("auto", "namespaces") and namespaces_work()
    if mode == "namespaces" and not ns:
        raise SandboxUnavailable("MECHGRADE_SANDBOX=namespaces, but bubblewrap cannot create namespaces here")
    uid = gid = None
    if root and mode in ("auto", "user", "namespaces"):
        uid, gid = _account(user)
    box = Sandbox(namespaces=ns, uid=uid, gid=gid, user=user if uid is not None else None)
    if required and not box.isolated:
        raise SandboxUnavailable(NO_SANDBOX_HELP[0].upper() + NO_SANDBOX_HELP[1:] + ".")
    return box


def _account(user: str | None) -> tuple[int, int]:
    if user is None:
        from mechgrade.sandbox.procs import free_uid

        uid = free_uid()
        return uid, uid
    import pwd

    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise SandboxUnavailable(f"The worker user '{user}' does not exist; create it (setup.sh does) or drop the setting.") from None
    if account.pw_uid == 0:
        raise SandboxUnavailable(f"The worker user '{user}' is root; student code needs an unprivileged user.")
    return account.pw_uid, account.pw_gid
