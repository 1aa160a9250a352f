"""One image-header prober: in-process while reads are fast, one pool once they are slow."""

from __future__ import annotations

import pytest

from converters.images import ImageProber
from tests.fixtures.converters_2d import write_image


def _images(folder, n):
    return [write_image(folder / f"{i}.png", (10 + i, 20)) for i in range(n)]


@pytest.mark.parametrize("workers", [1, 2])
def test_prober_keeps_order_and_reports_unreadable_images(tmp_path, workers, monkeypatch):
    monkeypatch.setattr("converters.images.POOL_MIN_SECONDS_PER_IMAGE", -1.0)  # every read "slow"
    paths = _images(tmp_path, 4)
    with ImageProber(workers) as probe:
        first = list(probe(paths[:2]))
        assert probe._pool is None  # the first call is read here and timed
        second = list(probe([paths[3], tmp_path / "missing.jpg", paths[2]]))
        assert (probe._pool is not None) == (workers > 1)  # slow reads: the next call pools
        third = list(probe(paths))  # the same pool again
    assert probe._pool is None  # closed on exit
    assert first == [(10, 20), (11, 20)]
    assert second[0] == (13, 20) and "missing" in second[1] and second[2] == (12, 20)
    assert third == [(10 + i, 20) for i in range(4)]


def test_fast_reads_never_start_a_pool(tmp_path, monkeypatch):
    monkeypatch.setattr("converters.images.POOL_MIN_SECONDS_PER_IMAGE", 1.0)  # every read "fast"
    paths = _images(tmp_path, 3)
    with ImageProber(4) as probe:
        for _ in range(3):
            assert list(probe(paths)) == [(10, 20), (11, 20), (12, 20)]
        assert probe._pool is None
