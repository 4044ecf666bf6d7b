"""The charts of the reports, drawn with matplotlib into PNG bytes.

Each chart is a ``Figure`` with its own Agg canvas, never pyplot: no global state, so charts can be
drawn in Airflow's worker threads and nothing needs a display. The PNGs carry no timestamp or
software tag, so the same figures give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

DPI = 100
DAYS_PER_DAY_CHART = 92  # a longer span is charted per month: a bar a day wide would not show
COLOURS = ("#2f6fb3", "#e0803a", "#4c9a5b", "#b0503f")


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _tidy(axes: Any, title: str) -> None:
    axes.set_title(title, loc="left", fontsize=11)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def daily_counts(per_day: Mapping[date, int], *, title: str, ylabel: str) -> tuple[bytes, str]:
    """Bars on a date axis, so a day without data shows as a gap; and the chart's resolution.

    Up to ``DAYS_PER_DAY_CHART`` days apart, one bar per day. A longer span (a manual run over a
    project's whole history) would make day-wide bars too thin to see, so the days are summed into
    calendar months: ``"day"`` or ``"month"`` comes back with the PNG, for the caption.
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num

    days = sorted(per_day)
    span = (days[-1] - days[0]).days + 1 if days else 1
    unit, width = ("day", 0.8) if span <= DAYS_PER_DAY_CHART else ("month", 25)
    counts: dict[date, int] = {}
    for day in days:
        key = day if unit == "day" else day.replace(day=1)
        counts[key] = counts.get(key, 0) + per_day[day]
    figure = _figure(8, 3.4)
    axes = figure.add_subplot()
    axes.bar(list(counts), list(counts.values()), width=width, align="edge" if unit == "month" else "center",
             color=COLOURS[0])
    if unit == "day":  # a week at least, so a daily run's one bar sits among days, not on an axis of hours
        pad = max(1.0, (7 - span) / 2)
        axes.set_xlim(date2num(days[0]) - pad, date2num(days[-1]) + pad)
    locator = AutoDateLocator(maxticks=10)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel(ylabel)
    axes.grid(axis="y", alpha=0.3)
    _tidy(axes, f"{title} per {unit} (UTC)")
    return _png(figure), unit


def bars(series: Mapping[str, Mapping[str, int]], *, title: str, value_label: str, horizontal: bool = False) -> bytes:
    """Grouped bars: one group per category (in the order given), one bar per series (a legend when
    there are several).

    Horizontal bars suit long category names (workflows); vertical ones short names (classes).
    """
    categories = list(dict.fromkeys(name for counts in series.values() for name in counts))
    width = 0.8 / max(len(series), 1)
    positions = np.arange(len(categories))
    bars_drawn = len(categories) * max(len(series), 1)
    if horizontal:
        figure = _figure(8, min(max(1.8, 0.9 + 0.35 * bars_drawn), 12))
    else:
        figure = _figure(min(max(6.0, 1.5 + 0.3 * bars_drawn), 12), 3.6)
    axes = figure.add_subplot()
    for n, (name, counts) in enumerate(series.items()):
        offsets = positions - 0.4 + width * (n + 0.5)
        values = [counts.get(category, 0) for category in categories]
        draw = axes.barh if horizontal else axes.bar
        draw(offsets, values, width * 0.92, label=name, color=COLOURS[n % len(COLOURS)])
    value_axis, category_axis = (axes.xaxis, axes.yaxis) if horizontal else (axes.yaxis, axes.xaxis)
    category_axis.set_ticks(positions, categories)
    value_axis.get_major_locator().set_params(integer=True)
    (axes.set_xlabel if horizontal else axes.set_ylabel)(value_label)
    axes.grid(axis="x" if horizontal else "y", alpha=0.3)
    if horizontal:
        axes.invert_yaxis()  # the first category on top, as in the table beside it
    if len(series) > 1:
        axes.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    _tidy(axes, title)
    return _png(figure)


def histogram(values: Sequence[float], *, title: str, xlabel: str, bins: int = 20, span: tuple[float, float] = (0, 1)) -> bytes:
    """How many values fall in each of ``bins`` equal bins over ``span``."""
    figure = _figure(6, 3.2)
    axes = figure.add_subplot()
    axes.hist(values, bins=bins, range=span, color=COLOURS[0], edgecolor="white")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("volunteers")
    axes.yaxis.get_major_locator().set_params(integer=True)
    _tidy(axes, title)
    return _png(figure)


def confusion(classes: Sequence[str], matrix: Sequence[Sequence[int]], *, title: str) -> bytes:
    """A confusion matrix as a heat map with the count in each cell (rows: true, columns: predicted);
    zeros are grey, so the mistakes off the diagonal stand out."""
    counts = np.asarray(matrix, dtype=int)
    side = min(2.2 + 0.34 * len(classes), 10.0)
    figure = _figure(side + 0.4, side)
    axes = figure.add_subplot()
    axes.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
    ticks = np.arange(len(classes))
    long_names = max(map(len, classes), default=0) > 3
    axes.set_xticks(ticks, classes, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    axes.set_yticks(ticks, classes)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    threshold = counts.max() / 2
    for (row, column), value in np.ndenumerate(counts):
        colour = "#9aa4ae" if value == 0 else "white" if value > threshold else "#1f2328"
        axes.text(column, row, str(value), ha="center", va="center", fontsize=9, color=colour)
    axes.set_title(title, loc="left", fontsize=11)
    return _png(figure)


def thumbnail(path: str | Path, *, size: int = 160) -> bytes:
    """An image scaled down to at most ``size`` pixels a side, as PNG (a report stays small however
    large the uploaded images are)."""
    from matplotlib.image import imread

    pixels = imread(Path(path))
    height, width = pixels.shape[:2]
    scale = min(1.0, size / max(height, width))
    figure = _figure(max(1, round(width * scale)) / DPI, max(1, round(height * scale)) / DPI)
    figure.set_layout_engine("none")
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, interpolation="antialiased", aspect="auto")
    axes.set_axis_off()
    return _png(figure)
