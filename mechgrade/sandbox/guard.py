"""Inside the worker: take down what a student's call may have left armed to run during the
worker's own bookkeeping (checksums, encoding), where it could forge what the worker reports."""

from __future__ import annotations


def clear_torch_modes() -> None:
    """Pop every active ``TorchFunctionMode`` and ``TorchDispatchMode``: a mode left on the stack
    would run the student's ``__torch_function__`` inside every torch call that follows."""
    from torch.overrides import _get_current_function_mode_stack, _pop_mode
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack, _pop_mode as _pop_dispatch_mode

    for _ in range(len(_get_current_function_mode_stack())):
        _pop_mode()
    for _ in range(len(_get_current_dispatch_mode_stack())):
        _pop_dispatch_mode()
