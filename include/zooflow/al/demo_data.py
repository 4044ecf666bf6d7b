"""A pool with known answers for demos, tests and benchmarks: scikit-learn's handwritten digits.

The digits ship inside scikit-learn (no download), are small enough to run a whole loop in
seconds, and come with their 8x8 images, so the full path (features for the learner, pictures for
volunteers, true labels for simulated volunteers to answer from) can be shown end to end.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from zooflow.files import atomic_write_bytes

POOL_FILE = "digits.parquet"
IMAGES_FILE = "digits.images.npz"


def write_digits_pool(folder: str | os.PathLike[str]) -> Path:
    """Write ``digits.parquet`` (``id`` d0000..., 64 pixel features, ``label``) and ``digits.images.npz``.

    The label column holds the true digit as text; a demo hides it from the learner (load the pool
    without ``label_column``) and lets simulated volunteers answer from it.
    """
    import pandas as pd
    from sklearn.datasets import load_digits

    digits = load_digits()
    ids = [f"d{i:04d}" for i in range(len(digits.target))]
    frame = pd.DataFrame(digits.data, columns=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)])
    frame.insert(0, "id", ids)
    frame["label"] = [str(digit) for digit in digits.target]
    out = Path(folder)
    table = io.BytesIO()
    frame.to_parquet(table, index=False)
    pool_path = atomic_write_bytes(out / POOL_FILE, table.getvalue())
    images = io.BytesIO()
    np.savez_compressed(images, **{pool_id: image for pool_id, image in zip(ids, digits.images)})
    atomic_write_bytes(out / IMAGES_FILE, images.getvalue())
    return pool_path
