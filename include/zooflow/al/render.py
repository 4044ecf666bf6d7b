"""Images volunteers classify, drawn for each picked pool item.

The founding loop drew two PNGs per glitch with matplotlib. Projects differ in what to draw, so a
project can name its own ``render(pool, pool_id, out_dir) -> list[Path]``; the default draws the
array(s) stored beside the pool file (``X.images.npz`` for ``X.parquet`` or ``X.csv``, one entry per
pool id: a 2-D array, or a 3-D stack for several images per item). Only pixels go into the images:
feature values and coordinates stay in hidden metadata, never in front of volunteers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from zooflow.al.dotted import import_object
from zooflow.al.pool import Pool
from zooflow.errors import ConfigurationError
from zooflow.paths import safe_name

Renderer = Callable[[Pool, str, Path], list[Path]]
IMAGE_PIXELS = 300  # width and height of each PNG: small uploads, still sharp on a phone
_DPI = 100


def load_renderer(dotted: str | None) -> Renderer:
    """The default array renderer, or a project's own named ``module:callable``."""
    return render_arrays if dotted is None else import_object(dotted, "renderer")


def images_path(pool_path: str | os.PathLike[str]) -> Path:
    """``X.images.npz`` beside ``X.parquet``, ``X.csv`` or ``X.csv.gz``."""
    path = Path(pool_path)
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    return path.with_name(f"{Path(name).stem}.images.npz")


def render_arrays(pool: Pool, pool_id: str, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw the item's stored array(s) as ``<pool_id>-<n>.png`` files (n from 0), without axes.

    An id with characters unsafe in a file name (``/``, spaces) is cleaned the same way every time."""
    source = images_path(pool.path)
    if not source.is_file():
        raise ConfigurationError(
            f"no images file {source} beside pool {pool.path}; write one (keys: pool ids, values: 2-D arrays) "
            f"or name a renderer of your own")
    with np.load(source, allow_pickle=False) as arrays:
        if str(pool_id) not in arrays.files:
            raise ConfigurationError(f"{source} has no image for pool id {pool_id!r}; add it, or render with your own renderer")
        stack = np.asarray(arrays[str(pool_id)], dtype=np.float64)
    if stack.ndim == 2:
        stack = stack[np.newaxis]
    if stack.ndim != 3 or 0 in stack.shape:
        raise ConfigurationError(
            f"{source}: the image of {pool_id!r} has shape {stack.shape}; store a 2-D array, or a 3-D stack of them")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [_draw(image, out / f"{safe_name(pool_id)}-{n}.png") for n, image in enumerate(stack)]


def _draw(image: np.ndarray, target: Path) -> Path:
    # A Figure with its own Agg canvas, not pyplot: no global state, safe in Airflow's worker threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(IMAGE_PIXELS / _DPI, IMAGE_PIXELS / _DPI), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(image, cmap="gray_r", interpolation="nearest", aspect="auto")
    axes.set_axis_off()
    figure.savefig(target, format="png", metadata={"Software": None})
    return target
