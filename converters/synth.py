"""Synthetic humans written by ``hmr synth`` (our own raw layout, read like any dataset).

Reads ``annotations/<split>.json`` and ``images/<split>/*.jpg`` under the root (layout and
keys: :mod:`hmr.synth.generate`). Every sample has exact ground truth:

- SMPL parameters (neutral body; ``smpl_source`` = ground-truth) with the translation that
  places the body in the camera frame, ``has_smpl_transl``;
- 3D keypoints: SMPL-24 joints and H36M-17 regressed joints (metres, camera frame);
- 2D keypoints: their projections (SMPL-24 from the file with its in-image flag as
  confidence, H36M-17 projected here with the same camera);
- intrinsics K; no distortion; the box is the tight box of the rendered silhouette.

The annotation file is one JSON document (COCO-like: ``images`` and ``annotations`` arrays
in a top-level object), about 18 kB a sample, so it is streamed rather than loaded whole:
:class:`JsonArrayStream` walks the top-level object with the standard library's decoder and
yields one array element at a time, so a conversion's memory does not grow with the number of
samples. Images are matched to annotations by id through a second stream over ``images``
(the writer lists both in the same order, so only the images read ahead are held); any key
order and whitespace are read, and so is every file written before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.labels import to_superset
from converters.options import ConvertOptions
from converters.readers import require_file
from hmr.core.errors import DatasetFormatError
from hmr.core.geometry import project_points
from hmr.core.sources import SOURCES

SOURCE = SOURCES["synth"]
VERSION = "1"


def raw_files(root: Path, split: str) -> list[Path]:
    ann = root / "annotations" / f"{split}.json"
    return [ann] + sorted((root / "images" / split).glob("*.jpg"))


def _keypoints(ann: dict, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Superset 2D (K, 3) px and 3D (K, 4) m from the SMPL-24 and H36M-17 joints."""
    j24 = np.asarray(ann["joints3d_smpl24"], dtype=np.float64)  # (24, 3)
    j17 = np.asarray(ann["joints3d_h36m17"], dtype=np.float64)  # (17, 3)
    uv24 = np.asarray(ann["joints2d_smpl24"], dtype=np.float64)  # (24, 3) x, y, in-image
    uv17 = project_points(j17, K)
    size = np.array([K[0, 2], K[1, 2]]) * 2 + 1
    in17 = ((uv17 > -0.5) & (uv17 < size - 0.5)).all(axis=1).astype(np.float64)
    # H36M first, SMPL second: where both conventions name the same landmark, SMPL wins.
    kp2d = to_superset(np.c_[uv17, in17], "h36m")
    kp3d = to_superset(np.c_[j17, np.ones(17)], "h36m")
    s2d, s3d = to_superset(uv24, "smpl"), to_superset(np.c_[j24, np.ones(24)], "smpl")
    kp2d = np.where(s2d[:, 2:] > 0, s2d, kp2d)
    kp3d = np.where(s3d[:, 3:] > 0, s3d, kp3d)
    return kp2d, kp3d


_WHITESPACE = " \t\n\r"


