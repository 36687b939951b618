"""Hooks: reading activations out of a forward pass."""

import torch
from jaxtyping import Int
from torch import Tensor


def get_activations(model, tokens: Int[Tensor, "batch pos"], hook_names: list[str]) -> dict[str, Tensor]:
    """Run ONE forward pass on `tokens` with forward hooks and return a detached copy of each
    activation named in `hook_names`, keyed by exactly the names given.

    Do not use `run_with_cache`. In TransformerLens 4.x `hook.name` inside a hook is the
    canonical name (`blocks.1.hook_in` for `blocks.1.hook_resid_pre`), so key by the name you
    were given, not by `hook.name`. Leave the model with no hooks attached.
    """
    acts: dict[str, Tensor] = {}

    def save_as(name: str):
        def hook(activation: Tensor, hook) -> None:
            acts[name] = activation.detach().clone()

        return hook

    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=[(name, save_as(name)) for name in hook_names])
    return acts
