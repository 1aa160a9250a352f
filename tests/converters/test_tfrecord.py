"""The TFRecord reader (converters.tfrecord) against independent encoders: TFRecord framing
assembled by hand with a pure-Python CRC-32C, Examples serialised by the protobuf package."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from converters.tfrecord import (
    FLOAT_LIST,
    INT64_LIST,
    iter_examples,
    iter_records,
    masked_crc32c,
    parse_example,
)
from hmr.core.errors import DatasetFormatError
from tests.fixtures.tfrecord import (
    crc32c,
    example_bytes,
    frame_record,
    masked,
    write_tfrecord,
)


def test_crc32c_check_value_and_mask():
    # the CRC-32C check value of the Castagnoli polynomial (RFC 3720, B.4 and the usual
    # "123456789" test): both our reader's C-backed CRC and the fixture's table agree with it
    assert crc32c(b"123456789") == 0xE3069283
    expected = ((0xE3069283 >> 15) | (0xE3069283 << 17)) + 0xA282EAD8 & 0xFFFFFFFF
    assert masked_crc32c(b"123456789") == masked(crc32c(b"123456789")) == expected
    assert crc32c(b"") == 0


def test_hand_assembled_record_is_read(tmp_path):
    data = b"\x0a\x00"  # an Example whose Features message is empty
    length = struct.pack("<Q", len(data))
    raw = (length + struct.pack("<I", masked(crc32c(length))) + data
           + struct.pack("<I", masked(crc32c(data))))
    path = tmp_path / "one.tfrecord"
    path.write_bytes(raw + raw)
    assert list(iter_records(path)) == [(0, data), (1, data)]
    assert [feats for _, feats in iter_examples(path)] == [{}, {}]


@pytest.mark.parametrize("packed", [True, False])
def test_protobuf_encoded_example_decodes(packed):
    jpegs = [b"\xff\xd8frame0", b"", b"\xff\xd8frame2"]
    data = example_bytes({
        "image/encoded": ("bytes", jpegs),
        "image/xys": ("float", [0.5, -1.0, 3.25e-3, 1e30]),
        "meta/N": ("int64", [3]),
        "image/crop_pts": ("int64", [-20, 0, 2**40, -(2**63), 2**63 - 1]),
        "empty/floats": ("float", []),
    }, packed=packed)
    feats = parse_example(data)
    assert feats["image/encoded"].value == jpegs  # every entry, not only the first
    assert feats["image/xys"].kind == FLOAT_LIST
    np.testing.assert_array_equal(feats["image/xys"].value, np.float32([0.5, -1.0, 3.25e-3, 1e30]))
    assert feats["meta/N"].kind == INT64_LIST and feats["meta/N"].value.tolist() == [3]
    assert feats["image/crop_pts"].value.tolist() == [-20, 0, 2**40, -(2**63), 2**63 - 1]
    assert len(feats["empty/floats"]) == 0


def test_sequence_example_is_refused_by_name():
    # SequenceExample: context (1) = empty Features, feature_lists (2) = one entry
    data = b"\x0a\x00" + b"\x12\x05\x0a\x03\x0a\x01k"
    with pytest.raises(DatasetFormatError, match="SequenceExample"):
        parse_example(data)


def test_malformed_example_names_file_and_record(tmp_path):
    good = example_bytes({"a": ("int64", [1])})
    path = write_tfrecord(tmp_path / "bad.tfrecord", [good, good[:-1]])  # framing fine, protobuf cut
    seen = []
    with pytest.raises(DatasetFormatError, match="malformed") as err:
        for index, feats in iter_examples(path):
            seen.append(index)
    assert seen == [0] and err.value.record == 1 and err.value.path.endswith("bad.tfrecord")


def _three_records(tmp_path):
    records = [example_bytes({"i": ("int64", [i]), "pad": ("bytes", [bytes(50)])}) for i in range(3)]
    path = write_tfrecord(tmp_path / "x.tfrecord", records)
    return path, path.read_bytes(), len(frame_record(records[0]))


def test_bad_data_crc_names_the_record(tmp_path):
    path, raw, size = _three_records(tmp_path)
    corrupt = bytearray(raw)
    corrupt[size + 12 + 5] ^= 0x01  # one bit of record 1's data
    path.write_bytes(bytes(corrupt))
    indices = []
    with pytest.raises(DatasetFormatError, match="data CRC") as err:
        for index, _ in iter_records(path):
            indices.append(index)
    assert indices == [0] and err.value.record == 1 and err.value.path == str(path)


def test_bad_length_crc_and_gzip_hint(tmp_path):
    path, raw, size = _three_records(tmp_path)
    corrupt = bytearray(raw)
    corrupt[2 * size] ^= 0x01  # record 2's length
    path.write_bytes(bytes(corrupt))
    with pytest.raises(DatasetFormatError, match="length CRC") as err:
        list(iter_records(path))
    assert err.value.record == 2
    gz = tmp_path / "x.tfrecord.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00" + bytes(20))
    with pytest.raises(DatasetFormatError, match="GZIP"):
        list(iter_records(gz))


@pytest.mark.parametrize("cut", [5, 12 + 10, -2])
def test_truncated_file(tmp_path, cut):
    path, raw, size = _three_records(tmp_path)
    end = 2 * size + cut if cut > 0 else len(raw) + cut
    path.write_bytes(raw[:end])
    with pytest.raises(DatasetFormatError, match="truncated") as err:
        list(iter_records(path))
    assert err.value.record == 2


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DatasetFormatError, match="missing"):
        list(iter_records(tmp_path / "none.tfrecord"))
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    assert list(iter_records(tmp_path / "empty.tfrecord")) == []
