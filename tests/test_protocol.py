"""The worker protocol is typed on both sides (``mechgrade.engine.protocol``): the grading side
refuses a header that is not a ``CallResponse`` or ``Greeting``, and what the real worker sends
is one. Unit-level: a scripted stand-in for the worker process, and the worker run in-process
on the session's model (no boot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from pydantic import ValidationError

from mechgrade.engine.codec import from_bytes
from mechgrade.engine.protocol import CallRequest, CallResponse, Greeting
from mechgrade.engine.runner import StudentWorker
from mechgrade.sandbox import Sandbox

GREETING = {"ready": True, "cell_errors": []}
ANSWER = {"ok": False, "failure": "exception", "message": "sae_encode raised: ValueError: no"}

# A stand-in for the worker: greets, answers ``answers`` requests with the scripted header and
# exits (a refused one is its last: the grading side then waits for it to end).
FAKE = """
import json, os, sys
out, answers = int(sys.argv[1]), int(sys.argv[4])
greeting, answer = json.loads(sys.argv[2]), json.loads(sys.argv[3])
os.write(out, json.dumps(greeting).encode() + b"\\n")
for _, line in zip(range(answers), sys.stdin):
    os.write(out, json.dumps({"id": json.loads(line)["id"], **answer}).encode() + b"\\n")
"""


def scripted_worker(tmp_path, monkeypatch, *, greeting=GREETING, answer=ANSWER, answers=2) -> StudentWorker:
    def launch(self):
        r, w = os.pipe()
        proc = subprocess.Popen([sys.executable, "-I", "-c", FAKE, str(w), json.dumps(greeting), json.dumps(answer), str(answers)],
                                stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT, pass_fds=(w,),
                                start_new_session=True)
        os.close(w)
        return proc, r

    monkeypatch.setattr(StudentWorker, "_launch", launch)
    (tmp_path / "ws").mkdir()
    return StudentWorker(tmp_path / "ws", lesson="lesson27", model_spec="embedded", sandbox=Sandbox(namespaces=False))


def test_a_well_formed_answer_is_read(tmp_path, monkeypatch):
    with scripted_worker(tmp_path, monkeypatch) as worker:
        out = worker.call("sae", "sae_encode", "sae_encode_inputs", {}, timeout_s=5)
    assert (out.ok, out.failure, out.message) == (False, "exception", ANSWER["message"])


@pytest.mark.parametrize("answer", [
    {k: v for k, v in ANSWER.items() if k != "ok"},  # a field missing
    {**ANSWER, "hook_left": 0},                       # a field renamed on the worker's side
    {**ANSWER, "failure": "exploded"},                # a failure kind the grading side does not know
], ids=["missing", "unknown", "bad-kind"])
def test_an_answer_that_is_not_a_call_response_is_refused(tmp_path, monkeypatch, answer):
    with scripted_worker(tmp_path, monkeypatch, answer=answer, answers=1) as worker:
        out = worker.call("sae", "sae_encode", "sae_encode_inputs", {}, timeout_s=5)
    assert out.failure == "crashed" and "wrote garbage over the grading channel" in out.message


def test_a_greeting_that_is_not_a_greeting_is_refused(tmp_path, monkeypatch):
    with scripted_worker(tmp_path, monkeypatch, greeting={"ready": True, "cell_error": []}, answers=0) as worker:
        out = worker.call("sae", "sae_encode", "sae_encode_inputs", {}, timeout_s=5)
    assert (out.failure, out.message) == ("crashed", "The grading worker sent an unexpected greeting.")


@pytest.fixture
def in_process_worker(lesson, model, make_ws, tmp_path, monkeypatch):
    """worker(requests) -> the worker's output (greeting, then headers and blobs) after serving
    ``requests`` in this process, on the session's model: no boot, no memory limit."""
    import mechgrade.sandbox.drop
    from mechgrade.engine.worker import Worker

    monkeypatch.setattr(mechgrade.sandbox.drop, "oom_first", lambda: None)  # this is the test process
    monkeypatch.setattr(sys, "path", list(sys.path))
    ws = make_ws({})
    for path in ws.glob("*.py"):  # the workspace's modules, which the worker imports, go with the test
        monkeypatch.delitem(sys.modules, path.stem, raising=False)

    def serve(requests: list[str]) -> bytes:
        (tmp_path / "requests").write_text("".join(line + "\n" for line in requests))
        req_fd = os.open(tmp_path / "requests", os.O_RDONLY)
        resp_fd = os.open(tmp_path / "responses", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        worker = Worker(ws, lesson.id, "embedded", mem_mb=0, resp_fd=resp_fd, req_fd=req_fd)
        try:
            worker.serve()
        finally:
            worker.requests.close()
            worker.resp.close()
        return (tmp_path / "responses").read_bytes()

    return serve


def test_the_workers_answers_are_what_the_grading_side_reads(lesson, model, in_process_worker):
    from mechgrade import lessons
    from mechgrade.reference.lesson27.sae import sae_encode

    exercise, function = lesson.functions["sae.sae_encode"]
    params = function.cases[0].params
    requests = [CallRequest(id=1, module=exercise.id, function=function.name, builder=function.builder, params={}, import_only=True),
                CallRequest(id=2, module=exercise.id, function=function.name, builder=function.builder, params=params, timeout_s=30)]
    wire = in_process_worker([r.model_dump_json() for r in requests])
    greeting, wire = wire.split(b"\n", 1)
    assert Greeting.model_validate_json(greeting) == Greeting(ready=True)
    probe, wire = wire.split(b"\n", 1)
    assert CallResponse.model_validate_json(probe).model_dump(include={"id", "ok", "failure", "blob_len"}) == \
        {"id": 1, "ok": True, "failure": None, "blob_len": 0}
    line, blob = wire.split(b"\n", 1)
    header = CallResponse.model_validate_json(line)
    assert (header.id, header.ok, header.failure, header.hooks_left, header.model_modified) == (2, True, None, 0, False)
    assert header.blob_len == len(blob) > 0
    expected = sae_encode(**lessons.get(lesson.id).builders()(model, function.builder, params))
    torch.testing.assert_close(from_bytes(blob), expected)


def test_the_worker_refuses_a_request_it_does_not_know(in_process_worker):
    request = {"id": 1, "module": "sae", "function": "sae_encode", "builder": "sae_encode_inputs", "params": {}, "timeout": 5}
    with pytest.raises(ValidationError, match="timeout"):
        in_process_worker([json.dumps(request)])
