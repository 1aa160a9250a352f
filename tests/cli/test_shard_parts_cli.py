"""hmr shard --part I/N: parts write their shards, the run without a part writes the index."""

from __future__ import annotations

from cli.main import main
from hmr.core.schema import open_store
from loaders.shard import INDEX_NAME, load_shard_set
from tests.fixtures.loaders import coco_store


def test_shard_parts_from_the_command_line(tmp_path, capsys):
    store = coco_store(tmp_path)
    out = tmp_path / "shards"
    assert main(["shard", str(store), "--out", str(out), "--part", "0/2", "--quiet"]) != 0
    assert "--samples-per-shard" in capsys.readouterr().err
    assert main(["shard", str(store), "--out", str(out), "--part", "2/2", "--samples-per-shard", "2",
                 "--quiet"]) != 0
    assert "0 <= I < N" in capsys.readouterr().err
    for part in ("1/2", "0/2"):
        assert main(["shard", str(store), "--out", str(out), "--part", part, "--samples-per-shard", "2",
                     "--quiet"]) == 0
        assert f"part {part} ->" in capsys.readouterr().out
    (set_dir,) = [p for p in out.iterdir() if p.is_dir()]
    assert not (set_dir / INDEX_NAME).exists()
    assert main(["shard", str(store), "--out", str(out), "--samples-per-shard", "2", "--quiet"]) == 0
    sset = load_shard_set(set_dir)
    assert sset.index["last_run"]["shards_written"] == 0  # every shard came from the parts
    assert sset.num_samples == len(open_store(store))
