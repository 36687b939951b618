"""Trees that hostile code made or handed us, walked without trusting them.

Nothing here recurses (a 5,000-deep folder must not raise RecursionError in the trusted
process), follows a symlink, or reads more than its caps: these are the only ways the
trusted side copies a submission in or removes a worker's scratch space.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import threading
from pathlib import Path

from mechgrade.errors import WorkspaceError

MAX_DEPTH = 12           # folders below a submission's root that are looked into
MAX_FILES = 2_000        # regular files copied from one submission
MAX_BYTES = 64 << 20     # their total size
MAX_FILE_BYTES = 16 << 20


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything below it, however deep (a 5,000-deep tree has paths far
    over PATH_MAX), without following symlinks or leaving the file system. Folders the owner
    made unreadable (mode 000) are opened first. Missing paths are fine; nothing is raised.
    GNU ``chmod -R`` and ``rm -rf`` walk by file descriptor, which is what depth needs."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path) or os.path.islink(path):
        _unlink(path)
        return
    # Ctrl-C (SIGINT to the terminal's process group) must not stop a removal half-way: `rm` runs
    # in a session of its own, and the signal waits until the tree is gone.
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    with ctrl_c_deferred():
        subprocess.run(["chmod", "-R", "u+rwx", "--", str(path)], **quiet)
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], **quiet)
        if os.path.lexists(path):  # not GNU coreutils (e.g. macOS): best effort
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def ctrl_c_deferred():
    """SIGINT blocked in here (main thread only; signals reach no other): a pending one is
    raised as KeyboardInterrupt on the way out. For clean-ups that must not stop half-way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def copy_submission(source: Path, dest: Path, *, max_depth: int = MAX_DEPTH, max_files: int = MAX_FILES,
                    max_bytes: int = MAX_BYTES, strict: bool = True) -> list[Path]:
    """Copy the regular files under ``source`` into ``dest`` (created): no symlink is followed or
    copied, folders deeper than ``max_depth`` and files beyond the caps are left out, and each
    file is read through a descriptor opened with O_NOFOLLOW, so a swap to a link in between
    reads nothing. Over the caps: ``WorkspaceError`` if ``strict``, else the rest is left out."""
    copied: list[Path] = []
    total = 0
    dest.mkdir(parents=True, exist_ok=True)
    stack = [(Path(source), Path(dest), 0)]
    while stack:
        folder, target, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth < max_depth:
                    (target / entry.name).mkdir(exist_ok=True)
                    stack.append((Path(entry.path), target / entry.name, depth + 1))
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            size = entry.stat(follow_symlinks=False).st_size
            if len(copied) >= max_files or total + size > max_bytes or size > MAX_FILE_BYTES:
                if not strict:
                    continue
                raise WorkspaceError(f"the submission is too large (at most {max_files} files and "
                                     f"{max_bytes >> 20} MB, {MAX_FILE_BYTES >> 20} MB per file, are graded)")
            copy_file(Path(entry.path), target / entry.name)
            total += size
            copied.append(target / entry.name)
    return copied


def copy_file(source: Path, dest: Path) -> None:
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        with os.fdopen(fd, "rb", closefd=False) as src, open(dest, "xb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    finally:
        os.close(fd)


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give a tree the trusted side just built to ``uid``, never following a symlink (there are
    none in a fresh copy; ``lchown`` makes sure a swapped-in link is changed, not its target)."""
    stack = [str(path)]
    while stack:
        folder = stack.pop()
        os.chown(folder, uid, gid, follow_symlinks=False)
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            else:
                os.chown(entry.path, uid, gid, follow_symlinks=False)
