"""Layout checks of a drawn figure: no two visible texts overlap, every text is on the canvas, and
every axes has an x and a y label (used by the figure tests)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _tick_labels(ax: Any) -> list[Any]:
    """The tick labels matplotlib actually draws (those of the ticks it updates for drawing)."""
    out = []
    for axis in (ax.xaxis, ax.yaxis):
        for tick in axis._update_ticks():  # the ticks inside the view interval, as drawn
            out += [lab for lab in (tick.label1, tick.label2) if lab.get_visible()]
    return out


def visible_texts(figure: Any) -> list[tuple[str, Any]]:
    """``(owner, Text)`` of every visible non-empty text: titles, labels, ticks, legends, notes."""
    found: list[tuple[str, Any]] = []
    if figure._suptitle is not None:
        found.append(("figure", figure._suptitle))
    for legend in figure.legends:
        found += [("figure legend", t) for t in [legend.get_title(), *legend.get_texts()]]
    found += [("figure", t) for t in figure.texts]
    for k, ax in enumerate(figure.get_axes()):
        if not ax.get_visible():
            continue
        owner = f"axes {k} ({ax.get_title() or ax.get_ylabel()})"
        texts = [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label,
                 ax.xaxis.get_offset_text(), ax.yaxis.get_offset_text(), *ax.texts,
                 *_tick_labels(ax)]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            texts += [legend.get_title(), *legend.get_texts()]
        found += [(owner, t) for t in texts]
    unique = {id(t): (o, t) for o, t in found}  # the suptitle is also among figure.texts
    return [(o, t) for o, t in unique.values() if t.get_visible() and t.get_text().strip()]


def assert_clean_layout(figure: Any) -> None:
    """No two visible texts of ``figure`` overlap (within or across axes), all are on the canvas,
    and every visible axes has an x label and a y label (a colorbar: a label on its long axis)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas_ = FigureCanvasAgg(figure)  # a Figure made without pyplot has no drawing canvas
    canvas_.draw()
    renderer = canvas_.get_renderer()
    texts = visible_texts(figure)
    boxes = [t.get_window_extent(renderer) for _, t in texts]
    canvas = figure.bbox
    for (owner, text), box in zip(texts, boxes, strict=True):
        leaves = f"{owner}: {text.get_text()!r} leaves the figure ({box} outside {canvas})"
        assert box.x0 >= canvas.x0 - 1, leaves
        assert box.x1 <= canvas.x1 + 1, leaves
        assert box.y0 >= canvas.y0 - 1, leaves
        assert box.y1 <= canvas.y1 + 1, leaves
    shrink = 0.5  # pixels: touching boxes do not count
    for i in range(len(texts)):
        a = boxes[i]
        for j in range(i + 1, len(texts)):
            b = boxes[j]
            overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
            assert not (overlap_x > shrink and overlap_y > shrink), (
                f"{texts[i][0]}: {texts[i][1].get_text()!r} overlaps "
                f"{texts[j][0]}: {texts[j][1].get_text()!r}")
    for ax in figure.get_axes():
        if not ax.get_visible():
            continue
        if hasattr(ax, "_colorbar"):
            long_axis = ax.yaxis if ax._colorbar.orientation == "vertical" else ax.xaxis
            assert long_axis.get_label_text(), "colorbar without a label"
            continue
        assert ax.get_xlabel(), f"axes {ax.get_title()!r} lacks a label"
        assert ax.get_ylabel(), f"axes {ax.get_title()!r} lacks a label"


def line_times(ax: Any) -> list[tuple[float, np.ndarray]]:
    """``(t, ydata)`` of the lines of ``ax`` labelled ``"t = <time>"`` (snapshot panels)."""
    out = []
    for line in ax.get_lines():
        label = line.get_label()
        if label.startswith("t = "):
            out.append((float(label.removeprefix("t = ")), np.asarray(line.get_ydata(), float)))
    return out