class JsonArrayStream:
    """The elements of one array in a JSON file's top-level object, read in 1 MiB chunks.

    ``JsonArrayStream(path, "annotations")`` iterates that array's elements (each decoded by
    ``json``'s own decoder); other top-level values are decoded and dropped; a missing key
    yields nothing. Malformed or truncated JSON raises :class:`DatasetFormatError` naming
    the file and the byte offset."""

    def __init__(self, path: Path, key: str, chunk_chars: int = 1 << 20):
        self.path, self.key, self.chunk = Path(path), key, chunk_chars
        self.decoder = json.JSONDecoder()

    def __iter__(self) -> Iterator:
        require_file(self.path)
        with open(self.path, encoding="utf-8") as fh:
            self.fh, self.buf, self.pos, self.eof, self.offset = fh, "", 0, False, 0
            try:
                yield from self._walk()
            except UnicodeDecodeError as exc:
                raise DatasetFormatError(f"not UTF-8 JSON: {exc}", path=self.path) from None
            except RecursionError:
                raise DatasetFormatError("JSON nested too deeply to read (corrupt or hostile file)",
                                         path=self.path) from None

    def _fail(self, what: str) -> DatasetFormatError:
        return DatasetFormatError(f"invalid or truncated JSON near character {self.offset + self.pos}: {what}",
                                  path=self.path)

    def _fill(self) -> bool:
        more = self.fh.read(self.chunk)
        self.offset += self.pos
        self.buf, self.pos = self.buf[self.pos:] + more, 0
        self.eof = not more
        return bool(more)

    def _peek(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buf) or not self._fill():
                return self.buf[self.pos:self.pos + 1]

    def _expect(self, chars: str) -> str:
        c = self._peek()
        if not c or c not in chars:
            raise self._fail(f"expected one of {chars!r}, found {c or 'the end of the file'!r}")
        self.pos += 1
        return c

    def _value(self):
        self._peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self._fill():
                    continue  # cut by the chunk: read on
                raise self._fail(exc.msg) from None
            if end == len(self.buf) and not self.eof and self._fill():
                continue  # a number may go on in the next chunk
            self.pos = end
            return value

    def _walk(self) -> Iterator:
        self._expect("{")
        if self._peek() == "}":
            return
        while True:
            key = self._value()
            self._expect(":")
            if key == self.key and self._peek() == "[":
                self.pos += 1
                if self._peek() == "]":
                    self.pos += 1
                else:
                    while True:
                        yield self._value()
                        if self._expect(",]") == "]":
                            break
            else:
                self._value()
            if self._expect(",}") == "}":
                return


class _Images:
    """Images by id, read ahead in a second stream only as far as the annotations need."""

    def __init__(self, path: Path):
        self.path = path
        self.stream = iter(JsonArrayStream(path, "images"))
        self.ahead: dict = {}   # read, not used yet
        self.last = None        # the last one used (the next annotation may share it)
        self.used: set = set()  # ids used and let go

    def get(self, image_id):
        if not isinstance(image_id, (int, str)):
            return None
        if self.last is not None and self.last.get("id") == image_id:
            return self.last
        image = self.ahead.pop(image_id, None)
        while image is None:
            image = next(self.stream, None)
            if image is None:
                break
            if not isinstance(image, dict):
                image = None
                continue
            if image.get("id") != image_id:
                self.ahead[image.get("id")] = image
                image = None
        if image is None and image_id in self.used:  # used before, not last: search again
            image = next((im for im in JsonArrayStream(self.path, "images")
                          if isinstance(im, dict) and im.get("id") == image_id), None)
        if image is not None:
            self.last = image
            self.used.add(image_id)
        return image


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    ann_path = root / "annotations" / f"{split}.json"
    images = _Images(ann_path)
    for ann in JsonArrayStream(ann_path, "annotations"):
        if not isinstance(ann, dict):
            yield BadRecord(str(ann_path), None, f"annotation is not an object: {ann!r:.60}")
            continue
        image = images.get(ann.get("image_id"))
        if not isinstance(image, dict):
            yield BadRecord(str(ann_path), ann.get("id"), f"image_id {ann.get('image_id')} not in images")
            continue
        if options.check_images and not (root / image["file_name"]).is_file():
            yield BadRecord(str(ann_path), ann.get("id"), f"image file {image['file_name']} does not exist")
            continue
        try:
            K = np.asarray(image["K"], dtype=np.float64)
            smpl = ann["smpl"]
            kp2d, kp3d = _keypoints(ann, K)
            sample = {
                "image_path": image["file_name"], "image_hw": (image["height"], image["width"]),
                "bbox_xywh": ann["bbox"], "keypoints2d": kp2d, "keypoints3d": kp3d,
                "has_smpl": True, "smpl_source": 1, "smpl_global_orient": smpl["global_orient"],
                "smpl_body_pose": smpl["body_pose"], "smpl_betas": smpl["betas"],
                "has_smpl_transl": True, "smpl_transl": smpl["transl"], "gender": 0,
                "has_intrinsics": True, "cam_intrinsics": K, "frame_index": int(image["id"]),
                "person_id": 0, "source_key": f"annotations/{split}.json:{ann['id']}",
                "extra_pose_rarity": float(ann.get("pose_rarity", 0.0)),
            }
        except (KeyError, TypeError, ValueError) as exc:
            yield BadRecord(str(ann_path), ann.get("id"), f"malformed annotation: {type(exc).__name__}: {exc}")
            continue
        yield sample
