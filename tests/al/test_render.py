"""Images for volunteers: PNGs drawn from the arrays beside the pool, or a project's own renderer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from zooflow.al.pool import load_pool
from zooflow.al.render import IMAGE_PIXELS, images_path, load_renderer, render_arrays
from zooflow.errors import ConfigurationError


@pytest.fixture()
def pool(tmp_path):
    path = tmp_path / "glitches.csv"
    pd.DataFrame({"id": ["g1", "g2", "g 3/x"], "f": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    ring = np.hypot(*np.meshgrid(np.arange(-8, 8), np.arange(-8, 8)))
    np.savez(tmp_path / "glitches.images.npz", **{
        "g1": (ring < 5).astype(float),
        "g2": np.stack([np.eye(12), np.fliplr(np.eye(12)) * 3]),  # two images for one item
        "g 3/x": np.arange(20.0).reshape(4, 5),
    })
    return load_pool(path)


def pixels(path):
    image = imread(path)
    assert image.shape[:2] == (IMAGE_PIXELS, IMAGE_PIXELS)
    return image[..., :3]


def test_one_png_per_2d_array_and_not_blank(pool, tmp_path):
    out = tmp_path / "images"
    files = render_arrays(pool, "g1", out)
    assert files == [out / "g1-0.png"] and files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = pixels(files[0])
    assert image.var() > 0.01
    centre, corner = image[IMAGE_PIXELS // 2, IMAGE_PIXELS // 2], image[2, 2]
    assert centre.mean() < corner.mean()  # the disc is dark on light, drawn edge to edge without axes
    assert np.allclose(image[0], image[0, 0]) and np.allclose(image[:, 0], image[0, 0])  # no frame or ticks


def test_a_3d_stack_gives_several_images_and_names_are_deterministic(pool, tmp_path):
    files = render_arrays(pool, "g2", tmp_path / "a")
    assert [f.name for f in files] == ["g2-0.png", "g2-1.png"]
    assert all(pixels(f).var() > 0.01 for f in files)
    assert not np.array_equal(pixels(files[0]), pixels(files[1]))
    again = render_arrays(pool, "g2", tmp_path / "b")
    assert [f.read_bytes() for f in again] == [f.read_bytes() for f in files]


def test_unsafe_ids_give_safe_file_names(pool, tmp_path):
    [file] = render_arrays(pool, "g 3/x", tmp_path)
    assert file.parent == tmp_path and file.name == "g_3__x-0.png"


def test_missing_arrays_or_id_is_a_clear_error(pool, tmp_path):
    with pytest.raises(ConfigurationError, match="has no image for pool id 'g9'"):
        render_arrays(pool, "g9", tmp_path)
    images_path(pool.path).unlink()
    with pytest.raises(ConfigurationError, match=r"no images file .*glitches.images.npz"):
        render_arrays(pool, "g1", tmp_path)


def test_a_bad_array_shape_is_refused(tmp_path):
    pd.DataFrame({"id": ["a"], "f": [1.0]}).to_csv(tmp_path / "p.csv", index=False)
    np.savez(tmp_path / "p.images.npz", a=np.zeros(5))
    with pytest.raises(ConfigurationError, match=r"shape \(1, 5\)|shape \(5,\)"):
        render_arrays(load_pool(tmp_path / "p.csv"), "a", tmp_path)


def test_images_path_beside_each_pool_format(tmp_path):
    for name in ("X.parquet", "X.csv", "X.csv.gz"):
        assert images_path(tmp_path / name) == tmp_path / "X.images.npz"


def test_load_renderer(pool, tmp_path):
    assert load_renderer(None) is render_arrays
    custom = load_renderer("al_support:fake_renderer")
    assert [p.name for p in custom(pool, "g1", tmp_path)] == ["custom-g1.png"]
    with pytest.raises(ConfigurationError, match="renderer 'al_support:nothing'"):
        load_renderer("al_support:nothing")
