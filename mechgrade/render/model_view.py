"""The report's "your model" section: the model the lesson ran on, its previous-token and
induction heads measured with the lesson's own definitions, and what those heads attend to on
the lesson's prompts. Computed in the trusted process from the model alone (no student code):
a self-learner sees what the lesson is about on the actual weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from markupsafe import Markup

from mechgrade.render.svg import heatmap

SEQ_LEN = 10  # the repeated sequence the section draws: 1 + 2 * 10 positions stay legible
MAX_LABEL = 6


def token_label(text: str) -> str:
    """A token as a short, visible label: control characters escaped, long ones cut."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return shown if len(shown) <= MAX_LABEL else shown[: MAX_LABEL - 1] + "…"


@dataclass
class Sequence:
    """One token sequence and every head's attention on it."""

    title: str
    tokens: list[str]
    ids: list[int]
    patterns: Float[np.ndarray, "layer head_index query_pos key_pos"]


@dataclass
class ModelView:
    spec: str
    architecture: str
    prev: Float[np.ndarray, "layer head_index"]
    induction: Float[np.ndarray, "layer head_index"]
    sequences: list[Sequence] = field(default_factory=list)
    model: Any = field(default=None, repr=False)  # the booted model, for lesson extras (``report.EXTRAS``)

    @property
    def top_prev(self) -> tuple[int, int]:
        return divmod(int(self.prev.argmax()), self.prev.shape[1])

    @property
    def top_induction(self) -> tuple[int, int]:
        return divmod(int(self.induction.argmax()), self.induction.shape[1])

    def score_map(self, which: str) -> Markup:
        scores = self.prev if which == "prev" else self.induction
        title = "previous-token score" if which == "prev" else "induction score"
        n_layers, n_heads = scores.shape
        return heatmap(scores, rows=[f"L{i}" for i in range(n_layers)], cols=[f"H{i}" for i in range(n_heads)],
                       title=title, vmin=0.0, vmax=1.0, xlabel="head_index", ylabel="layer")

    def pattern(self, sequence: Sequence, layer: int, head: int, title: str = "") -> Markup:
        """Head ``L{layer}H{head}``'s attention pattern [query_pos, key_pos] on ``sequence``."""
        labels = [token_label(t) for t in sequence.tokens]
        return heatmap(sequence.patterns[layer, head], rows=labels, cols=labels, vmin=0.0, vmax=1.0,
                       title=title or f"L{layer}H{head} on {sequence.title}", xlabel="key_pos", ylabel="query_pos", width=420)


def _sequence(model, title: str, tokens: torch.Tensor) -> Sequence:
    """tokens: [1, pos]."""
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    patterns = torch.stack([cache["pattern", layer][0] for layer in range(model.cfg.n_layers)])  # layer head_index query_pos key_pos
    ids = tokens[0].tolist()
    # BPE token strings (Ġ marks a leading space): decoding one byte-level token alone gives U+FFFD.
    return Sequence(title, model.tokenizer.convert_ids_to_tokens(ids), ids, patterns.numpy())


def model_view(spec: str, prompts: list[str]) -> ModelView:
    """Boot ``spec`` (once per process) and measure it; ``prompts``: the lesson's text prompts."""
    from mechgrade.spec import require_reference

    require_reference("lesson27", 'The report\'s "your model" section')  # head scores run the reference
    from mechgrade.models.inspect import head_scores
    from mechgrade.models.loader import load_model
    from mechgrade.models.spec import provenance, resolve
    from mechgrade.reference.lesson27.induction import generate_repeated_tokens

    source = resolve(spec)
    model = load_model(spec)
    cfg = model.cfg
    arch = (f"{provenance(spec, source)}: {cfg.n_layers} layers, {cfg.n_heads} heads of d_head {cfg.d_head}, "
            f"d_model {cfg.d_model}, d_mlp {cfg.d_mlp}, d_vocab {cfg.d_vocab}, n_ctx {cfg.n_ctx}")
    prev, induction = head_scores(model, SEQ_LEN)
    view = ModelView(spec, arch, prev.numpy(), induction.numpy(), model=model)
    view.sequences.append(_sequence(model, f"random tokens repeated (seq_len {SEQ_LEN})",
                                    generate_repeated_tokens(model, SEQ_LEN, 1, 0)))
    for prompt in prompts:
        view.sequences.append(_sequence(model, repr(prompt), model.to_tokens(prompt)))
    return view
