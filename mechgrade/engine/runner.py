"""The grading side of the isolation boundary: start, talk to, time out and restart the
student worker. Nothing here imports student code or unpickles anything it sends."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from mechgrade.engine.codec import from_bytes
from mechgrade.engine.protocol import MAX_CELL_ERROR, MAX_CELL_ERRORS, CallReport, CallRequest, CallResponse, Greeting
from mechgrade.errors import MechgradeError
from mechgrade.sandbox import Sandbox, choose
from mechgrade.sandbox.fs import ctrl_c_deferred, remove_tree
from mechgrade.workspace_kind import Workspace

BOOT_TIMEOUT_S = 180.0
GRACE_S = 5.0  # after a call's limit, how long the worker may take to interrupt it and answer before it is killed
MIN_CALL_S = 1.0  # a case is not started with less than this left before the run's deadline
DEADLINE_REACHED = "the time allowed for grading the whole submission ran out"
NOT_RUN = f"not run: {DEADLINE_REACHED} before this case (earlier cases used it up, e.g. by running into their time limits)"
WORKER_ENV = {"PATH", "LANG", "LC_ALL", "TRANSFORMERS_OFFLINE", "MECHGRADE_MODEL", "TOKENIZERS_PARALLELISM"}
MAX_HEADER = 1 << 20     # a response header longer than this is garbage, not an answer
MAX_BLOB = 1 << 30       # nor is an output over 1 GiB (GPT-2's logits for a batch are ~16 MB)


class Outcome(CallReport):
    """One student call as the grader sees it: a decoded value, or a failure with a reason."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    value: Any = None


class WorkerDied(Exception):
    pass


class Garbage(ValueError):
    """The worker wrote something over the grading channel that is not a valid message."""


def stage_workspace(workspace: Path, scratch: Path) -> Path:
    """Copy the student's workspace (a folder of modules, or one notebook) into ``scratch``;
    return the copy's path, which is what the worker is told to grade."""
    from mechgrade.sandbox.fs import copy_submission

    dest = scratch / "workspace"
    dest.mkdir()
    if Workspace.at(workspace).is_notebook:
        from mechgrade.sandbox.fs import copy_file

        copy_file(workspace, dest / workspace.name)
        return dest / workspace.name
    copy_submission(workspace, dest, max_depth=2, strict=False)
    return dest


def model_paths(model_spec: str) -> tuple[Path, ...]:
    """What a sandboxed worker must read to boot the model: a local model's folder, or a hub
    model's whole cache entry (its snapshot links into ``blobs/``); the embedded model ships
    inside the package, which the sandbox shows anyway."""
    from mechgrade.models.spec import resolve

    source = resolve(model_spec)
    if source.directory is None or source.kind == "embedded":
        return ()
    parts = Path(source.directory).parts
    if "snapshots" in parts:
        return (Path(*parts[:parts.index("snapshots")]).resolve(),)
    return (Path(source.directory).resolve(),)


def worker_env(scratch: Path, sandbox: Sandbox) -> dict[str, str]:
    """The worker's environment: what booting the model needs, and nothing that names a
    trusted path it could probe. HOME and TMPDIR are its scratch folder."""
    if sandbox.isolated:
        env = {k: v for k, v in os.environ.items() if k in WORKER_ENV or k.startswith(("HF_", "OMP_", "MKL_", "MALLOC_"))}
    else:  # no sandbox: the student's own `check`, as themselves
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(HOME=str(scratch), TMPDIR=str(scratch))
    if sandbox.uid is not None:
        env["USER"] = sandbox.user or "mechgrade-worker"
    return env


