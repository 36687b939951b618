"""Pictures for circuits, superposition and SAE features in the HTML report: 2-D arrows (a toy
model's feature directions, so that the pentagon is seen) and labelled bars.

Inputs are plain arrays from the answer key and the student's decoded output; nothing here
runs student code or raises on student data (callers wrap it like every other picture).
"""

from __future__ import annotations

import math
from html import escape

import numpy as np
from markupsafe import Markup

from mechgrade.render.figures import Figure, bar_figure
from mechgrade.render.svg import FONT, PALETTE


def arrows(vectors, *, title: str = "", labels: list[str] | None = None, color: str = PALETTE[0], size: int = 220) -> Markup:
    """Columns of a [2, n] array as arrows from the origin, on square axes scaled to the
    longest one; each arrow's tip is labelled and carries its coordinates as a tooltip."""
    v = np.nan_to_num(np.asarray(vectors, dtype=np.float64).reshape(2, -1))
    n = v.shape[1]
    labels = labels or [f"f{i}" for i in range(n)]
    reach = float(np.abs(v).max()) or 1.0
    top, pad = 22 if title else 6, 18
    half = (size - 2 * pad) / 2
    cx, cy = pad + half, top + pad + half

    def xy(x: float, y: float) -> tuple[float, float]:
        return cx + x / reach * half, cy - y / reach * half

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{top + size}" viewBox="0 0 {size} {top + size}" {FONT} role="img">']
    if title:
        out.append(f'<text x="{pad}" y="14" font-weight="600">{escape(title)}</text>')
    out.append(f'<line x1="{pad}" x2="{size - pad}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="#ccc"/>'
               f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{top + pad}" y2="{top + size - pad}" stroke="#ccc"/>')
    for i in range(n):
        x, y = xy(v[0, i], v[1, i])
        angle = math.atan2(cy - y, x - cx)
        head = [(x - 8 * math.cos(angle - s), y + 8 * math.sin(angle - s)) for s in (0.4, -0.4)]
        tip = f"{escape(labels[i])}: ({v[0, i]:.3g}, {v[1, i]:.3g})"
        out.append(f'<g stroke="{color}" fill="{color}"><title>{tip}</title>'
                   f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke-width="2"/>'
                   f'<polygon points="{x:.1f},{y:.1f} {head[0][0]:.1f},{head[0][1]:.1f} {head[1][0]:.1f},{head[1][1]:.1f}"/></g>')
        lx, ly = xy(v[0, i] * 1.12, v[1, i] * 1.12)
        out.append(f'<text x="{lx:.1f}" y="{ly + 4:.1f}" text-anchor="middle">{escape(labels[i])}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def feature_arrows(title: str, expected_W: np.ndarray, got_W: np.ndarray | None, caption: str) -> Figure:
    """A toy model's feature directions (columns of W [d_hidden, feature]) in 2-D, expected beside yours."""
    if expected_W.ndim != 2 or expected_W.shape[0] != 2:
        return Figure(title, [Markup('<p class="note">Arrows are drawn for d_hidden = 2 only.</p>')], caption)
    panels = [arrows(expected_W, title="expected")]
    fits = got_W is not None and got_W.shape == expected_W.shape and np.isfinite(got_W).all()
    if fits:
        panels.append(arrows(got_W, title="yours", color=PALETTE[1]))
    differs = fits and not np.allclose(got_W, expected_W, atol=1e-4)
    return Figure(title, panels, caption, differs=differs)


def labelled_bars(title: str, labels: list[str], expected: np.ndarray, got: np.ndarray | None, caption: str) -> Figure:
    """Bars of named values (OV copying per head, a feature's correlation), expected beside yours."""
    return bar_figure(title, labels, np.asarray(expected, dtype=np.float64).ravel(),
                      None if got is None else np.asarray(got, dtype=np.float64).ravel(), caption)
