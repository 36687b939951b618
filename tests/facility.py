"""A test that needs a facility (a Jupyter kernel, a pty) skips where the machine lacks it, and
fails in CI (``CI=true``), where the facility is required: a skipped check is no check."""

from __future__ import annotations

import os

import pytest


def require(available: bool, what: str) -> None:
    if available:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} is required in CI (CI=true) and is missing")
    pytest.skip(f"{what} is missing on this machine")


def jupyter_kernel() -> None:
    """nbclient and a python3 kernel (ipykernel), as a student's Jupyter has them."""
    try:
        import nbclient  # noqa: F401
        from jupyter_client.kernelspec import KernelSpecManager

        KernelSpecManager().get_kernel_spec("python3")
        ok = True
    except Exception:  # noqa: BLE001 - any missing piece means no kernel here
        ok = False
    require(ok, "a Jupyter kernel (nbclient + ipykernel, the test extra)")
