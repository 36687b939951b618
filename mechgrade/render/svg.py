"""Inline SVG charts for the HTML report, built by hand: heatmaps and grouped bar charts.

Why not matplotlib: these two chart kinds are all the report needs; hand-built SVG adds no
dependency (matplotlib and its fonts are ~40 MB and 0.5 s of import), stays crisp at any zoom,
keeps the file small, and each cell carries its exact value as a hover tooltip (``<title>``).
Inputs are plain nested lists or numpy arrays; every label is XML-escaped.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from html import escape

import numpy as np
from markupsafe import Markup

FONT = 'font-family="system-ui, sans-serif" font-size="11"'
VECTOR_CELLS = 64  # larger heatmaps (other than up to 12 x 12: GPT-2-small's heads) are one embedded PNG
VECTOR_SIDE = 12
SEQ = ((255, 255, 255), (8, 48, 107))  # white -> dark blue: attention, scores in [0, 1]
DIV = ((33, 102, 172), (255, 255, 255), (178, 24, 43))  # blue <- white -> red: signed values


def _mix(a: tuple, b: tuple, t: float) -> str:
    return "#%02x%02x%02x" % tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def color(value: float, vmin: float, vmax: float, diverging: bool) -> str:
    """Fill colour of one cell; NaN and inf are grey so that they stand out."""
    if not math.isfinite(value):
        return "#9e9e9e"
    if diverging:
        span = max(abs(vmin), abs(vmax)) or 1.0
        t = max(-1.0, min(1.0, value / span))
        return _mix(DIV[1], DIV[2], t) if t >= 0 else _mix(DIV[1], DIV[0], -t)
    t = 0.0 if vmax == vmin else (value - vmin) / (vmax - vmin)
    return _mix(*SEQ, max(0.0, min(1.0, t)))


def colors(m: np.ndarray, vmin: float, vmax: float, diverging: bool) -> np.ndarray:
    """[rows, cols] values -> [rows, cols, 3] uint8 RGB, the same map as ``color``."""
    if diverging:
        span = max(abs(vmin), abs(vmax)) or 1.0
        t = np.clip(np.nan_to_num(m / span), -1.0, 1.0)[..., None]
        mid, pos, neg = (np.asarray(c, dtype=np.float64) for c in (DIV[1], DIV[2], DIV[0]))
        rgb = np.where(t >= 0, mid + (pos - mid) * t, mid + (neg - mid) * -t)
    else:
        t = np.clip(np.nan_to_num((m - vmin) / ((vmax - vmin) or 1.0)), 0.0, 1.0)[..., None]
        a, b = (np.asarray(c, dtype=np.float64) for c in SEQ)
        rgb = a + (b - a) * t
    rgb[~np.isfinite(m)] = 158  # grey, as in ``color``
    return np.round(rgb).astype(np.uint8)


def png(rgb: np.ndarray) -> bytes:
    """A minimal truecolour PNG of ``rgb`` [height, width, 3] uint8 (no Pillow needed)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def heatmap(values, *, rows: list[str], cols: list[str], title: str = "", diverging: bool = False,
            vmin: float | None = None, vmax: float | None = None, xlabel: str = "", ylabel: str = "",
            width: int = 360) -> Markup:
    """A [rows, cols] matrix as coloured cells. ``vmin``/``vmax`` fix the scale (so that the
    student's map and the expected one share it); by default the data's finite range."""
    m = np.asarray(values, dtype=np.float64).reshape(len(rows), len(cols))
    finite = m[np.isfinite(m)]
    lo = float(finite.min()) if vmin is None and finite.size else (vmin or 0.0)
    hi = float(finite.max()) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
    cell = max(3.0, min(28.0, width / max(1, len(cols))))
    ch = max(cell, 16.0) if len(rows) <= 4 else cell  # a vector or a few rows: taller cells, still readable
    left = 10 + 6.5 * max((len(r) for r in rows), default=0) + (14 if ylabel else 0)
    top = 22 if title else 6
    every = max(1, math.ceil(24 / cell))  # a column label every ~24 px
    w, h = left + cell * len(cols) + 84, max(top + ch * len(rows) + 34 + (14 if xlabel else 0), top + 68)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" viewBox="0 0 {w:.0f} {h:.0f}" {FONT} role="img">']
    if title:
        out.append(f'<text x="{left:.1f}" y="14" font-weight="600">{escape(title)}</text>')
    if m.size <= VECTOR_CELLS or max(m.shape) <= VECTOR_SIDE:  # one <rect> per cell, with its value as a tooltip
        for i, row in enumerate(rows):
            for j, col in enumerate(cols):
                v = float(m[i, j])
                out.append(f'<rect x="{left + j * cell:.1f}" y="{top + i * ch:.1f}" width="{cell:.1f}" height="{ch:.1f}" '
                           f'fill="{color(v, lo, hi, diverging)}"><title>{escape(row)}, {escape(col)}: {_fmt(v)}</title></rect>')
    else:  # one pixel per cell, scaled up without smoothing: a few KB instead of ~100 B per cell
        uri = "data:image/png;base64," + base64.b64encode(png(colors(m, lo, hi, diverging))).decode("ascii")
        out.append(f'<image x="{left:.1f}" y="{top:.1f}" width="{cell * len(cols):.1f}" height="{ch * len(rows):.1f}" '
                   f'preserveAspectRatio="none" style="image-rendering: pixelated" href="{uri}"/>')
    for i, row in enumerate(rows):
        if ch >= 9 or i % max(1, round(12 / ch)) == 0:
            out.append(f'<text x="{left - 4:.1f}" y="{top + i * ch + ch / 2 + 4:.1f}" text-anchor="end">{escape(row)}</text>')
    y_axis = top + ch * len(rows)
    for j, col in enumerate(cols):
        if j % every == 0:
            out.append(f'<text x="{left + (j + 0.5) * cell:.1f}" y="{y_axis + 13:.1f}" text-anchor="middle">{escape(col)}</text>')
    if xlabel:
        out.append(f'<text x="{left + cell * len(cols) / 2:.1f}" y="{y_axis + 28:.1f}" text-anchor="middle" fill="#555">{escape(xlabel)}</text>')
    if ylabel:
        out.append(f'<text x="10" y="{top + ch * len(rows) / 2:.1f}" fill="#555" transform="rotate(-90 10 {top + ch * len(rows) / 2:.1f})" text-anchor="middle">{escape(ylabel)}</text>')
    # Colour scale: the two ends, so that a reader can tell 0.2 from 0.9.
    sx = left + cell * len(cols) + 12
    span = max(abs(lo), abs(hi)) if diverging else None
    top_v, bot_v = (span, -span) if diverging else (hi, lo)
    for k in range(10):
        v = top_v + (bot_v - top_v) * k / 9
        out.append(f'<rect x="{sx:.1f}" y="{top + k * 6:.1f}" width="10" height="6" fill="{color(v, lo, hi, diverging)}"/>')
    out.append(f'<text x="{sx + 13:.1f}" y="{top + 8:.1f}">{_fmt(top_v)}</text>')
    out.append(f'<text x="{sx + 13:.1f}" y="{top + 60:.1f}">{_fmt(bot_v)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


PALETTE = ("#4c78a8", "#f58518", "#b2182b")


def bars(labels: list[str], series: dict[str, list[float]], *, title: str = "", ylabel: str = "", width: int = 520) -> Markup:
    """Grouped bars: one group per label, one bar per series (e.g. 'expected', 'yours'), with a
    zero line so that signed values (logit attributions) read correctly."""
    names = list(series)
    data = np.asarray([series[n] for n in names], dtype=np.float64).reshape(len(names), len(labels))
    finite = data[np.isfinite(data)]
    hi = max(0.0, float(finite.max())) if finite.size else 1.0
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    if hi == lo:
        hi = lo + 1.0
    left, top, plot_h = 56, 36 if title else 20, 160
    group = max(14.0, min(70.0, (width - left) / max(1, len(labels))))
    bar = group * 0.8 / len(names)
    longest = max((len(s) for s in labels), default=0)
    rotate = longest * 6.5 > group
    label_h = 8 + (6.0 * longest if rotate else 12)
    if rotate:  # a label rotated -45 degrees ends at its bar and reaches ~0.71 of its length to the left
        left = max(left, math.ceil(0.71 * 6.5 * longest - group / 2) + 6)
    legend_w = sum(24 + 7 * len(n) for n in names)
    w, h = max(left + group * len(labels) + 10, left + legend_w), top + plot_h + label_h + 4

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" viewBox="0 0 {w:.0f} {h:.0f}" {FONT} role="img">']
    if title:
        out.append(f'<text x="{left}" y="14" font-weight="600">{escape(title)}</text>')
    lx = left
    for k, name in enumerate(names):  # legend
        out.append(f'<rect x="{lx}" y="{top - 14}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>'
                   f'<text x="{lx + 14}" y="{top - 5}">{escape(name)}</text>')
        lx += 24 + 7 * len(name)
    for v in sorted({lo, 0.0, hi}):
        if v != 0.0 and abs(y(v) - y(0.0)) < 12:
            continue  # too close to the zero line's label to print
        out.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    if ylabel:
        out.append(f'<text x="10" y="{top + plot_h / 2:.1f}" fill="#555" transform="rotate(-90 10 {top + plot_h / 2:.1f})" text-anchor="middle">{escape(ylabel)}</text>')
    for i, label in enumerate(labels):
        gx = left + i * group + group * 0.1
        for k, name in enumerate(names):
            v = float(data[k, i])
            v_draw = v if math.isfinite(v) else 0.0
            y0, y1 = sorted((y(0.0), y(v_draw)))
            out.append(f'<rect x="{gx + k * bar:.1f}" y="{y0:.1f}" width="{bar * 0.92:.1f}" height="{max(0.5, y1 - y0):.1f}" '
                       f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(label)}, {escape(name)}: {_fmt(v)}</title></rect>')
        cx, ly = left + (i + 0.5) * group, top + plot_h + 12
        if rotate:
            out.append(f'<text x="{cx:.1f}" y="{ly:.1f}" text-anchor="end" transform="rotate(-45 {cx:.1f} {ly:.1f})">{escape(label)}</text>')
        else:
            out.append(f'<text x="{cx:.1f}" y="{ly:.1f}" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<line x1="{left}" x2="{left + group * len(labels)}" y1="{y(0.0):.1f}" y2="{y(0.0):.1f}" stroke="#333"/>')
    out.append("</svg>")
    return Markup("".join(out))
