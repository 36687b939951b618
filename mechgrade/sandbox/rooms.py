"""A sealed room for one worker: its own mount and IPC namespaces, in which every place a
worker could write that outlives it (the machine's world-writable folders: /tmp, /var/tmp,
/dev/shm, /run/lock, ...) is covered by a fresh, size-capped tmpfs of its own.

Whatever the worker leaves there (files, POSIX shared memory, SysV IPC objects, message
queues) dies with the namespaces when its last process ends, so nothing reaches the next
worker, and what it writes counts against the cap instead of pinning the machine's memory.
Entered in the worker while it still holds its privileges (root, or the user namespace
bubblewrap gave it), after the model has booted and before any student code.

Where the kernel refuses new namespaces (Docker's default seccomp profile), ``enter`` says
so and the trusted side falls back to sweeping (``sweep_uid``): every entry the worker's uid
owns in those places, and its SysV IPC objects, are removed after it ends.
"""

from __future__ import annotations

import ctypes
import functools
import os
import stat
from pathlib import Path

ROOM_MB = 64  # the room's one tmpfs (and its SysV shared memory): scratch files fit; a memory-pinning student does not
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
PR_SET_DUMPABLE = 4
# Where world-writable folders live on a Linux machine; walked a few levels deep (not /proc,
# /sys, or the system's read-only trees, which no unprivileged uid can write).
ROOTS = ("/tmp", "/var", "/run", "/dev", "/home", "/srv", "/mnt", "/media", "/opt")
DEPTH = 3


@functools.lru_cache(maxsize=1)
def writable_places() -> tuple[str, ...]:
    """Every folder (to ``DEPTH`` levels under ``ROOTS``) that any user may create entries in,
    outermost first: what an unprivileged worker can leave things in."""
    found: list[str] = []

    def walk(path: str, depth: int) -> None:
        try:
            st = os.lstat(path)
        except OSError:
            return
        if not stat.S_ISDIR(st.st_mode):
            return
        if st.st_mode & stat.S_IWOTH:
            found.append(path)
        if depth == 0:
            return
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.path not in ("/dev/pts", "/proc", "/sys"):
                walk(entry.path, depth - 1)

    for root in ROOTS:
        walk(root, DEPTH)
    return tuple(found)


def outermost(paths) -> list[str]:
    """``paths`` without those inside another of them (covering the outer one hides them)."""
    paths = sorted(set(paths), key=lambda p: (p.count("/"), p))
    out: list[str] = []
    for p in paths:
        if not any(p == o or p.startswith(o.rstrip("/") + "/") for o in out):
            out.append(p)
    return out


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    return libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class RoomRefused(OSError):
    """The kernel (or a seccomp profile) refused new namespaces: nothing was changed."""


def _unshare(libc) -> None:
    """New mount and IPC namespaces; an unprivileged process (bubblewrap's user namespace)
    needs a user namespace of its own for that, mapping its uid and gid to themselves."""
    if libc.unshare(CLONE_NEWNS | CLONE_NEWIPC) == 0:
        return
    uid, gid = os.geteuid(), os.getegid()
    # A fork of the zygote inherits its "not dumpable", which makes /proc/self/uid_map root's
    # and so unwritable: the worker is the student's own process, dumpable as any other.
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    if uid == 0 or libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC) != 0:
        err = ctypes.get_errno()
        raise RoomRefused(err, f"unshare: {os.strerror(err)}")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def enter(*, keep: tuple[Path, ...] = (), cover: tuple[str, ...] = (), size_mb: int = ROOM_MB) -> None:
    """Seal this process (and everything it starts) in a room: cover ``writable_places()`` and
    ``cover`` with one fresh tmpfs of ``size_mb``; ``keep`` (the worker's scratch folder)
    stays reachable at its path even where a covered place holds it. Raises ``RoomRefused``
    if the kernel refuses the namespaces (nothing changed), ``OSError`` if a mount fails
    after them (the process is then half-sealed and must not run student code)."""
    libc = _libc()
    _unshare(libc)
    # Nothing mounted from now on propagates back to the parent's namespace.
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    # Held open (in the new namespace: a mount of another one cannot be bound) while covered.
    keep_fds = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in outermost(os.path.realpath(k) for k in keep)]
    try:
        places = outermost([*writable_places(), *cover])
        _cover(libc, places, size_mb)
        _limit_sysv(size_mb)
        for path, fd in keep_fds:
            if any(path.startswith(p.rstrip("/") + "/") for p in places):
                os.makedirs(path, mode=0o755, exist_ok=True)
                _check(libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None), f"bind {path}")
    finally:
        for _, fd in keep_fds:
            os.close(fd)


