"""The grading side of ``mechgrade.engine.zygote``: one preloaded process, inside the run's
sandbox, that forks a fresh worker per submission (``mechgrade grade``).

Between two submissions nothing of the first survives: each worker is sealed in a room of
its own (``mechgrade.sandbox.rooms``: its /tmp, /var/tmp, /dev/shm and IPC die with it, and
the zygote's scratch root shows it only its own folder); under the namespace layer the
zygote kills every other process of its PID namespace before each fork; under the user layer
each submission's worker drops to a uid of its own, all of whose processes are killed, and
whatever it left in the machine's writable places swept, when it ends. The zygote itself cannot be traced or read by a worker (it is not dumpable), and one
that dies or stops answering is replaced, with a fresh sandbox, at the next fork.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from mechgrade.engine.runner import BOOT_TIMEOUT_S, MAX_HEADER, StudentWorker, model_paths, worker_env
from mechgrade.errors import MechgradeError
from mechgrade.sandbox import Sandbox, choose
from mechgrade.sandbox.fs import remove_tree
from mechgrade.sandbox.procs import free_uid

REPLY_TIMEOUT_S = 30.0


class Zygote:
    def __init__(self, *, lesson: str, model_spec: str, mem_mb: int = 2048, sandbox: Sandbox | None = None):
        self.lesson, self.model_spec, self.mem_mb = lesson, model_spec, mem_mb
        self.sandbox = sandbox if sandbox is not None else choose()
        self.proc: subprocess.Popen | None = None
        self._start()

    def _start(self) -> None:
        # The zygote's scratch root: one folder per submission inside it. As root it is only
        # traversable (each student's folder is its own uid's, 0700); otherwise it is ours.
        self.root = Path(tempfile.mkdtemp(prefix="mechgrade-zygote-"))
        self.root.chmod(0o711 if self.sandbox.uid is not None else 0o700)
        self.ctrl, child = socket.socketpair()
        cmd = [sys.executable, "-I", "-m", "mechgrade.engine.zygote", "--lesson", self.lesson, "--model", self.model_spec,
               "--mem-mb", str(self.mem_mb), "--ctrl-fd", str(child.fileno())]
        if self.sandbox.namespaces:
            cmd.append("--own-pid-namespace")
        cmd = self.sandbox.command(cmd, scratch=self.root, readable=model_paths(self.model_spec))
        self.proc = subprocess.Popen(cmd, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, cwd=self.root,
                                     env=worker_env(self.root, self.sandbox),
                                     start_new_session=True)
        child.close()
        self._lines = self.ctrl.makefile("rb")
        if not self._ask(None, timeout=BOOT_TIMEOUT_S).get("ready"):
            self.close()
            raise MechgradeError("The grading zygote could not start (see the messages above).")

    def _ask(self, request: dict | None, fds: list[int] = (), timeout: float = REPLY_TIMEOUT_S) -> dict:
        """Send ``request`` (with ``fds``) and read one reply line; {} if the zygote is gone,
        stopped answering, or answered nonsense."""
        try:
            self.ctrl.settimeout(timeout)
            if request is not None:
                socket.send_fds(self.ctrl, [json.dumps(request).encode()], list(fds))
            line = self._lines.readline(MAX_HEADER)
            reply = json.loads(line) if line else {}
        except (OSError, ValueError, RecursionError):
            return {}
        return reply if isinstance(reply, dict) else {}

    def _restart(self) -> None:
        self.close()
        self._start()

    def fork(self, worker: "ForkedWorker") -> tuple["ForkedProcess", int]:
        """A fresh worker process for ``worker`` (its scratch folder already staged)."""
        for attempt in range(2):
            if self.sandbox.namespaces and not self.purge() and attempt == 0:
                self._restart()
                continue
            req_r, req_w = os.pipe()
            resp_r, resp_w = os.pipe()
            sandbox = worker.sandbox
            request = {"workspace": str(worker.copy), "cwd": str(worker.scratch),
                       "drop": None if sandbox.uid is None else [sandbox.uid, sandbox.gid],
                       "seal": sandbox.seal, "cover": [str(self.root)], "confine": sandbox.isolated}
            reply = self._ask(request, [req_r, resp_w])
            os.close(req_r)
            os.close(resp_w)
            if isinstance(reply.get("pid"), int):
                return ForkedProcess(reply["pid"], os.fdopen(req_w, "wb")), resp_r
            os.close(req_w)
            os.close(resp_r)
            if attempt == 0:
                self._restart()
        raise MechgradeError("The grading zygote stopped answering twice in a row.")

    def purge(self) -> bool:
        """Under the namespace layer: kill every process in the zygote's PID namespace but
        itself (what a submission left running). False if the zygote did not answer."""
        return "purged" in self._ask({"purge": True})

    def end(self, worker: "ForkedWorker") -> None:
        """Stop ``worker``'s process and everything it started."""
        if self.sandbox.namespaces:
            self.purge()
        elif worker.sandbox.uid is None:
            try:
                os.killpg(worker.proc.pid, signal.SIGKILL)  # same PID namespace: no sandbox
            except (ProcessLookupError, PermissionError):
                pass

    def worker(self, workspace: Path, deadline: float | None = None) -> "ForkedWorker":
        return ForkedWorker(workspace, zygote=self, deadline=deadline)

    def close(self) -> None:
        if self.proc is not None:
            self.ctrl.close()
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            self.proc = None
            remove_tree(self.root)


class ForkedProcess:
    """Enough of ``Popen`` for a worker forked by the zygote (its parent, which reaps it). Its pid
    may be one of the zygote's PID namespace, so it is never signalled from here."""

    def __init__(self, pid: int, stdin):
        self.pid, self.stdin = pid, stdin

    def wait(self, timeout: float | None = None) -> None:
        self.stdin.close()
        return None  # exit status unknown: only the zygote could collect it


class ForkedWorker(StudentWorker):
    def __init__(self, workspace: Path, *, zygote: Zygote, deadline: float | None = None):
        # As root, each submission's worker gets a uid of its own.
        own = zygote.sandbox if zygote.sandbox.uid is None else dataclasses.replace(zygote.sandbox, uid=(u := free_uid()), gid=u)
        super().__init__(workspace, lesson=zygote.lesson, model_spec=zygote.model_spec, mem_mb=zygote.mem_mb, sandbox=own,
                         deadline=deadline)
        self.zygote = zygote

    def _new_scratch(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="student-", dir=self.zygote.root))

    def _launch(self):
        return self.zygote.fork(self)

    def stop(self) -> None:
        if self.proc is not None:
            self.zygote.end(self)
            self.proc.wait()
            self._ended()
