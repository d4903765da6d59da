"""Loss and evaluation curves drawn with Pillow (no matplotlib dependency)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from fast3r_core.atomic import atomic_path

__all__ = ["plot_curves"]

_W, _H = 900, 620
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 70, 20, 30, 40
_COLORS = {
    "loss": (40, 90, 200),
    "smooth": (200, 40, 40),
    "RRA@15": (30, 150, 60),
    "RTA@15": (220, 130, 0),
    "mAA@30": (120, 40, 160),
}


def _panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    y_range: tuple[float, float] | None = None,
) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=(0, 0, 0))
    draw.text((x0 + 5, y0 - 18), title, fill=(0, 0, 0))
    pts = [(x, y) for x, y in series.values() if len(x)]
    if not pts:
        draw.text((x0 + 10, y0 + 10), "no data yet", fill=(120, 120, 120))
        return
    xs = np.concatenate([p[0] for p in pts])
    ys = np.concatenate([p[1] for p in pts])
    ys = ys[np.isfinite(ys)]
    xmin, xmax = float(xs.min()), float(xs.max())
    if y_range is None:
        lo, hi = np.percentile(ys, [1, 99]) if len(ys) > 10 else (ys.min(), ys.max())
        y_range = (float(lo), float(hi))
    ymin, ymax = y_range
    if xmax <= xmin:
        xmax = xmin + 1
    if ymax <= ymin:
        ymax = ymin + 1e-6

    def tx(x: float) -> float:
        return x0 + (x - xmin) / (xmax - xmin) * (x1 - x0)

    def ty(y: float) -> float:
        y = min(max(y, ymin), ymax)
        return y1 - (y - ymin) / (ymax - ymin) * (y1 - y0)

    for k in range(5):  # grid and y labels
        yv = ymin + (ymax - ymin) * k / 4
        draw.line([(x0, ty(yv)), (x1, ty(yv))], fill=(225, 225, 225))
        draw.text((x0 - 60, ty(yv) - 6), f"{yv:.3g}", fill=(0, 0, 0))
    for k in range(5):
        xv = xmin + (xmax - xmin) * k / 4
        draw.text((tx(xv) - 10, y1 + 5), f"{xv:.0f}", fill=(0, 0, 0))
    legend_x = x0 + 10
    for name, (x, y) in series.items():
        color = _COLORS.get(name, (0, 0, 0))
        line = [(tx(a), ty(b)) for a, b in zip(x, y, strict=True) if math.isfinite(b)]
        if len(line) > 1:
            draw.line(line, fill=color, width=2 if name != "loss" else 1)
        elif line:
            draw.ellipse([line[0][0] - 2, line[0][1] - 2, line[0][0] + 2, line[0][1] + 2], fill=color)
        draw.text((legend_x, y0 + 5), name, fill=color)
        legend_x += 80


def plot_curves(
    log_rows: Sequence[Mapping[str, Any]], eval_rows: Sequence[Mapping[str, Any]], path: str | Path
) -> Path:
    """Write a PNG with the training loss (raw and smoothed) against the step, and the held-out pose
    metrics (RRA@15, RTA@15, mAA@30) against the step."""
    img = Image.new("RGB", (_W, _H), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    steps = np.array([float(r["step"]) for r in log_rows])
    loss = np.array([float(r["loss"]) for r in log_rows])
    smooth = loss.copy()
    for i in range(1, len(smooth)):  # exponential moving average
        smooth[i] = 0.9 * smooth[i - 1] + 0.1 * loss[i]
    mid = _H // 2 + 10
    _panel(
        draw,
        (_PAD_L, _PAD_T, _W - _PAD_R, mid - _PAD_B),
        {"loss": (steps, loss), "smooth": (steps, smooth)},
        "training loss",
    )
    e_steps = np.array([float(r["step"]) for r in eval_rows])
    series = {
        k: (e_steps, np.array([float(r[k]) for r in eval_rows])) for k in ("RRA@15", "RTA@15", "mAA@30")
    }
    _panel(
        draw, (_PAD_L, mid + _PAD_T, _W - _PAD_R, _H - _PAD_B), series, "held-out pose metrics", (0.0, 1.0)
    )
    path = Path(path)
    with atomic_path(path, error=None, suffix=".png") as tmp:
        img.save(tmp, format="PNG")
    return path
