"""A preloaded worker parent for grading many submissions: it imports TransformerLens and
boots the model once, then forks one fresh student worker per submission, so no submission
pays the boot and none can leave anything behind for the next: each has its own process, and
its own sealed room (``mechgrade.sandbox.rooms``: mount and IPC namespaces, fresh capped tmpfs
over every writable place and over the zygote's scratch root, where only its own folder shows).

Protocol: the grading process holds one end of a Unix socketpair; each request is a JSON
line {"workspace": ..., "cwd": ..., "drop": [uid, gid] or null, "seal": "required", "try" or null,
"cover": [folder, ...], "confine": bool} sent with two file descriptors
(the worker's request-read end and response-write end) as SCM_RIGHTS; the zygote answers
{"pid": ...}. {"purge": true} (only in its own PID namespace) kills every other process of
that namespace and answers {"purged": n}. The zygote runs inside the run's sandbox (see
``mechgrade.engine.forking``) and is not dumpable. Forked workers run
single-threaded: a process that has used an OpenMP pool cannot safely fork, so the zygote
never starts one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path


def purge() -> int:
    """Kill every process of this PID namespace that we may signal, except ourselves (pid 1,
    bubblewrap's init, is spared by the kernel): what earlier submissions left running."""
    try:
        os.kill(-1, signal.SIGKILL)
        return 1
    except ProcessLookupError:
        return 0


def serve(ctrl: socket.socket, lesson: str, model_spec: str, mem_mb: int, own_pid_namespace: bool = False) -> None:
    import torch

    from mechgrade.sandbox.drop import not_dumpable

    not_dumpable()

    torch.set_num_threads(1)
    from mechgrade.engine import codec  # noqa: F401  (imported once, inherited by every fork)
    from mechgrade.engine.worker import Worker
    from mechgrade import lessons
    from mechgrade.models import load_model

    load_model(model_spec)
    lessons.get(lesson).builders()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished workers
    ctrl.sendall(b'{"ready": true}\n')
    while True:
        msg, fds, _, _ = socket.recv_fds(ctrl, 65536, 2)
        if not msg:
            return
        request = json.loads(msg)
        if request.get("purge"):
            for fd in fds:
                os.close(fd)
            ctrl.sendall(json.dumps({"purged": purge() if own_pid_namespace else 0}).encode() + b"\n")
            continue
        pid = os.fork()
        if pid == 0:
            ctrl.close()
            os.setsid()
            # A worker's own output (a notebook's "running cell N" boot log, 35 lines a student,
            # or whatever its code writes to file descriptors 1 and 2) is no business of the
            # instructor's terminal or log, which the zygote inherited; its results say what went wrong.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.close(devnull)
            os.chdir(request["cwd"])
            # Its own scratch folder is its home and temporary folder (the zygote's are the
            # zygote's root, which its room covers); tempfile forgets the zygote's choice.
            os.environ.update(HOME=request["cwd"], TMPDIR=request["cwd"])
            tempfile.tempdir = None
            drop = tuple(request["drop"]) if request.get("drop") else None
            try:
                Worker(Path(request["workspace"]), lesson, model_spec, mem_mb, resp_fd=fds[1], req_fd=fds[0], drop=drop,
                       seal=request.get("seal"), cover=tuple(request.get("cover", ())), confine=bool(request.get("confine"))).serve()
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        ctrl.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lesson", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--mem-mb", type=int, default=2048)
    ap.add_argument("--ctrl-fd", type=int, required=True)
    ap.add_argument("--own-pid-namespace", action="store_true", help="Allow purges (kill(-1) reaches only this namespace).")
    args = ap.parse_args()
    sys.stdout = sys.stderr  # nothing may write into the control channel by accident
    serve(socket.socket(fileno=args.ctrl_fd), args.lesson, args.model, args.mem_mb, args.own_pid_namespace)


if __name__ == "__main__":
    main()
