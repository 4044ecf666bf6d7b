"""The digits demo pool: scikit-learn's digits as a pool file and its images, no download."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.image import imread
from sklearn.datasets import load_digits

from zooflow.al.demo_data import write_digits_pool
from zooflow.al.pool import load_pool
from zooflow.al.render import render_arrays


def test_digits_pool_file_and_images(tmp_path):
    path = write_digits_pool(tmp_path / "demo")
    assert path == tmp_path / "demo" / "digits.parquet"
    frame = pd.read_parquet(path)
    digits = load_digits()
    assert len(frame) == 1797 and list(frame.columns[:2]) == ["id", "pixel_0_0"] and frame.columns[-1] == "label"
    assert frame.shape[1] == 66 and frame.id.iloc[0] == "d0000" and frame.id.iloc[-1] == "d1796"
    assert frame.label.tolist() == [str(d) for d in digits.target]
    np.testing.assert_array_equal(frame.filter(like="pixel_").to_numpy(), digits.data)
    with np.load(tmp_path / "demo" / "digits.images.npz") as images:
        assert sorted(images.files) == frame.id.tolist()
        np.testing.assert_array_equal(images["d0005"], digits.images[5])


def test_the_demo_hides_the_label_from_the_learner_and_draws_digits(tmp_path):
    path = write_digits_pool(tmp_path)
    hidden = load_pool(path)
    assert hidden.X.shape == (1797, 64) and hidden.known == {} and "label" not in hidden.feature_names
    shown = load_pool(path, label_column="label")
    assert len(shown.known) == 1797 and shown.known["d0010"] == "0"
    [image] = render_arrays(hidden, "d0010", tmp_path / "img")
    assert imread(image)[..., :3].var() > 0.01
