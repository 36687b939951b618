"""Pictures of one case: the expected output beside the student's, and where they differ, the
difference. Chosen by the output's structure and its TransformerLens dimension names (from
the reference's jaxtyping annotation), so that a new lesson gets pictures without new code:

- [layer, head], [layer, pos], [batch, d_sae], ...: heatmaps on one shared colour scale, plus
  a "yours - expected" heatmap when they differ;
- [layer, head, batch] and (attributions [component, batch], labels): bar charts of the batch
  mean per head / component;
- scalars and tuples of scalars (a metric, SAE loss terms, an accuracy): grouped bars;
- integer tokens [batch, pos]: a table with the differing positions marked;
- a dict of activations: a table of shapes and the largest difference per name.

"Differs" (the red outline, the "yours - expected" panel) uses the function's grading tolerance
(``atol``, ``rtol`` from the lesson spec), the same rule as the grader: the key was computed on
another CPU, so a tighter test would mark passing outputs as different on some machines.

A student's output that does not fit (wrong type or shape) is never drawn against the key;
the figure says what it is instead. Nothing here may raise on student data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np
import torch
from markupsafe import Markup

from mechgrade.render.svg import bars, heatmap

BAR_LIMIT = 24  # a 1-D output longer than this is a heatmap strip, not bars


@dataclass
class Figure:
    """Panels shown side by side (expected, yours, difference), with what to look for."""

    title: str
    panels: list[Markup] = field(default_factory=list)
    caption: str = ""
    differs: bool = False  # True when a panel shows the student's difference from the key
    yours: bool = False  # True when a panel draws the student's output


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {list(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    return "nothing (the call failed)" if value is None else f"a {type(value).__name__}"


def _array(value: Any) -> np.ndarray | None:
    """A float array for a tensor or a number; None for anything else."""
    if isinstance(value, torch.Tensor) and not value.is_complex():
        return value.detach().to(torch.float64).numpy()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.asarray(float(value))
    return None


def _labels(dim: str | None, n: int) -> list[str]:
    prefix = {"layer": "L", "head": "H", "head_index": "H"}.get(dim or "", "")
    return [f"{prefix}{i}" for i in range(n)]


def _same(got: np.ndarray | None, expected: np.ndarray) -> bool:
    return got is not None and got.shape == expected.shape


def within(got: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> bool:
    """The grader's rule (``engine.compare``): |got - expected| <= atol + rtol * |expected| everywhere."""
    return bool(np.allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True))


