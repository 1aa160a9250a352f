"""Backgrounds: procedural by default, the same on every machine; photos only when named."""

import json

import numpy as np
import pytest

from hmr.synth.backgrounds import PROCEDURAL, SHAPES, BackgroundSource, clutter, procedural


def test_default_backgrounds_are_procedural_and_depend_on_the_seed_alone():
    source = BackgroundSource()
    assert source.photos == [] and source.photo_fraction == 0.0
    draws = [BackgroundSource().draw(128, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0][1] == draws[1][1] and draws[0][1].split(":")[0] in ("clutter", "texture")
    np.testing.assert_array_equal(draws[0][0], draws[1][0])
    other, _ = source.draw(128, np.random.default_rng(8))
    assert np.abs(other.astype(int) - draws[0][0]).mean() > 10


def test_plain_textures_and_cluttered_scenes_are_mixed_by_plain_fraction():
    rng = np.random.default_rng(3)
    kinds = [BackgroundSource().draw(48, rng)[1].split(":")[0] for _ in range(400)]
    assert 0.4 < kinds.count("texture") / len(kinds) < 0.6 and set(kinds) == {"texture", "clutter"}
    assert {BackgroundSource(plain_fraction=0.0).draw(48, rng)[1].split(":")[0] for _ in range(20)} == {"clutter"}
    assert {BackgroundSource(plain_fraction=1.0).draw(48, rng)[1].split(":")[0] for _ in range(20)} == {"texture"}


def test_scenes_are_cluttered_and_varied():
    rng = np.random.default_rng(0)
    scenes = [clutter(96, rng) for _ in range(40)]
    for img, description in scenes:
        assert img.shape == (96, 96, 3) and img.dtype == np.uint8
        assert description.split(":")[1] in PROCEDURAL
    # clutter: many colours and edges in each picture, not a flat texture
    edges = [np.abs(np.diff(img.astype(int), axis=1)).max(axis=2) > 40 for img, _ in scenes]
    assert min(e.mean() for e in edges) > 0.002 and np.median([e.mean() for e in edges]) > 0.02
    assert np.median([len(np.unique(img.reshape(-1, 3) // 32, axis=0)) for img, _ in scenes]) > 40
    # varied: every base texture occurs, and the mean colours spread
    assert {d.split(":")[1] for _, d in scenes} == set(PROCEDURAL)
    assert np.std([img.mean(axis=(0, 1)) for img, _ in scenes], axis=0).min() > 10


def test_procedural_textures_and_unknown_kinds():
    rng = np.random.default_rng(1)
    for kind in PROCEDURAL:
        assert procedural(kind, 40, rng).shape == (40, 40, 3)
    with pytest.raises(ValueError, match="unknown procedural background"):
        procedural("marble", 40, rng)
    assert len(SHAPES) == 5


def test_named_photo_folders_give_crops_that_avoid_person_boxes(tmp_path):
    import cv2

    img = np.zeros((200, 300, 3), np.uint8)
    img[:, :150] = (0, 0, 255)  # a "person" fills the left half, in red
    img[:, 150:] = (0, 255, 0)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    (tmp_path / "boxes.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png"}],
        "annotations": [{"image_id": 1, "bbox": [0, 0, 150, 200]}]}))
    source = BackgroundSource([tmp_path], photo_fraction=1.0)
    assert len(source.photos) == 1
    rng = np.random.default_rng(0)
    for _ in range(10):
        crop, description = source.draw(32, rng)
        assert description == "photo:a.png"
        assert (crop[..., 0] < 30).all() and (crop[..., 1] > 220).all()  # RGB: green only
