"""The reduced demo (tiny sizes) runs end to end through the real pipeline."""

import json

import pytest

from hmr.core.errors import HmrError
from hmr.core.schema import open_store
from hmr.demo import DemoConfig, prepare_out, run_demo


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

    # make demo twice in a row: the second run clears the first one's files and runs again, to
    # the same figures (the demo is deterministic); a file of the user's in the folder stays.
    (tmp_path / "demo/notes.txt").write_text("mine")
    (tmp_path / "demo/stores/stale.zarr").mkdir()
    again = run_demo(DemoConfig(out=tmp_path / "demo", quick=True, workers=1))
    assert [s[0] for s in again.stages] == names
    assert json.loads((tmp_path / "demo/demo_report.json").read_text())["metrics"] == saved["metrics"]
    assert (tmp_path / "demo/notes.txt").read_text() == "mine"
    assert not (tmp_path / "demo/stores/stale.zarr").exists()


def test_demo_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis/chapter1.tex").write_text("x")
    with pytest.raises(HmrError, match="holds no earlier demo run"):
        prepare_out(tmp_path / "thesis")
    assert (tmp_path / "thesis/chapter1.tex").read_text() == "x"
    assert prepare_out(tmp_path / "new") is False and (tmp_path / "new/.hmr-demo").is_file()
    assert prepare_out(tmp_path / "new") is True  # an (empty) earlier demo folder is reused
