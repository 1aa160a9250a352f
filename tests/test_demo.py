"""The reduced demo (tiny sizes) runs end to end through the real pipeline."""

import json

import pytest

from hmr.demo import DemoConfig, run_demo
from hmr.core.schema import open_store


@pytest.mark.slow
def test_quick_demo_runs_every_stage(tmp_path):
    report = run_demo(DemoConfig(out=tmp_path / "demo", quick=True, workers=1))
    names = [s[0] for s in report.stages]
    for stage in ("body model", "render train", "verify", "convert train", "convert test", "shard train",
                  "train", "evaluate mean-pose baseline", "evaluate trained HMR"):
        assert stage in names
    assert len(open_store(tmp_path / "demo/stores/synth_train.zarr")) == 24
    assert (tmp_path / "demo/train_samples.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "demo/demo_report.json").read_text())
    assert [s[0] for s in saved["stages"]] == names
    for model in ("mean-pose baseline", "trained HMR"):
        assert 0 < saved["metrics"][model]["PA-MPJPE"] < saved["metrics"][model]["MPJPE"] + 1e-6
    assert (tmp_path / "demo/run/last.pt").is_file()
    assert list((tmp_path / "demo/eval/trained/worst").glob("*.png"))
    assert "| trained HMR |" in (tmp_path / "demo/demo_report.md").read_text()
