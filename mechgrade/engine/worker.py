"""The student worker: the only process that imports or calls student code.

Started by ``mechgrade.engine.runner.StudentWorker`` as ``python -I -m mechgrade.engine.worker``.
It boots its own copy of the model *before* importing any student module, then answers
requests one at a time: build the case's inputs (trusted lesson code), call the student's
function, and send back plain data. After every call it removes leftover hooks and restores
the model if the call changed it, so one case cannot leak into the next. A memory limit
(address space above the post-boot baseline) applies to everything student code allocates.

A workspace may be a Jupyter notebook (``--workspace work.ipynb``): its graded cells run once,
under the memory limit, before the worker reports ready (``mechgrade.engine.nbexec``), and the
namespace they build stands for every exercise module.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import io
import os
import resource
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from mechgrade.engine.protocol import MAX_CELL_ERROR, MAX_CELL_ERRORS, CallRequest, CallResponse, FailureKind, Greeting
from mechgrade.workspace_kind import Workspace

MAX_STDOUT = 2000
MAX_MESSAGE = 4000  # characters of an error message sent back (results keep as many): a 20 MB one would be garbage
CHECKSUM_STRIDE = 61
MAX_CALLED = 5  # of the student's own functions one call went through, named in feedback


def _seal(mode: str, cover: tuple[str, ...]) -> None:
    """Enter this worker's sealed room, keeping its scratch folder (the working directory)."""
    from mechgrade.sandbox import rooms

    here = os.getcwd()
    try:
        rooms.enter(keep=(Path(here), *_installation()), cover=cover)
    except rooms.RoomRefused as err:
        if mode == "required":
            raise OSError(err.errno, f"the worker's sealed room could not be made ({err.strerror})") from None
        return  # the user layer's cleanup sweeps what the worker leaves instead
    os.chdir(here)  # through the room's mounts


def _installation() -> list[Path]:
    """What the worker still imports from once sealed (Python, its packages, mechgrade's
    worker-side folders): kept where it lies under a covered place, e.g. a virtual
    environment or a checkout in /tmp."""
    import mechgrade
    from mechgrade import lessons

    worker_side = [path for plugin in lessons.installed().values() for name in plugin.worker_modules()
                   for path in lessons.import_dirs(name)]
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             *(p for p in sys.path if p), *mechgrade.__path__, *worker_side}
    return [Path(p) for p in sorted(paths) if os.path.isdir(p)]


