"""Drive ``mechgrade`` as a person does: in a real pseudo-terminal of a given width, in its own
process group, interrupted by SIGINT to that group (what Ctrl-C sends), with its exit status."""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@dataclass
class Finished:
    returncode: int
    output: str  # what the terminal showed, escape sequences removed
    leftover_pids: list[int]  # processes still alive after it exited that are its own (see ``run``)


def mechgrade() -> str:
    return shutil.which("mechgrade") or str(Path(os.sys.executable).with_name("mechgrade"))


def marked_pids(sid: int, marker: str) -> list[int]:
    """Live processes of session ``sid``, or whose command line or environment mentions
    ``marker``: workers start sessions of their own, but their folders are under its TMPDIR."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            mentions = marker.encode() in (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if fields[0] != "Z" and (int(fields[3]) == sid or mentions):  # fields[3]: the session id
            pids.append(int(entry.name))
    return pids


def run(args: list[str], *, cols: int = 80, env: dict | None = None, cwd: Path | None = None,
        interrupt_when: str | None = None, interrupt_after: float | None = None, timeout: float = 300) -> Finished:
    """Run ``mechgrade ARGS`` in a ``cols``-wide pty in a new session. SIGINT goes to its process
    group once the screen shows ``interrupt_when`` (a regex) or ``interrupt_after`` seconds have
    passed. Processes left behind are those of its session or mentioning its ``TMPDIR``."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    proc = subprocess.Popen([mechgrade(), *args], stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                            env={**os.environ, "COLUMNS": str(cols), "TERM": "xterm", **(env or {})},
                            start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    start, sent = time.monotonic(), False
    while True:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                data = b""
            if not data and proc.poll() is not None:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
        elapsed = time.monotonic() - start
        if not sent and ((interrupt_after is not None and elapsed >= interrupt_after) or
                         (interrupt_when and re.search(interrupt_when, ANSI.sub("", b"".join(chunks).decode(errors="replace"))))):
            os.killpg(proc.pid, signal.SIGINT)
            sent = True
        if elapsed > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            raise TimeoutError(b"".join(chunks).decode(errors="replace")[-3000:])
    proc.wait()
    os.close(master)
    if (interrupt_when or interrupt_after is not None) and not sent:
        raise AssertionError(f"the moment to interrupt ({interrupt_when or interrupt_after}) never came: "
                             + ANSI.sub("", b"".join(chunks).decode(errors="replace"))[-2000:])
    time.sleep(0.5)  # what the command killed on its way out has had time to go
    leftover = marked_pids(proc.pid, (env or {}).get("TMPDIR") or f"\0{proc.pid}\0")
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    return Finished(proc.returncode, ANSI.sub("", b"".join(chunks).decode(errors="replace")), leftover)
