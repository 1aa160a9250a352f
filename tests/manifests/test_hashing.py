"""hash_many: small files hashed in batches, large ones streamed, every digest as hashlib's."""

from __future__ import annotations

import hashlib
import os

import pytest

from manifests import hashing
from manifests.hashing import HashJob, hash_many, hash_small_file


def digests(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()}


@pytest.mark.parametrize("workers", [1, 3])
def test_batched_small_and_streamed_large_files_give_hashlib_digests(tmp_path, monkeypatch, workers):
    monkeypatch.setattr(hashing, "SMALL_FILE_BYTES", 4096)
    monkeypatch.setattr(hashing, "BATCH_FILES", 7)
    monkeypatch.setattr(hashing, "BUFFER_BYTES", 1000)  # several reads per large file
    rng = __import__("random").Random(0)
    contents = {f"f{i:03d}": os.urandom(rng.choice([0, 1, 100, 4096, 4097, 20_000])) for i in range(40)}
    jobs = []
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
        jobs.append(HashJob(name, tmp_path / name, ("sha256", "md5"), len(data)))
    jobs.append(HashJob("missing", tmp_path / "missing", ("sha256",), 10))
    run = hash_many(jobs, workers=workers, progress=False)
    assert set(run.results) == {*contents, "missing"}
    for name, data in contents.items():
        r = run.results[name]
        assert (r.size, r.digests, r.error) == (len(data), digests(data), None), name
    assert "FileNotFoundError" in run.results["missing"].error
    assert run.bytes_hashed == sum(map(len, contents.values()))


def test_a_small_file_that_grew_is_hashed_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "SMALL_FILE_BYTES", 100)
    monkeypatch.setattr(hashing, "BUFFER_BYTES", 64)
    data = os.urandom(1000)
    (tmp_path / "f").write_bytes(data)
    assert hash_small_file(tmp_path / "f", ("sha256", "md5")) == (1000, digests(data))
    run = hash_many([HashJob("f", tmp_path / "f", ("sha256",), 50)], progress=False)  # stale size hint
    assert run.results["f"].digests["sha256"] == hashlib.sha256(data).hexdigest()


def test_small_files_share_tasks(monkeypatch, tmp_path):
    monkeypatch.setattr(hashing, "BATCH_FILES", 10)
    jobs = [HashJob(str(i), tmp_path / str(i), ("sha256",), 5000) for i in range(95)]
    jobs.append(HashJob("big", tmp_path / "big", ("sha256",), 2 * hashing.SMALL_FILE_BYTES))
    batches = hashing._batches(jobs)
    assert [len(b) for b in batches] == [1] + [10] * 9 + [5]
    assert batches[0][0].key == "big"


def test_store_walk_lists_what_store_files_lists(tmp_path):
    from manifests.output import _store_sizes, store_files

    store = tmp_path / "s.zarr"
    for rel in ["zarr.json", "kp/c/0/0", "kp/c/1/0", "img/zarr.json", "deep/a/b/c/d"]:
        (store / rel).parent.mkdir(parents=True, exist_ok=True)
        (store / rel).write_text(rel * 3)
    (store / "linked").symlink_to(store / "kp")  # a symlinked folder: listed by neither
    (store / "linked_file").symlink_to(store / "zarr.json")
    sized = _store_sizes(store)
    assert {k: p for k, (p, _) in sized.items()} == store_files(store) and list(sized) == list(store_files(store))
    assert all(size == len(rel) * 3 or rel == "linked_file" for rel, (_, size) in sized.items())
    single = tmp_path / "one.npz"
    single.write_bytes(b"12345")
    assert _store_sizes(single) == {"one.npz": (single, 5)}