def _status_bytes(field: str) -> int:
    """``VmSize`` (address space) or ``VmRSS`` (resident memory) of this process, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reclaim(ceiling: int) -> bool:
    """Whether resident memory stays above ``ceiling`` bytes after handing the allocator's free
    pages back to the kernel and, if that was not enough, collecting what the last call left
    unreachable (reference cycles through a traceback's frames). Without this, memory a
    student's function filled before failing (a MemoryError) stays resident in glibc's heap,
    and in a 768 MB container the *next* function's worker is killed for it."""
    import ctypes
    import gc

    for collect in (False, True):
        if collect:
            gc.collect()
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
            ctypes.CDLL(None).malloc_trim(0)
        if _status_bytes("VmRSS") <= ceiling:
            return False
    return True


def _where(exc: BaseException, workspace: Path) -> str:
    """'file.py, line N' of the innermost frame in the student's workspace, if any."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{Path(exc.filename).name}, line {exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).parent == workspace]
    return f"{Path(frames[-1].filename).name}, line {frames[-1].lineno}" if frames else ""


class CallTimeout(BaseException):
    """Raised into student code by SIGALRM when its call runs past its limit; a BaseException so
    that `except Exception` cannot swallow it. The worker then lives on: no re-boot for the next
    case. Code that blocks the signal (C code, its own handler) is killed by the runner instead."""


def _alarm(signum, frame):
    raise CallTimeout


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block after ``seconds`` (0: never)."""
    if seconds <= 0:
        yield
        return
    signal.signal(signal.SIGALRM, _alarm)  # again each time: student code may have replaced it
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _timed_out(function: str, seconds: float) -> str:
    return f"{function} did not return within {seconds:g} s (an endless loop, or far too much work?); it was stopped"


@dataclass(frozen=True)
class Failed:
    """Why a call has no value, as its response says it. Returned, never raised: an exception
    class student code could import and raise would let it choose its own failure."""

    kind: FailureKind
    message: str


@dataclass
class Trace:
    """What a call leaves for its response however it ends, even by an exception: the
    student's other functions it went through, and the hooks its function left attached
    (None until counted, right after that function returns)."""

    called: list[str] = field(default_factory=list)
    hooks_left: int | None = None


class Worker:
    def __init__(self, workspace: Path, lesson: str, model_spec: str, mem_mb: int, resp_fd: int, req_fd: int = 0,
                 drop: tuple[int, int] | None = None, seal: str | None = None, cover: tuple[str, ...] = (),
                 confine: bool = False):
        """``drop``: (uid, gid) to become once the model has booted, before any student code
        (the sandbox's user layer, when the worker starts as root). ``seal``: enter a sealed
        room first (``mechgrade.sandbox.rooms``), "required" (the namespace layer: a refusal
        is a failed boot) or "try" (the user layer: the trusted side sweeps where the kernel
        refuses); ``cover``: more folders to hide under the room's own tmpfs (the zygote's);
        ``confine``: install the system-call filter (``mechgrade.sandbox.seccomp``) last."""
        from mechgrade import lessons
        from mechgrade.models import load_model
        from mechgrade.sandbox.drop import drop_to, oom_first

        self.workspace = workspace
        self.requests = os.fdopen(req_fd, "r") if req_fd else sys.stdin
        self.model_spec = model_spec
        self.model = load_model(model_spec)  # cached: a forked worker inherits its zygote's model
        self.build = lessons.get(lesson).builders()
        self.resp = os.fdopen(resp_fd, "wb", buffering=0)
        self.checksums = self._checksums()
        self.attrs = set(vars(self.model))
        self.modules: dict[str, object] = {}
        self.notebook = None
        if seal is not None:
            _seal(seal, cover)
        if drop is not None:
            drop_to(*drop)
        else:
            oom_first()
        if confine:
            from mechgrade.sandbox.seccomp import confine as install_filter

            install_filter()
        space = Workspace.at(workspace)
        sys.path.insert(0, str(space.module_dir))
        if mem_mb > 0:
            limit = _status_bytes("VmSize") + mem_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if space.is_notebook:
            from mechgrade.engine.nbexec import NotebookNamespace

            self.notebook = NotebookNamespace(workspace).run()
            if self._hook_count():  # top-level cells may have used the shared model: the first case starts clean
                self.model.reset_hooks()
            self._restore()
        # Resident memory a call may leave behind (caches, globals) before the worker asks to be
        # replaced, so that one function's leftovers never cost another its memory.
        # No allowance (mem_mb 0): no limit, and nothing to protect the next function from.
        self.rss_ceiling = _status_bytes("VmRSS") + mem_mb * 1024 * 1024 // 2 if mem_mb > 0 else 1 << 62

    # -- student code ----------------------------------------------------------------------
    def _module(self, name: str):
        if self.notebook is not None:
            return self.notebook.module
        if name not in self.modules:
            path = self.workspace / f"{name}.py"
            if not path.is_file():
                raise FileNotFoundError(f"{path.name} is missing from your workspace")
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            self.modules[name] = module
        return self.modules[name]

    def _hook_count(self) -> int:
        return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in self.model.modules()
                   if type(m).__name__ == "HookPoint")

    def _disarm(self) -> int:
        """Count the hooks left attached, first thing after the student's function returns,
        then take down what it may have armed to run during our own bookkeeping (trace and
        profile functions, torch function and dispatch modes), so that nothing it left behind
        can remove its hooks, or forge anything, before the count is sent."""
        sys.settrace(None)
        sys.setprofile(None)
        count = self._hook_count()
        from mechgrade.sandbox.guard import clear_torch_modes

        clear_torch_modes()
        return count

    def _checksums(self) -> list[tuple[float, float]]:
        """Two float64 reductions per weight over every 61st element (61 is prime to every
        width we use, so each row and column is sampled): in-place edits of a tensor, a row or
        a column all show. A copy of GPT-2's processed weights would cost ~0.7 GB, and full
        reductions ~0.5 s per call; these cost ~10 ms."""
        import torch

        sums = []
        with torch.no_grad():
            for t in (*self.model.parameters(), *self.model.buffers()):
                if t.is_floating_point():
                    sample = t.reshape(-1)[::CHECKSUM_STRIDE]
                    sums.append((float(sample.sum(dtype=torch.float64)), float(torch.linalg.vector_norm(sample, dtype=torch.float64))))
        return sums

    def _restore(self) -> bool:
        """Undo anything a call did to the shared model; True if there was something to undo.
        Changed weights mean a fresh boot from disk."""
        from mechgrade.models.loader import boot
        from mechgrade.models.spec import resolve

        modified = set(vars(self.model)) != self.attrs
        for extra in set(vars(self.model)) - self.attrs:
            delattr(self.model, extra)
        if self._checksums() != self.checksums:
            self.model = boot(resolve(self.model_spec))
            self.attrs, self.checksums = set(vars(self.model)), self._checksums()
            modified = True
        return modified

    @contextlib.contextmanager
    def _calls(self, function: str, called: list[str]):
        """Record in ``called`` which of the student's own functions (other than ``function``)
        the call went through, so that a follow-on failure can name them."""
        files = set(self.notebook._files) if self.notebook is not None else \
            {getattr(m, "__file__", None) for m in self.modules.values()} - {None}

        def profile(frame, event, arg):
            if event == "call" and frame.f_code.co_filename in files:
                name = frame.f_code.co_name
                if name != function and not name.startswith("<") and name not in called and len(called) < MAX_CALLED:
                    called.append(name)

        previous = sys.getprofile()
        sys.setprofile(profile)
        try:
            yield
        finally:
            sys.setprofile(previous)

    def import_only(self, req: CallRequest) -> tuple[CallResponse, bytes]:
        """Import the module and answer. Its errors (and any hooks or model changes made at
        module level) are reported, in the usual words, by the call that follows."""
        start = time.perf_counter()
        ok, failure, message = False, None, ""
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                with time_limit(req.timeout_s):
                    self._module(req.module)
                ok = True
            except CallTimeout:
                failure, message = "timeout", f"{req.module}.py did not finish importing"
            except BaseException:
                pass
        return CallResponse(id=req.id, ok=ok, failure=failure, message=message, seconds=round(time.perf_counter() - start, 4)), b""

    def call(self, req: CallRequest) -> tuple[CallResponse, bytes]:
        """Answer one request: (its header, the value's safetensors bytes, empty on a failure).
        However the call ends, leftover hooks go and the model is restored before the answer."""
        if req.import_only:
            return self.import_only(req)
        start = time.perf_counter()
        captured, trace = io.StringIO(), Trace()
        try:
            outcome = self._attempt(req, captured, trace)
        finally:
            hooks_left = self._disarm() if trace.hooks_left is None else trace.hooks_left
            if hooks_left:
                self.model.reset_hooks()
            model_modified = self._restore()
            recycle = _reclaim(self.rss_ceiling)
        failure, blob = (outcome, b"") if isinstance(outcome, Failed) else (None, outcome)
        message = failure.message if failure is not None else ""
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + " [...]"
        return CallResponse(id=req.id, ok=failure is None, failure=failure.kind if failure is not None else None,
                            message=message, stdout=captured.getvalue()[:MAX_STDOUT], hooks_left=hooks_left,
                            model_modified=model_modified, seconds=round(time.perf_counter() - start, 4),
                            called=trace.called, blob_len=len(blob), recycle=recycle), blob

    def _attempt(self, req: CallRequest, captured: io.StringIO, trace: Trace) -> bytes | Failed:
        """Build the case, call the student's function and encode its value: safetensors
        bytes, or why there are none."""
        from mechgrade.engine.codec import EncodeError, encode, to_bytes

        try:
            kwargs = self.build(self.model, req.builder, req.params)
        except Exception as err:  # trusted code: a lesson bug, reported as such
            return Failed("builder", f"building the inputs failed (lesson bug, not yours): {err!r}")
        stage = "import"
        try:
            with time_limit(req.timeout_s):
                module = self._module(req.module)
            fn = getattr(module, req.function, None)
            if not callable(fn):
                missing = self.notebook.missing(req.function) if self.notebook else f"{req.module}.py defines no function {req.function}"
                return Failed("missing_function", missing)
            try:
                inspect.signature(fn).bind(**kwargs)
            except TypeError as err:
                return Failed("signature", f"{req.function}{inspect.signature(fn)} cannot be called with ({', '.join(kwargs)}): {err}")
            stage = "call"
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), time_limit(req.timeout_s), \
                    self._calls(req.function, trace.called):
                try:
                    value = fn(**kwargs)
                finally:
                    trace.hooks_left = self._disarm()
        except CallTimeout:
            return Failed("timeout", _timed_out(req.function, req.timeout_s))
        except SystemExit as err:
            return Failed("exit", f"your code called sys.exit({err.code!r}) during the {stage}")
        except NotImplementedError as err:
            return Failed("not_implemented", f"{req.function} is not implemented yet ({err})")
        except BaseException as err:
            where = self.notebook.where(err) if self.notebook else _where(err, self.workspace)
            kind = "import_error" if stage == "import" else "exception"
            what = f"{req.module}.py failed to import" if stage == "import" else f"{req.function} raised"
            text = err.msg if isinstance(err, SyntaxError) and where else err  # str(SyntaxError) names the place too
            return Failed(kind, f"{what}: {type(err).__name__}: {text}" + (f" ({where})" if where else ""))
        try:
            tree, tensors = encode(value)
            return to_bytes(tree, tensors)
        except EncodeError as err:
            return Failed("bad_output", f"{req.function} returned something that is not plain data: {err}")

    def send(self, header: CallResponse | Greeting, blob: bytes = b"") -> None:
        self.resp.write(header.model_dump_json().encode() + b"\n" + blob)

    def serve(self) -> None:
        # A notebook's failing cells, said once by the grading side before the cases they break.
        errors = list(self.notebook.errors.values()) if self.notebook is not None else []
        self.send(Greeting(ready=True, cell_errors=[e[:MAX_CELL_ERROR] for e in errors[:MAX_CELL_ERRORS]]))
        for line in self.requests:
            self.send(*self.call(CallRequest.model_validate_json(line)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--lesson", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--mem-mb", type=int, default=2048)
    ap.add_argument("--resp-fd", type=int, required=True)
    ap.add_argument("--drop-uid", type=int, default=None)
    ap.add_argument("--drop-gid", type=int, default=None)
    ap.add_argument("--seal", choices=["required", "try"], default=None, help="Enter a sealed room before any student code.")
    ap.add_argument("--confine", action="store_true", help="Install the system-call filter before any student code.")
    args = ap.parse_args()
    drop = None if args.drop_uid is None else (args.drop_uid, args.drop_gid if args.drop_gid is not None else args.drop_uid)
    Worker(args.workspace.resolve(), args.lesson, args.model, args.mem_mb, args.resp_fd, drop=drop, seal=args.seal, confine=args.confine).serve()


if __name__ == "__main__":
    main()
