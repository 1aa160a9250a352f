"""hmr predict clears a killed run's leftovers once per run, never searches the folder per file."""

import os

import cv2
import numpy as np
import pytest

from hmr.core.utils import atomic
from hmr.evaluation.predict import predict_images
from tests.hmr.core.utils.test_atomic import dead_pid
from tests.hmr.evaluation.test_predict import checkpoint  # noqa: F401  (the fixture)


def test_predict_sweeps_once_and_fsyncs_each_file(tmp_path, checkpoint, monkeypatch):  # noqa: F811
    out = tmp_path / "out"
    out.mkdir()
    pid = dead_pid()
    (out / f"p0.json.partial-{pid}").write_text("left by a killed run")
    images = []
    for i in range(3):
        images.append(tmp_path / f"p{i}.jpg")
        cv2.imwrite(str(images[-1]), np.random.default_rng(i).integers(0, 255, (60, 40, 3), dtype=np.uint8))

    def per_file_search(path):
        raise AssertionError(f"searched the folder for leftovers of {path}")

    monkeypatch.setattr(atomic, "remove_stale_partials", per_file_search)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    files = predict_images(checkpoint, images, out, device="cpu")
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in files)  # the leftover is gone
    assert len(files) == 9 and len(synced) == 9
    with pytest.raises(RuntimeError):  # a failed write still leaves nothing behind
        with atomic.atomic_path(out / "x.json", many=True, fsync=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert not list(out.glob("x.json*"))
