"""Two writers of one output: the second refuses at once, naming the lock, and never deletes
the first one's files; leftovers are removed only when their process is gone."""

from __future__ import annotations

import pytest

from cli.main import main
from converters.driver import run_conversion
from hmr.core.errors import HmrError
from hmr.core.schema import open_store
from loaders import ShardConfig, shard_store
from tests.fixtures.loaders import pinhole_store
from tests.reliability.helpers import coco_raw, convert_args, dead_pid, start_child, wait_for

pytestmark = pytest.mark.slow

STORE = "coco2017_val.zarr"


def test_second_convert_to_the_same_out_refuses_and_the_first_finishes_intact(tmp_path):
    raw = coco_raw(tmp_path / "coco")
    out = tmp_path / "out"
    ready, go = tmp_path / "ready", tmp_path / "go"
    # the first run stops after its first sample, its partial folder live, until told to go on
    first = start_child(f"""
        import time
        from hmr.core.schema import store
        original = store.StoreWriter.add
        def add(self, sample):
            if not Path({str(ready)!r}).exists():
                Path({str(ready)!r}).touch()
                while not Path({str(go)!r}).exists():
                    time.sleep(0.05)
            return original(self, sample)
        store.StoreWriter.add = add
        from cli.main import main
        sys.exit(main({convert_args(raw, out)!r}))
    """)
    try:
        wait_for(ready, first)
        partials = [p for p in out.iterdir() if ".partial-" in p.name]
        assert len(partials) == 1
        with pytest.raises(HmrError, match=r"coco2017_val\.zarr\.lock") as err:
            run_conversion("coco2017", raw, out, split="val", overwrite=True, progress=False, argv=["t"])
        assert "another hmr process" in str(err.value)
        assert partials[0].exists(), "the second writer must not touch the first one's partial"
        go.touch()
        assert first.wait(timeout=120) == 0, first.stderr.read()
    finally:
        go.touch()
        first.kill()
    assert len(open_store(out / STORE)) == 4
    assert main(["verify", str(out / STORE)]) == 0


def test_partial_of_a_live_process_is_kept_and_of_a_dead_one_removed(tmp_path):
    raw = coco_raw(tmp_path / "coco")
    out = tmp_path / "out"
    out.mkdir()
    live = out / f"{STORE}.partial-{__import__('os').getppid()}"  # our parent: alive
    dead = out / f"{STORE}.partial-{dead_pid()}"
    for p in (live, dead):
        p.mkdir()
        (p / "chunk").write_bytes(b"x")
    assert main(convert_args(raw, out)) == 0
    assert live.exists(), "another live writer's partial folder is not ours to delete"
    assert not dead.exists()


def test_second_shard_run_into_the_same_set_refuses(tmp_path):
    store = pinhole_store(tmp_path / "stores", n=4)
    set_dir = tmp_path / "shards" / "pinhole-train"
    ready = tmp_path / "ready"
    # another process holds the set's lock (the documented <set>.lock, flock)
    holder = start_child(f"""
        import fcntl, time
        Path({str(set_dir.parent)!r}).mkdir(parents=True, exist_ok=True)
        fd = os.open({str(set_dir) + ".lock"!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, str(os.getpid()).encode())
        Path({str(ready)!r}).touch()
        time.sleep(120)
    """)
    try:
        wait_for(ready, holder)
        with pytest.raises(HmrError, match=r"pinhole-train\.lock"):
            shard_store(store, tmp_path / "shards", ShardConfig(crop_size=32, samples_per_shard=2),
                        progress=False)
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: the kernel released its lock, the next run proceeds
    set_dir = shard_store(store, tmp_path / "shards", ShardConfig(crop_size=32, samples_per_shard=2),
                          progress=False)
    assert main(["verify", str(set_dir)]) == 0