class StudentWorker:
    """A long-lived worker process for one workspace; restarted after a timeout or crash."""

    def __init__(self, workspace: Path, *, lesson: str, model_spec: str, mem_mb: int = 2048, sandbox: Sandbox | None = None,
                 deadline: float | None = None):
        """``sandbox``: where the student's code runs (default: the strongest available here).
        ``deadline``: a ``time.monotonic()`` by which every call must have ended (the whole
        run's budget, e.g. below Gradescope's limit); no call or boot waits past it."""
        self.workspace = Path(workspace).resolve()
        self.notebook = Workspace.at(self.workspace).is_notebook  # its boot runs student code (the graded cells)
        self.lesson, self.model_spec, self.mem_mb = lesson, model_spec, mem_mb
        self.sandbox = sandbox if sandbox is not None else choose()
        self.deadline = deadline
        self.imported: set[str] = set()          # modules this worker process has imported
        self.hung_imports: dict[str, float] = {}  # module -> the time limit its import ran past
        self.timed_out: dict[tuple[str, str], float] = {}  # (module, function) -> the time limit it ran past
        self.boot_failure: Outcome | None = None  # why the worker could not start: every later case fails at once
        self.boot_deaths = 0
        self.cell_errors: list[str] = []  # a notebook's failing cells, from the worker's greeting
        self.proc: subprocess.Popen | None = None
        self._next_id = 0
        self.restarts = 0

    # -- process management ----------------------------------------------------------------
    def start(self) -> None:
        """Spawn the worker and wait until it has booted its model."""
        self.spawn()
        self._wait_ready()

    def spawn(self) -> None:
        """Spawn without waiting, so that the worker boots while the caller does other work.
        The worker gets a fresh scratch folder holding a copy of the workspace (regular files
        only): that copy is all of the student's it reads, and the only place it may write."""
        self.scratch = self._new_scratch()
        self._log = None
        try:  # from the folder's first moment: a Ctrl-C anywhere in here leaves nothing behind
            self._log = tempfile.TemporaryFile()  # the worker's stdout and stderr, for boot errors
            self.copy = stage_workspace(self.workspace, self.scratch)
            self.sandbox.own(self.scratch)
            self.proc, self._resp = self._launch()
        except BaseException:
            if self._log is not None:
                self._log.close()
            remove_tree(self.scratch)
            self.proc = None
            raise
        self._buf = b""
        self._ready = False

    def _new_scratch(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="mechgrade-worker-"))

    def _launch(self):
        """Start a worker process: (a handle with pid, stdin and wait(), the response fd)."""
        r, w = os.pipe()
        cmd = [sys.executable, "-I", "-m", "mechgrade.engine.worker", "--workspace", str(self.copy),
               "--lesson", self.lesson, "--model", self.model_spec, "--mem-mb", str(self.mem_mb), "--resp-fd", str(w),
               *self.sandbox.worker_args()]
        cmd = self.sandbox.command(cmd, scratch=self.scratch, readable=model_paths(self.model_spec))
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT,
                                    pass_fds=(w,), cwd=self.scratch, env=worker_env(self.scratch, self.sandbox),
                                    start_new_session=True)
        finally:
            os.close(w)
        return proc, r

    def _wait_ready(self) -> None:
        failure = self._await_boot()
        if failure is not None:
            raise MechgradeError(failure.message)

    def _await_boot(self) -> Outcome | None:
        """Wait for the worker's greeting. A boot that dies, hangs past its limit (a notebook cell
        that ignores its alarm) or greets wrongly stops the worker and returns why."""
        limit = min(BOOT_TIMEOUT_S, self.time_left())
        try:
            greeting = Greeting.model_validate(self._read_header(time.monotonic() + limit))
            failure = None if greeting.ready else Outcome(ok=False, failure="crashed", message="The grading worker sent an unexpected greeting.")
        except WorkerDied as err:
            failure = Outcome(ok=False, failure="crashed", message=f"The grading worker could not start: {err}. {self._log_tail()}".strip())
        except TimeoutError:
            what = f"running the graded cells of {self.workspace.name}" if self.notebook else "booting the model"
            why = f" ({self._log_tail()}: a cell that never ends and ignores its time limit?)" if self.notebook else ""
            failure = Outcome(ok=False, failure="timeout", seconds=limit,
                              message=f"The grading worker did not finish {what} within {limit:.3g} s{why}")
            if limit < BOOT_TIMEOUT_S:  # cut short by the run's deadline
                failure = Outcome(ok=False, failure="not_run", message=f"{NOT_RUN}; the worker was still {what}{why}")
        except ValueError:  # Garbage, or a greeting that is not a Greeting (pydantic's ValidationError)
            failure = Outcome(ok=False, failure="crashed", message="The grading worker sent an unexpected greeting.")
        if failure is not None:
            self.stop()
            return failure
        self._ready = True
        # The worker's word: kept only within the greeting's bounds (its notebook may have forged it).
        self.cell_errors = [e[:MAX_CELL_ERROR] for e in greeting.cell_errors[:MAX_CELL_ERRORS]]
        return None

    def time_left(self) -> float:
        """Seconds until the run's deadline (infinite without one)."""
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def stop(self) -> None:
        """End the worker and everything it started, then remove its scratch folder (however
        deep, never following a link it made)."""
        if self.proc is not None:
            with ctrl_c_deferred():  # a clean-up that Ctrl-C stopped half-way would leave the rest behind
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # bubblewrap, or the worker itself
                except (ProcessLookupError, PermissionError):
                    pass
                self.proc.wait()
                self._ended()

    def _ended(self) -> None:
        """After the worker's process is gone: what it left behind goes too."""
        self.proc = None
        with ctrl_c_deferred():  # a Ctrl-C now waits until the worker's processes and files are gone
            os.close(self._resp)
            self._log.close()
            self.sandbox.cleanup()
            remove_tree(self.scratch)

    def __enter__(self) -> "StudentWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _log_tail(self) -> str:
        try:
            self._log.seek(0)
            lines = self._log.read().decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else ""
        except (OSError, ValueError):
            return ""

    # -- framing -----------------------------------------------------------------------------
    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([self._resp], [], [], left)
        if not ready:
            raise TimeoutError
        chunk = os.read(self._resp, 1 << 20)
        if not chunk:
            raise WorkerDied("the worker process exited")
        self._buf += chunk

    def _read_header(self, deadline: float) -> dict:
        """One JSON line from the worker; ``Garbage`` for anything else (too long, too deep, not
        an object): the worker runs the student's code, so what it sends is the student's doing."""
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_HEADER:
                raise Garbage("a header line over 1 MB")
            self._fill(deadline)
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            header = json.loads(line)
        except (ValueError, RecursionError) as err:
            raise Garbage(type(err).__name__) from None
        if not isinstance(header, dict):
            raise Garbage("a header that is not an object")
        return header

    def _read_blob(self, n: int, deadline: float) -> bytes:
        if not 0 <= n <= MAX_BLOB:
            raise Garbage(f"a blob of {n} bytes")
        while len(self._buf) < n:
            self._fill(deadline)
        blob, self._buf = self._buf[:n], self._buf[n:]
        return blob

    # -- calls ----------------------------------------------------------------------------------
    def call(self, module: str, function: str, builder: str, params: dict, timeout_s: float) -> Outcome:
        """Run ``module.function`` on the case built from ``params``. The module is imported first,
        on its own (once per worker): an import that never ends is found once and costs each
        later case of that module nothing, instead of its full time limit. Likewise a function
        that ran past its limit once, and a worker that could not start, fail their later cases
        at once; and once the run's deadline is near, cases are not run at all (with why)."""
        if self.boot_failure is not None:
            return self.boot_failure.model_copy()
        if (module, function) in self.timed_out:
            return Outcome(ok=False, failure="timeout", message=f"{function} did not return within {self.timed_out[module, function]:g} s "
                           "on an earlier case (an endless loop, or far too much work?), so its other cases were not run")
        if self.time_left() < MIN_CALL_S:
            return Outcome(ok=False, failure="not_run", message=NOT_RUN)
        if module in self.hung_imports:
            return Outcome(ok=False, failure="timeout", message=f"{module}.py did not finish importing within "
                           f"{self.hung_imports[module]:g} s on an earlier case (an endless loop or a long computation "
                           "at module level?), so its functions cannot be called")
        if module not in self.imported:
            probe = self._exchange(CallRequest(id=0, module=module, function=function, builder=builder, params={}, import_only=True),
                                   timeout_s, function)
            if self.boot_failure is not None or probe.failure == "not_run" or not self._ready:
                return probe
            if probe.failure == "timeout":
                self.hung_imports[module] = timeout_s
                probe.message = (f"{module}.py did not finish importing within {timeout_s:g} s (an endless loop or a long "
                                 "computation at module level?); it was stopped")
                return probe
            if probe.failure == "crashed":  # e.g. os._exit() at module level: reported as before, once
                return probe
            if probe.ok:
                self.imported.add(module)
        out = self._exchange(CallRequest(id=0, module=module, function=function, builder=builder, params=params), timeout_s, function)
        if out.failure == "timeout" and self.boot_failure is None:
            self.timed_out[module, function] = timeout_s
        return out

    def _exchange(self, req: CallRequest, timeout_s: float, function: str) -> Outcome:
        if self.proc is None:
            self.spawn()
        if not self._ready:
            failure = self._await_boot()
            if failure is not None:
                self.boot_deaths += 1
                # A module workspace runs no student code while booting: a boot that died (e.g. memory
                # still held by a killed fork bomb's children) is tried again, once; a hang, a notebook,
                # or a second death fails every later case at once.
                if failure.failure != "crashed" or self.notebook or self.boot_deaths > 1:
                    self.boot_failure = failure
                return failure
        left = self.time_left()
        if left < MIN_CALL_S:  # the boot used up what was left
            return Outcome(ok=False, failure="not_run", message=NOT_RUN)
        self._next_id += 1
        req = req.model_copy(update={"id": self._next_id, "timeout_s": timeout_s})
        start = time.monotonic()
        deadline = start + min(timeout_s + GRACE_S, left)  # the worker stops the call itself at timeout_s, if it can
        try:
            self.proc.stdin.write((req.model_dump_json() + "\n").encode())
            self.proc.stdin.flush()
            header = CallResponse.model_validate(self._read_header(deadline))
            blob = self._read_blob(header.blob_len, deadline)
        except TimeoutError:
            self._restart()
            if left < timeout_s + GRACE_S:
                return Outcome(ok=False, failure="not_run", seconds=round(left, 3), message=f"{function} was still running when "
                               f"{DEADLINE_REACHED}; it was stopped after {left:.3g} s")
            return Outcome(ok=False, failure="timeout", seconds=timeout_s,
                           message=f"{function} did not return within {timeout_s:g} s (an endless loop, or far too much work?); it was stopped")
        except (WorkerDied, BrokenPipeError, ValueError) as err:  # Garbage is a ValueError
            try:
                code = self.proc.wait(timeout=2) if self.proc else None
            except (subprocess.TimeoutExpired, TimeoutError):
                code = None
            self._restart()
            why = ("died" if code is None else "ran out of memory or was killed" if code < 0 else f"exited (status {code})")
            if isinstance(err, ValueError):
                why = f"wrote garbage over the grading channel ({err})"
            return Outcome(ok=False, failure="crashed", seconds=round(time.monotonic() - start, 3),
                           message=f"the worker running {function} {why}, e.g. through os._exit() or a memory blow-up")
        if header.id != req.id:
            self._restart()
            return Outcome(ok=False, failure="crashed", message=f"the worker answered out of turn while running {function}")
        if header.recycle:  # a fresh worker for the next call: this one's memory is not the next function's problem
            self._restart()
        value = None
        if header.ok:
            try:
                value = from_bytes(blob)
            except Exception:  # malformed blob: whatever was sent, it is not a valid answer
                return Outcome(ok=False, failure="bad_output", message=f"{function}'s output could not be decoded")
        return Outcome(ok=header.ok, value=value, failure=header.failure, message=header.message, stdout=header.stdout,
                       hooks_left=header.hooks_left, model_modified=header.model_modified, seconds=header.seconds,
                       called=header.called)

    def _restart(self) -> None:
        self.stop()
        self.imported.clear()  # a fresh worker imports again
        self.restarts += 1  # started lazily by the next call
