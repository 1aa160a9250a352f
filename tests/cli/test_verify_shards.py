from cli.main import main
from loaders import ShardConfig, shard_store
from tests.fixtures.loaders import pinhole_store


def test_verify_reports_an_altered_shard(tmp_path, capsys):
    store = pinhole_store(tmp_path / "stores", n=8)
    set_dir = shard_store(store, tmp_path / "shards", ShardConfig(crop_size=64, samples_per_shard=4),
                          progress=False)
    assert main(["verify", str(set_dir)]) == 0
    assert "OK" in capsys.readouterr().out
    shard = sorted(set_dir.glob("*.tar"))[1]
    data = bytearray(shard.read_bytes())
    data[700] ^= 0x01
    shard.write_bytes(bytes(data))
    assert main(["verify", str(set_dir)]) == 1
    out = capsys.readouterr().out
    assert shard.name in out and "sha256 differs" in out
