"""What ``mechgrade models --inspect SPEC`` prints: architecture, provenance, training log, and
what each installed lesson's ``inspect`` hook measures on it (``mechgrade.extras``)."""

from __future__ import annotations

import json

from mechgrade.errors import MechgradeError
from mechgrade.models.loader import load_model
from mechgrade.models.spec import provenance, resolve


def describe(spec: str) -> str:
    source = resolve(spec)
    model = load_model(spec)
    cfg = model.cfg
    n_params = sum(p.numel() for p in model.parameters())
    lines = [
        f"model: {provenance(spec, source)} from {source.directory or source.repo_id}",
        f"architecture: {cfg.n_layers} layers, {cfg.n_heads} heads of d_head {cfg.d_head}, d_model {cfg.d_model}, "
        f"d_mlp {cfg.d_mlp}, d_vocab {cfg.d_vocab}, n_ctx {cfg.n_ctx}, {n_params / 1e6:.2f}M parameters (as booted)",
    ]
    log_path = source.directory / "training_log.json" if source.directory else None
    if log_path is not None and log_path.exists():
        log = json.loads(log_path.read_text())
        lines.append(f"trained by: {log.get('recipe', 'training/train_embedded.py')}, seed {log['seed']}, "
                     f"{log['train_time_s'] / 60:.1f} min on {log['threads']} CPU thread(s); targets met at induction-stage step {log['solved_at_step']}")
    return "\n".join(lines + lesson_lines(model))


def lesson_lines(model) -> list[str]:
    """Each installed lesson's ``inspect`` lines, under its id; one that cannot measure here
    (a student bundle has no reference) says why in one line."""
    from mechgrade import lessons
    from mechgrade.extras import hook

    lines = []
    for lesson_id in sorted(lessons.installed()):
        try:
            measure = hook(lesson_id, "inspect")
            if measure is None:
                continue
            found = list(measure(model))
        except MechgradeError as err:
            found = [f"not measured: {err}"]
        except Exception as err:  # a lesson's hook is not the model's description
            found = [f"not measured: its inspect hook failed ({type(err).__name__}: {err})."]
        lines.append(f"{lesson_id}:")
        lines += [f"  {line}" for line in found]
    return lines
