"""Lesson 27's part of the report's "your model" section (``mechgrade.extras.ModelSection``) and
of ``mechgrade models --inspect``: the model's previous-token and induction heads measured with
the lesson's own definitions, and what those heads attend to on the lesson's prompts. Computed
in the trusted process from the model alone (no student code): a self-learner sees what the
lesson is about on the actual weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from markupsafe import Markup

from mechgrade.render.figures import Figure
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
    prev: Float[np.ndarray, "layer head_index"]
    induction: Float[np.ndarray, "layer head_index"]
    sequences: list[Sequence] = field(default_factory=list)

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

    def html(self) -> Markup:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

        from pathlib import Path

        env = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=select_autoescape(["j2", "html"]),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        return Markup(env.get_template("your_model.html.j2").render(view=self))

    def figures(self, dims: Any, expected, got, *, atol: float, rtol: float) -> list[Figure]:
        """For a per-head score [layer, head]: the attention of the head the key ranks highest,
        and of the head your scores rank highest when the key scores that one lower by more than
        the tolerance (two heads within it are a tie, which another CPU may break the other way)."""
        if dims != ["layer", "head"]:
            return []
        n_heads = expected.shape[1]
        top_e = divmod(int(expected.argmax()), n_heads)
        panels = [self.pattern(self.sequences[0], *top_e, title=f"expected top head L{top_e[0]}H{top_e[1]}")]
        caption = (f"What the top-scoring head does on {self.sequences[0].title}: an induction head lights up the "
                   "diagonal one step right of the first copy; a previous-token head the diagonal just below the main one.")
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.isfinite(got).all():
            top_g = divmod(int(got.argmax()), n_heads)
            e_max = float(expected[top_e])
            if float(expected[top_g]) < e_max - (atol + rtol * abs(e_max)):
                panels.append(self.pattern(self.sequences[0], *top_g, title=f"your top head L{top_g[0]}H{top_g[1]}"))
                caption += " Your scores point at another head: compare its pattern with the expected one."
        return [Figure("attention of the top head", panels, caption, differs=len(panels) > 1)]

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


def head_scores(model, seq_len: int, batch: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(prev_token_scores, induction_scores), both [layer, head], on repeated random tokens."""
    from mechgrade.reference.lesson27.induction import generate_repeated_tokens, induction_scores, prev_token_scores

    tokens = generate_repeated_tokens(model, seq_len, batch, seed)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    return prev_token_scores(cache), induction_scores(cache, seq_len)


def your_model(model, prompts: list[str]) -> ModelView:
    """Measure ``model`` (booted by the report); ``prompts``: the lesson's text prompts."""
    from mechgrade import lessons
    from mechgrade.reference.lesson27.induction import generate_repeated_tokens

    lessons.get("lesson27").require_reference('The report\'s "your model" section')  # head scores run the reference
    prev, induction = head_scores(model, SEQ_LEN)
    view = ModelView(prev.numpy(), induction.numpy())
    view.sequences.append(_sequence(model, f"random tokens repeated (seq_len {SEQ_LEN})",
                                    generate_repeated_tokens(model, SEQ_LEN, 1, 0)))
    for prompt in prompts:
        view.sequences.append(_sequence(model, repr(prompt), model.to_tokens(prompt)))
    return view
