"""The wire format between the grading process and the student worker.

Requests: one JSON line on the worker's stdin. Responses: one JSON line on a dedicated pipe,
then ``blob_len`` bytes of safetensors (see ``codec``). Student code shares the worker's
stdout and stderr, never this pipe's framing: anything it prints is captured, not parsed.

Both sides build and read these models (``runner`` the grading side, ``worker`` the student
side), so a field renamed on one side fails at once rather than reading as its default. The
worker imports this module inside its sandbox: pydantic only, no torch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

FailureKind = Literal[
    "import_error", "missing_function", "signature", "not_implemented", "exception",
    "exit", "bad_output", "timeout", "crashed", "builder", "not_run",
]


MAX_CELL_ERRORS, MAX_CELL_ERROR = 20, 500  # a notebook's failing cells named in the greeting, characters each


class Greeting(BaseModel):
    """The worker's first line, once its model has booted (and a notebook's graded cells ran)."""

    model_config = ConfigDict(extra="forbid")
    ready: bool
    cell_errors: list[str] = []  # a notebook's failing cells, at most MAX_CELL_ERRORS of MAX_CELL_ERROR characters


class CallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    module: str
    function: str
    builder: str
    params: dict[str, Any]
    import_only: bool = False  # just import the module (once per worker): a hang there is the module's, not the case's
    timeout_s: float = 0.0  # the worker interrupts the student's code after this long (0: never); the runner's kill backs it up


class CallReport(BaseModel):
    """What is known about one call besides its value."""

    ok: bool
    failure: FailureKind | None = None
    message: str = ""
    stdout: str = ""
    hooks_left: int = 0
    model_modified: bool = False
    seconds: float = 0.0
    called: list[str] = []  # the student's other functions this call went through (first few, in call order)


class CallResponse(CallReport):
    """The worker's header line; the value follows as ``blob_len`` bytes of safetensors."""

    model_config = ConfigDict(extra="forbid")
    id: int
    blob_len: int = 0
    recycle: bool = False  # the worker still holds much of its memory allowance after the call: replace it