def _cover(libc, places: list[str], size_mb: int) -> None:
    """One tmpfs of ``size_mb`` for all ``places`` (one budget, however many there are): it
    is mounted on the first, each place gets a folder of it, and the first's own folder is
    then mounted over the tmpfs's root, which nothing can reach any more."""
    if not places:
        return
    first = places[0].encode()
    opts = f"size={size_mb}m,mode=1777,nr_inodes=20000".encode()
    _check(libc.mount(b"tmpfs", first, b"tmpfs", MS_NOSUID | MS_NODEV, opts), f"mount tmpfs on {places[0]}")
    for i, place in reversed(list(enumerate(places))):  # the first last: its mount hides the others' folders
        folder = os.path.join(places[0], f".room-{i}")
        os.mkdir(folder)
        os.chmod(folder, 0o1777)
        _check(libc.mount(folder.encode(), place.encode(), None, MS_BIND, None), f"bind the room's {place}")


def _limit_sysv(size_mb: int) -> None:
    """The room's IPC namespace gets SysV limits within the same budget (as root: an
    unprivileged namespace cannot write them, and keeps the kernel's defaults)."""
    for name, value in (("shmmax", size_mb << 20), ("shmall", (size_mb << 20) // os.sysconf("SC_PAGE_SIZE")), ("msgmni", 16)):
        try:
            Path(f"/proc/sys/kernel/{name}").write_text(str(value))
        except OSError:
            pass


def sweep_uid(uid: int) -> int:
    """What ``uid`` left where a worker without a room could: entries it owns in every
    writable place (top level of each: deeper entries are inside one it owns, or inside a
    place of its own in the list), and its SysV shared memory, semaphores and message queues.
    Its processes must be dead first. Returns how many things were removed."""
    from mechgrade.sandbox.fs import remove_tree

    removed = 0
    for place in writable_places():
        try:
            entries = list(os.scandir(place))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    remove_tree(Path(entry.path))
                    removed += 1
            except OSError:
                pass
    return removed + remove_ipc(uid) + remove_message_queues(uid)


def remove_message_queues(uid: int) -> int:
    """POSIX message queues of ``uid`` (they live in the IPC namespace, listed only through an
    mqueue filesystem). Where none is mounted at /dev/mqueue (swept above when it is), root
    mounts one privately for a moment; where that is refused too, nothing can list them, and
    the kernel's per-user limit (RLIMIT_MSGQUEUE, 800 KB by default) is all that bounds them."""
    import tempfile

    from mechgrade.sandbox.fs import remove_tree

    if "/dev/mqueue" in writable_places() or os.geteuid() != 0:
        return 0
    libc = _libc()
    where = tempfile.mkdtemp(prefix="mechgrade-mqueue-")
    removed = 0
    try:
        if libc.mount(b"mqueue", where.encode(), b"mqueue", MS_NOSUID | MS_NODEV, None) != 0:
            return 0
        try:
            for entry in os.scandir(where):
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    os.unlink(entry.path)
                    removed += 1
        finally:
            libc.umount2(where.encode(), 2)  # MNT_DETACH
    finally:
        remove_tree(Path(where))
    return removed


IPC_RMID = 0
SYSVIPC = (("shm", "shmctl", 1), ("sem", "semctl", 1), ("msg", "msgctl", 1))  # (table, call, column of the id)


def ipc_objects(uid: int) -> list[tuple[str, int]]:
    """(kind, id) of every SysV IPC object owned or created by ``uid`` (/proc/sysvipc)."""
    found = []
    for kind, _, id_col in SYSVIPC:
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        header = lines[0].split() if lines else []
        owner = [i for i, name in enumerate(header) if name in ("uid", "cuid")]
        for line in lines[1:]:
            cols = line.split()
            if any(int(cols[i]) == uid for i in owner if i < len(cols)):
                found.append((kind, int(cols[id_col])))
    return found


def remove_ipc(uid: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    calls = {kind: getattr(libc, call) for kind, call, _ in SYSVIPC}
    removed = 0
    for kind, ident in ipc_objects(uid):
        ret = calls[kind](ident, 0, IPC_RMID, None) if kind == "sem" else calls[kind](ident, IPC_RMID, None)
        removed += ret == 0
    return removed
