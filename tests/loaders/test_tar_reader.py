"""The lean tar reader of loaders.stream gives exactly what webdataset's reader gives."""

from __future__ import annotations

import io
import tarfile

import pytest
from webdataset.tariterators import group_by_keys, tar_file_iterator

from loaders import stream
from loaders.stream import LoaderStats, group_members, iter_shard, read_tar_members


def webdataset_samples(path):
    with open(path, "rb") as fh:
        return list(group_by_keys({**m, "__url__": str(path)} for m in tar_file_iterator(fh)))


def lean_samples(path):
    with open(path, "rb") as fh:
        return list(group_members(read_tar_members(fh), str(path)))


def write_tar(path, members, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(path, "w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


MEMBERS = [
    ("a_000000001.jpg", b"\xff\xd8jpeg bytes"), ("a_000000001.json", b'{"x": 1}'),
    ("a_000000001.kp.npy", bytes(range(256)) * 3),  # several blocks, not a multiple of 512
    ("folder", None), ("__meta__", b"skipped"), ("a_000000002.JPG", b""),  # empty, upper-case extension
    ("deep/" * 30 + "b_7.json", b"{}"),  # a name longer than 100 bytes: a POSIX or GNU long-name header
    ("naïve_3.json", "é".encode()),  # non-ASCII: a POSIX path record
    ("noext", b"dropped by the key split"), ("c_9.json", b"[1]"),
]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT], ids=["pax", "gnu", "ustar"])
def test_same_samples_as_webdataset(tmp_path, fmt):
    members = MEMBERS if fmt != tarfile.USTAR_FORMAT else [m for m in MEMBERS if "ï" not in m[0] and len(m[0]) < 100]
    path = tmp_path / "s.tar"
    write_tar(path, members, fmt)
    ours, theirs = lean_samples(path), webdataset_samples(path)
    assert ours == theirs
    assert len(ours) >= 3 and ours[0]["kp.npy"] == bytes(range(256)) * 3 and ours[1]["jpg"] == b""


def test_the_shards_of_a_set_read_the_same(tmp_path):
    from loaders.shard import ShardConfig, shard_store
    from tests.fixtures.loaders import pinhole_store

    store = pinhole_store(tmp_path, n=6, seed=3)
    root = shard_store(store, tmp_path / "shards", ShardConfig(samples_per_shard=4, crop_size=48), progress=False)
    tars = sorted(root.glob("shard-*.tar"))
    assert len(tars) == 2
    for path in tars:
        ours = lean_samples(path)
        assert ours == webdataset_samples(path) and {"jpg", "json", "kp.npy"} <= set(ours[0])


def test_cut_shards_are_reported(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(stream, "STATS", LoaderStats())
    path = tmp_path / "s.tar"
    write_tar(path, [(f"k_{i}.json", b"x" * 700) for i in range(4)])
    data = path.read_bytes()
    # 1,536 bytes a member: cut inside the third one's data, at the third one's header, empty
    for cut, got in ((2 * 1536 + 600, 1), (2 * 1536, 2), (0, 0)):
        part = tmp_path / f"cut{cut}.tar"
        part.write_bytes(data[:cut])
        assert len(list(iter_shard(str(part), 4))) == got
    assert stream.STATS.bad_shards == 3
    assert "truncated or unreadable" in caplog.text and "its index says 4" in caplog.text


def test_a_bad_checksum_is_not_read_as_data(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "STATS", LoaderStats())
    path = tmp_path / "s.tar"
    write_tar(path, [("k_1.json", b"{}"), ("k_2.json", b"{}")])
    data = bytearray(path.read_bytes())
    data[1024 + 10] ^= 0x55  # second member's header
    path.write_bytes(bytes(data))
    assert [s["__key__"] for s in iter_shard(str(path), 2)] == ["k_1"]
    assert stream.STATS.bad_shards == 1


def test_a_compressed_tar_goes_to_the_general_reader(tmp_path):
    path = tmp_path / "s.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("k_1.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with open(path, "rb") as fh:
        assert read_tar_members(fh) is None
    assert [s["json"] for s in iter_shard(str(path), 1)] == [b"{}"]


def test_hostile_headers_end_in_an_error_not_a_hang(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "STATS", LoaderStats())
    path = tmp_path / "s.tar"
    write_tar(path, [("x" * 120 + "_1.json", b"{}"), ("k_2.json", b"{}")])  # a PAX header first
    data = bytearray(path.read_bytes())
    start = data.index(b" path=")
    data[start - 3:start] = b"000"  # a record of length 0 (a naive reader loops forever)
    header = bytearray(data[:512])  # keep the checksum right so the header is read
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    data[:512] = header
    path.write_bytes(bytes(data))
    assert list(iter_shard(str(path), 2)) == []
    assert stream.STATS.bad_shards == 1
