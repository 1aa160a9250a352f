"""TFRecord files without TensorFlow: the record framing and the ``tf.train.Example`` message.

Framing (TensorFlow's ``core/lib/io/record_writer.cc`` and its TFRecord format guide): a file
is a sequence of records, each ::

    uint64 length            little-endian
    uint32 masked_crc(length bytes)
    byte   data[length]      here: one serialised tf.train.Example
    uint32 masked_crc(data)

with ``masked_crc(b) = ((c >> 15) | (c << 17)) + 0xA282EAD8 (mod 2**32)``, ``c`` the CRC-32C
(Castagnoli) of ``b``. Both CRCs of every record are checked (CRC-32C from the
``google-crc32c`` package, C implementation: ~15 ms for a 20 MB record); a mismatch or a file
that ends inside a record raises :class:`~hmr.core.errors.DatasetFormatError` naming the file
and the record index. Uncompressed files only (TensorFlow's default; a GZIP file fails its
first length CRC and the message says so).

The message (TensorFlow's ``core/example/example.proto`` and ``feature.proto``)::

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }      # map entry: key = 1, value = 2
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                             Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }

decoded here from the protobuf wire format (varint, 64-bit, length-delimited and 32-bit wire
types): packed and unpacked repeated values are both accepted, as the protobuf specification
requires of parsers; unknown fields are skipped; negative int64 are two's complement. A
``SequenceExample`` (``context = 1``, ``feature_lists = 2``) is refused by name rather than
read as an Example missing half its data.

Why not the ``tfrecord`` package from PyPI (1.14): its reader reads both CRC fields but never
compares them, and its Example decoder keeps only the first entry of a ``bytes_list`` (the
HMMR files store one JPEG per frame in one ``bytes_list``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np

from hmr.core.errors import DatasetFormatError

MASK_DELTA = 0xA282EAD8
HEADER_BYTES = 12  # uint64 length + uint32 masked CRC of the length
FOOTER_BYTES = 4  # uint32 masked CRC of the data

# Feature kinds: the oneof field numbers of tf.train.Feature.
BYTES_LIST, FLOAT_LIST, INT64_LIST = "bytes_list", "float_list", "int64_list"
_KIND_OF_FIELD = {1: BYTES_LIST, 2: FLOAT_LIST, 3: INT64_LIST}

# Protobuf wire types.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data`` (uint32)."""
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def iter_records(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(record index, data) for every record of a TFRecord file, CRCs checked, one record in
    memory at a time."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError("expected TFRecord file is missing", path=path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        index, offset = 0, 0
        while True:
            header = fh.read(HEADER_BYTES)
            if not header:
                return
            if len(header) < HEADER_BYTES:
                raise DatasetFormatError(f"truncated TFRecord file: it ends inside the header of "
                                         f"record {index} (byte {offset} of {size})", path=path, record=index)
            length_bytes = header[:8]
            if masked_crc32c(length_bytes) != int.from_bytes(header[8:], "little"):
                hint = " (this looks like a GZIP file: decompress it first)" if header[:2] == b"\x1f\x8b" else ""
                raise DatasetFormatError(f"corrupt TFRecord: the length CRC of the record at byte "
                                         f"{offset} does not match{hint}", path=path, record=index)
            (length,) = struct.unpack("<Q", length_bytes)
            if offset + HEADER_BYTES + length + FOOTER_BYTES > size:
                raise DatasetFormatError(f"truncated TFRecord file: record {index} needs "
                                         f"{length + FOOTER_BYTES} bytes after byte {offset + HEADER_BYTES}, "
                                         f"the file has {size - offset - HEADER_BYTES}", path=path, record=index)
            data = fh.read(length)
            footer = fh.read(FOOTER_BYTES)
            if len(data) < length or len(footer) < FOOTER_BYTES:  # the file shrank while read
                raise DatasetFormatError("truncated TFRecord file", path=path, record=index)
            if masked_crc32c(data) != int.from_bytes(footer, "little"):
                raise DatasetFormatError("corrupt TFRecord: the data CRC does not match",
                                         path=path, record=index)
            yield index, data
            index += 1
            offset += HEADER_BYTES + length + FOOTER_BYTES


@dataclass(frozen=True)
class Feature:
    """One ``tf.train.Feature``: ``kind`` is ``bytes_list`` (value: list of bytes),
    ``float_list`` (float32 array), ``int64_list`` (int64 array) or ``""`` (an empty Feature)."""

    kind: str
    value: list[bytes] | np.ndarray

    def __len__(self) -> int:
        return len(self.value)


class _WireError(ValueError):
    """Malformed protobuf bytes (turned into a DatasetFormatError with the file and record)."""


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _WireError("varint runs past the end of its message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireError("varint longer than 10 bytes")


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int | tuple[int, int]]]:
    """(field number, wire type, value) of one message in ``buf[start:end]``: an int for varint
    fields, (start, end) offsets for the other wire types (no copies)."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
            continue
        if wire == _LEN:
            length, pos = _varint(buf, pos, end)
            stop = pos + length
        elif wire in (_I64, _I32):
            stop = pos + (8 if wire == _I64 else 4)
        else:
            raise _WireError(f"unsupported wire type {wire} (field {number})")
        if stop > end:
            raise _WireError(f"field {number} runs past the end of its message")
        yield number, wire, (pos, stop)
        pos = stop


def _packed_varints(raw: np.ndarray) -> np.ndarray:
    """Packed varints (uint8 array) -> int64 array (two's complement), vectorised."""
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    if raw[-1] & 0x80:
        raise _WireError("packed varints end inside a value")
    ends = np.flatnonzero(raw < 0x80)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise _WireError("varint longer than 10 bytes")
    position = np.arange(raw.size) - np.repeat(starts, lengths)  # byte index inside its varint
    parts = (raw & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    return np.add.reduceat(parts, starts).view(np.int64)  # disjoint bits: sum == or


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _list_values(buf: bytes, start: int, end: int, kind: str) -> list:
    """The values of one BytesList / FloatList / Int64List message, as a list of parts."""
    parts: list = []
    for number, wire, value in _fields(buf, start, end):
        if number != 1:
            continue  # unknown field
        if kind == BYTES_LIST:
            if wire != _LEN:
                raise _WireError(f"bytes_list value with wire type {wire}")
            parts.append(buf[value[0]:value[1]])
        elif kind == FLOAT_LIST:
            if wire == _LEN:  # packed
                s, e = value
                if (e - s) % 4:
                    raise _WireError("packed float_list length is not a multiple of 4")
                parts.append(np.frombuffer(buf, dtype="<f4", count=(e - s) // 4, offset=s))
            elif wire == _I32:
                parts.append(np.frombuffer(buf, dtype="<f4", count=1, offset=value[0]))
            else:
                raise _WireError(f"float_list value with wire type {wire}")
        else:
            if wire == _LEN:  # packed
                parts.append(_packed_varints(np.frombuffer(buf, dtype=np.uint8, count=value[1] - value[0],
                                                           offset=value[0])))
            elif wire == _VARINT:
                parts.append(np.array([_signed64(value)], dtype=np.int64))
            else:
                raise _WireError(f"int64_list value with wire type {wire}")
    return parts


def _feature(buf: bytes, start: int, end: int) -> Feature:
    kind, parts = "", []
    for number, wire, value in _fields(buf, start, end):
        if number not in _KIND_OF_FIELD or wire != _LEN:
            continue  # unknown field
        new_kind = _KIND_OF_FIELD[number]
        if new_kind != kind:  # oneof: the last kind set wins; the same kind twice merges
            kind, parts = new_kind, []
        parts += _list_values(buf, *value, new_kind)
    if kind == BYTES_LIST:
        return Feature(kind, parts)
    if kind == FLOAT_LIST:
        return Feature(kind, np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32))
    if kind == INT64_LIST:
        return Feature(kind, np.concatenate(parts) if parts else np.zeros(0, np.int64))
    return Feature("", [])


def _features_into(out: dict[str, Feature], buf: bytes, start: int, end: int) -> None:
    for number, wire, value in _fields(buf, start, end):
        if number != 1 or wire != _LEN:
            continue
        key, feature = "", Feature("", [])
        for entry_number, entry_wire, entry_value in _fields(buf, *value):
            if entry_wire != _LEN:
                continue
            if entry_number == 1:
                try:
                    key = buf[entry_value[0]:entry_value[1]].decode("utf-8")
                except UnicodeDecodeError:
                    raise _WireError("feature name is not UTF-8") from None
            elif entry_number == 2:
                feature = _feature(buf, *entry_value)
        out[key] = feature  # map semantics: the last entry of a key wins


def parse_example(data: bytes, *, path: object | None = None, record: object | None = None
                  ) -> dict[str, Feature]:
    """The features of one serialised ``tf.train.Example``, by name."""
    buf = bytes(data)
    features: dict[str, Feature] = {}
    try:
        for number, wire, value in _fields(buf, 0, len(buf)):
            if number == 1 and wire == _LEN:
                _features_into(features, buf, *value)
            elif number == 2 and wire == _LEN:
                raise DatasetFormatError("record is a tf.train.SequenceExample (it has feature_lists), "
                                         "not a tf.train.Example", path=path, record=record)
    except _WireError as exc:
        raise DatasetFormatError(f"malformed tf.train.Example: {exc}", path=path, record=record) from None
    return features


def iter_examples(path: str | Path) -> Iterator[tuple[int, dict[str, Feature]]]:
    """(record index, features) for every Example of a TFRecord file."""
    for index, data in iter_records(path):
        yield index, parse_example(data, path=path, record=index)