def matrix_figure(title: str, expected: np.ndarray, got: np.ndarray | None, dims: list[str] | None, caption: str = "",
                  *, atol: float = 0.0, rtol: float = 0.0) -> Figure:
    rows_dim, cols_dim = dims if dims and len(dims) == 2 else (None, None)
    rows, cols = _labels(rows_dim, expected.shape[0]), _labels(cols_dim, expected.shape[1])
    both = np.concatenate([expected.ravel(), got.ravel()]) if _same(got, expected) else expected.ravel()
    finite = both[np.isfinite(both)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    diverging = lo < 0
    axes = {"xlabel": cols_dim or "", "ylabel": rows_dim or ""}
    fig = Figure(title, [heatmap(expected, rows=rows, cols=cols, title="expected", diverging=diverging, vmin=lo, vmax=hi, **axes)],
                 caption)
    if _same(got, expected):
        fig.yours = True
        fig.panels.append(heatmap(got, rows=rows, cols=cols, title="yours", diverging=diverging, vmin=lo, vmax=hi, **axes))
        diff = got - expected
        if not within(got, expected, atol, rtol):
            fig.panels.append(heatmap(diff, rows=rows, cols=cols, title="yours - expected", diverging=True, **axes))
            fig.differs = True
    return fig


def bar_figure(title: str, labels: list[str], expected: np.ndarray, got: np.ndarray | None, caption: str = "",
               *, atol: float = 0.0, rtol: float = 0.0) -> Figure:
    series = {"expected": list(expected.ravel())}
    fig = Figure(title, caption=caption)
    if _same(got, expected):
        fig.yours = True
        series["yours"] = list(got.ravel())
        if not within(got, expected, atol, rtol):
            series["yours - expected"] = list((got - expected).ravel())
            fig.differs = True
    fig.panels.append(bars(labels, series))
    return fig


def token_table(title: str, expected: torch.Tensor, got: Any) -> Figure:
    """Integer tokens [batch, pos]: each cell the expected id; where yours differs, yours too."""
    comparable = isinstance(got, torch.Tensor) and got.shape == expected.shape
    cells, differs = [], False
    for b in range(expected.shape[0]):
        row = []
        for p in range(expected.shape[1]):
            e = int(expected[b, p])
            if comparable and int(got[b, p]) != e:
                differs = True
                row.append(f'<td class="bad" title="position {p}: yours {int(got[b, p])}, expected {e}">{int(got[b, p])}<br><s>{e}</s></td>')
            else:
                row.append(f'<td title="position {p}">{e}</td>')
        cells.append(f"<tr><th>batch {b}</th>{''.join(row)}</tr>")
    return Figure(title, [Markup(f'<table class="tokens">{"".join(cells)}</table>')], differs=differs, yours=comparable)


def dict_table(title: str, expected: dict, got: Any, *, atol: float = 0.0, rtol: float = 0.0) -> Figure:
    rows, differs = [], False
    for name, e in expected.items():
        g = got.get(name) if isinstance(got, dict) else None
        ea, ga = _array(e), _array(g)
        if _same(ga, ea):
            err = float(np.nanmax(np.abs(ga - ea))) if ea.size else 0.0
            ok = within(ga, ea, atol, rtol)
            status = f"{err:.3g}"
        else:
            ok, status = False, "missing" if g is None else f"yours is {describe(g)}"
        differs |= not ok and isinstance(got, dict)  # a failed call is described, not "different"
        rows.append(f'<tr class="{"" if ok else "bad"}"><td><code>{escape(name)}</code></td><td>{list(e.shape) if ea is not None else "?"}</td>'
                    f"<td>{escape(status)}</td></tr>")
    head = "<tr><th>hook name</th><th>expected shape</th><th>largest |yours - expected|</th></tr>"
    return Figure(title, [Markup(f'<table class="acts">{head}{"".join(rows)}</table>')], differs=differs, yours=isinstance(got, dict))


def figures(function: str, expected: Any, got: Any, dims: Any, labels: list[str] | None = None,
            *, atol: float = 0.0, rtol: float = 0.0) -> list[Figure]:
    """The pictures of one case (the function's caption is shown once, above its cases).
    ``dims``: the reference's output dimension names (a list, or a list of lists for a tuple
    output); ``labels``: names for a tuple output's items; ``atol``, ``rtol``: the function's
    grading tolerance (what counts as "differs")."""
    try:
        figs = _figures(function, expected, got, dims, labels, (atol, rtol))
    except Exception as err:  # a picture is a courtesy: it must never cost the report
        return [Figure(function, [Markup(f'<p class="note">No picture for this output ({escape(type(err).__name__)}).</p>')])]
    if figs and not any(f.yours for f in figs):  # nothing of yours drawn: say why, once, whatever the output's kind
        figs[0].panels.append(Markup(f'<p class="note">Yours is {escape(describe(got))}: nothing to draw beside the expected output.</p>'))
    return figs


def _figures(title: str, expected: Any, got: Any, dims: Any, labels: list[str] | None, tol: tuple[float, float]) -> list[Figure]:
    atol, rtol = tol
    if isinstance(expected, dict):
        return [dict_table(title, expected, got, atol=atol, rtol=rtol)]
    if isinstance(expected, tuple):
        ea = [_array(e) for e in expected]
        ga = [_array(g) for g in got] if isinstance(got, (tuple, list)) and len(got) == len(expected) else [None] * len(expected)
        if all(a is not None and a.ndim == 0 for a in ea):  # e.g. SAE (total, reconstruction, sparsity)
            names = labels or [f"output[{i}]" for i in range(len(ea))]
            g = np.stack(ga) if all(_same(a, b) for a, b in zip(ga, ea)) else None
            return [bar_figure(title, names, np.stack(ea), g, atol=atol, rtol=rtol)]
        if len(expected) == 2 and isinstance(expected[1], list) and all(isinstance(s, str) for s in expected[1]):
            # (attributions [component, batch], labels): one bar per component, batch mean
            e, g = ea[0], ga[0]
            return [bar_figure(title, list(expected[1]), e.mean(axis=-1), g.mean(axis=-1) if _same(g, e) else None, atol=atol, rtol=rtol)]
        sub_dims = dims if isinstance(dims, list) and len(dims) == len(expected) else [None] * len(expected)
        names = labels or [f"output[{i}]" for i in range(len(expected))]
        out = []
        for i, e in enumerate(expected):
            g = got[i] if isinstance(got, (tuple, list)) and len(got) == len(expected) else None
            out += _figures(f"{title}: {names[i]}", e, g, sub_dims[i], None, tol)
        return out
    if isinstance(expected, torch.Tensor) and not expected.is_floating_point() and expected.ndim == 2:
        return [token_table(title, expected, got)]
    e, g = _array(expected), _array(got)
    if e is None:
        return []
    g = g if _same(g, e) else None
    dims = dims if isinstance(dims, list) and dims and isinstance(dims[0], str) else None
    fig: Figure
    if e.ndim == 0:
        fig = bar_figure(title, [title.split(": ")[-1]], e.reshape(1), g.reshape(1) if g is not None else None, atol=atol, rtol=rtol)
    elif e.ndim == 1 and e.shape[0] <= BAR_LIMIT:
        fig = bar_figure(title, _labels(dims[0] if dims else None, e.shape[0]), e, g, atol=atol, rtol=rtol)
    elif e.ndim == 1:
        fig = matrix_figure(title, e[None], g[None] if g is not None else None, ["", dims[0] if dims else ""], atol=atol, rtol=rtol)
    elif e.ndim == 3 and dims and dims[-1] == "batch":  # per-head values per prompt: bars of the batch mean
        names = [f"{a}{b}" for a in _labels(dims[0], e.shape[0]) for b in _labels(dims[1], e.shape[1])]
        fig = bar_figure(title, names, e.mean(-1).ravel(), g.mean(-1).ravel() if g is not None else None, atol=atol, rtol=rtol)
    elif e.ndim == 2:
        fig = matrix_figure(title, e, g, dims, atol=atol, rtol=rtol)
    else:
        return []
    if g is None and e.ndim == 2 and isinstance(got, torch.Tensor) and tuple(got.shape) == e.shape[::-1] and dims:
        # Transposed (the hint says so): drawn as returned, its axes named the other way round.
        yours = _array(got)
        if yours is not None:
            fig.panels.append(heatmap(yours, rows=_labels(dims[1], e.shape[1]), cols=_labels(dims[0], e.shape[0]),
                                      title=f"yours, as returned: [{dims[1]}, {dims[0]}]", xlabel=dims[0], ylabel=dims[1],
                                      diverging=bool((yours < 0).any())))
            fig.differs = fig.yours = True
    return [fig]
