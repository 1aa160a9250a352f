"""Decoded stages: shard sample bytes → :class:`CropSample` → batch arrays → tensors.

``decode_sample`` turns one shard sample (``.jpg``, ``.kp.npy``, ``.json``; see
:mod:`loaders.shard`) into a :class:`CropSample`, raising :class:`CorruptSample` for anything
malformed; ``training_arrays`` applies the batch contract to one augmented sample (keypoints
normalised to [-1, 1] over the output crop, confidence 0 outside it, optional convention);
``collate`` stacks them, applying colour noise and the network's input normalisation
(:mod:`hmr.core.crop`, the table evaluation uses too) in one lookup.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from hmr.core.crop import IMAGENET_MEAN, IMAGENET_STD, normalise_into, normalise_lut
from loaders.device_decode import decode_batch, jpeg_header
from loaders.sample import CropSample


class CorruptSample(Exception):
    """A shard sample that cannot be decoded (bad JPEG, bad annotation)."""


_NPY_F4 = re.compile(rb"^\{'descr': '<f4', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \}\s*$")


def read_npy(data: bytes) -> np.ndarray:
    """Decode .npy bytes without pickles; a fast path for our own little-endian float32 arrays
    (np.load parses every header with ast.literal_eval, ~0.1 ms a member)."""
    if data[:6] == b"\x93NUMPY" and data[6] == 1:
        hlen = int.from_bytes(data[8:10], "little")
        m = _NPY_F4.match(data[10:10 + hlen])
        if m is not None:
            shape = tuple(int(v) for v in m.group(1).split(b",") if v.strip())
            return np.frombuffer(data, dtype="<f4", offset=10 + hlen).reshape(shape)
    return np.load(io.BytesIO(data), allow_pickle=False)


def _npy(raw: dict, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in raw:
        raise CorruptSample(f"member .{name} missing")
    arr = read_npy(raw[name])
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise CorruptSample(f".{name} has shape {arr.shape} (want {shape}) or non-finite values")
    return arr


SMPL_SIZES = {"smpl_global_orient": 3, "smpl_body_pose": 69, "smpl_betas": 10, "smpl_transl": 3}


def _vector(meta: dict, name: str, size: int) -> np.ndarray:
    arr = np.asarray(meta[name], dtype=np.float32)
    if arr.shape != (size,) or not np.all(np.isfinite(arr)):
        raise CorruptSample(f"{name} has shape {arr.shape} (want ({size},)) or non-finite values")
    return arr


def decode_sample(raw: dict, num_keypoints: int, decode_image: bool = True) -> CropSample:
    """Raw members of one shard sample → :class:`CropSample` (raises CorruptSample).

    ``decode_image=False`` (device-decode mode): ``image`` stays None and ``jpeg`` keeps the
    crop's bytes, checked by their frame header only (:func:`loaders.device_decode.jpeg_header`)."""
    if "jpg" not in raw or "json" not in raw:
        raise CorruptSample("members .jpg / .json missing")
    jpeg = np.frombuffer(raw["jpg"], np.uint8)
    if decode_image:
        bgr = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        if bgr is None or bgr.ndim != 3 or bgr.shape[0] != bgr.shape[1]:
            raise CorruptSample("JPEG does not decode to a square colour image")
        rgb, jpeg = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None
    else:
        try:
            height, width, channels = jpeg_header(raw["jpg"])
        except ValueError as exc:
            raise CorruptSample(f"bad JPEG ({exc})") from None
        if height != width or height == 0 or channels not in (1, 3):
            raise CorruptSample("JPEG does not decode to a square colour image")
        rgb = None
    try:
        meta = json.loads(raw["json"])
        k = meta["cam_intrinsics"]
        kp = _npy(raw, "kp.npy", (num_keypoints, 7))
        smpl = {name: _vector(meta, name, n) for name, n in SMPL_SIZES.items()}
        sample = CropSample(
            image=rgb, jpeg=jpeg, keypoints2d_px=kp[:, :3], keypoints3d_m=kp[:, 3:],
            box_center_px=np.asarray(meta["box_center_px"], dtype=np.float64),
            box_side_px=float(meta["box_side_px"]),
            crop_to_image=np.asarray(meta["crop_to_image"], dtype=np.float64).reshape(2, 3),
            image_hw=np.asarray(meta["image_hw"], dtype=np.int32).reshape(2),
            cam_intrinsics=np.asarray(k if k is not None else np.zeros((3, 3)), dtype=np.float64).reshape(3, 3),
            has_intrinsics=k is not None, **smpl, has_smpl=bool(meta["has_smpl"]),
            has_smpl_transl=bool(meta["has_smpl_transl"]), gender=int(meta["gender"]),
            key=raw["__key__"], dataset=str(meta["dataset"]),
            meta={"split": meta.get("split", ""), "index": meta.get("index", -1),
                  "source_key": meta.get("source_key", "")})
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: a nesting bomb
        raise CorruptSample(f"bad annotation ({type(exc).__name__}: {exc})") from None
    if sample.box_side_px <= 0 or not np.isfinite(sample.box_side_px):
        raise CorruptSample("bad annotation (box side)")
    return sample


def identity_resize(sample: CropSample, out_size: int, flip_perm: np.ndarray) -> CropSample:
    """The evaluation crop: the person box, no augmentation."""
    return identity_resize_affine(sample, out_size, flip_perm)[0]


def identity_resize_affine(sample: CropSample, out_size: int, flip_perm: np.ndarray
                           ) -> tuple[CropSample, np.ndarray]:
    """:func:`identity_resize` and its pixel map (2, 3), stored crop → output crop."""
    from loaders.augment import geometric_affine, identity_geometry, transform_sample

    affine = geometric_affine(sample, identity_geometry(), out_size)
    return transform_sample(sample, affine, out_size, False, flip_perm), affine


def training_arrays(sample: CropSample, out_size: int, src_convention: str,
                    convention: str | None) -> dict:
    """Final per-sample arrays of the batch contract (image stays uint8 HWC until collate)."""
    kp2 = sample.keypoints2d_px.astype(np.float32).copy()  # (K, 3) px
    inside = ((kp2[:, 0] >= -0.5) & (kp2[:, 0] <= out_size - 0.5)
              & (kp2[:, 1] >= -0.5) & (kp2[:, 1] <= out_size - 0.5))
    kp2[~inside, 2] = 0.0
    kp2[:, :2] = 2.0 * kp2[:, :2] / out_size - 1.0
    kp3 = sample.keypoints3d_m.astype(np.float32)  # (K, 4)
    if convention and convention != src_convention:
        from hmr.core.keypoints import convert_keypoints

        kp2, mask2 = convert_keypoints(kp2, src_convention, convention)
        kp3, mask3 = convert_keypoints(kp3, src_convention, convention)
        kp2[..., 2] *= mask2
        kp3[..., 3] *= mask3
    return {
        "img": sample.image, "keypoints2d": kp2, "keypoints3d": kp3,
        "smpl_global_orient": sample.smpl_global_orient, "smpl_body_pose": sample.smpl_body_pose,
        "smpl_betas": sample.smpl_betas, "has_smpl": sample.has_smpl,
        "smpl_transl": sample.smpl_transl, "has_smpl_transl": sample.has_smpl_transl,
        "cam_intrinsics": sample.cam_intrinsics.astype(np.float32), "has_intrinsics": sample.has_intrinsics,
        "crop_to_image": sample.crop_to_image.astype(np.float32), "image_hw": sample.image_hw,
        "gender": sample.gender, "key": sample.key, "dataset": sample.dataset,
        "aug_rotation": np.asarray(sample.aug_rotation, dtype=np.float32), "aug_flip": bool(sample.aug_flip),
    }


TENSOR_DTYPES = {"keypoints2d": torch.float32, "keypoints3d": torch.float32,
                 "smpl_global_orient": torch.float32, "smpl_body_pose": torch.float32,
                 "smpl_betas": torch.float32, "has_smpl": torch.bool, "smpl_transl": torch.float32,
                 "has_smpl_transl": torch.bool, "cam_intrinsics": torch.float32,
                 "has_intrinsics": torch.bool, "crop_to_image": torch.float32,
                 "image_hw": torch.int32, "gender": torch.int64, "aug_rotation": torch.float32,
                 "aug_flip": torch.bool}


def collate(items: Sequence[dict], channels_last: bool = False, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            normalise: bool = True) -> dict:
    """List of :func:`training_arrays` → the batch dict of tensors.

    Each item's ``img`` is (S, S, 3) uint8 RGB and ``gains`` (3,) its colour-noise gains;
    colour noise and the input normalisation (``mean``, ``std``: the model's
    :class:`hmr.core.crop.InputConfig`) are one table lookup per channel (cv2.LUT) written
    straight into the batch. ``img`` is (B, 3, S, S) float32; with ``channels_last`` it keeps
    NHWC memory (what cuDNN prefers for ResNets under AMP).

    ``normalise=False`` leaves the lookup to the device (:func:`normalise_batch`): ``img`` is
    then (B, 3, S, S) uint8 over NHWC memory (a quarter of the bytes to copy and move) and
    ``img_lut`` (B, 3, 256) float32 holds each sample's table; the float values are the same.

    Items of the device-decode mode (``jpeg`` and ``img_affine`` instead of ``img``) give no
    ``img`` at all but what :mod:`loaders.device_decode` makes it from on the device:
    ``img_jpeg``, ``img_affine``, ``img_lut``, ``img_size_px`` (``normalise`` does not apply).
    """
    if "jpeg" in items[0]:
        batch = _device_decode_inputs(items, mean, std)
    else:
        batch = _image_batch(items, channels_last, mean, std, normalise)
    for name, dtype in TENSOR_DTYPES.items():
        batch[name] = torch.as_tensor(np.stack([np.asarray(it[name]) for it in items]), dtype=dtype)
    batch["key"] = [it["key"] for it in items]
    batch["dataset"] = [it["dataset"] for it in items]
    return batch


def _image_batch(items: Sequence[dict], channels_last: bool, mean, std, normalise: bool) -> dict:
    b, s = len(items), items[0]["img"].shape[0]
    if normalise:
        buf = np.empty((b, s, s, 3) if channels_last else (b, 3, s, s), np.float32)
        for i, it in enumerate(items):
            normalise_into(it["img"], normalise_lut(it["gains"], mean, std), buf[i], channels_last)
        img = torch.from_numpy(buf)
        if channels_last:
            img = img.permute(0, 3, 1, 2)
        batch = {"img": img}
    else:
        pixels = np.empty((b, s, s, 3), np.uint8)
        luts = np.empty((b, 3, 256), np.float32)
        for i, it in enumerate(items):
            pixels[i] = it["img"]
            luts[i] = normalise_lut(it["gains"], mean, std)[:, 0, :].T
        batch = {"img": torch.from_numpy(pixels).permute(0, 3, 1, 2), "img_lut": torch.from_numpy(luts)}
    return batch


def _device_decode_inputs(items: Sequence[dict], mean, std) -> dict:
    """The undecoded image part of a device-decode batch (:mod:`loaders.device_decode`)."""
    luts = np.empty((len(items), 3, 256), np.float32)
    for i, it in enumerate(items):
        luts[i] = normalise_lut(it["gains"], mean, std)[:, 0, :].T
    return {"img_jpeg": [torch.from_numpy(np.array(it["jpeg"], np.uint8)) for it in items],  # copies: writable
            "img_affine": torch.as_tensor(np.stack([it["img_affine"] for it in items]), dtype=torch.float32),
            "img_lut": torch.from_numpy(luts), "img_size_px": int(items[0]["img_size_px"])}


def normalise_batch(batch: dict) -> dict:
    """A batch collated with ``normalise=False`` → the same batch with ``img`` (B, 3, S, S)
    float32, looked up in its ``img_lut`` where the tensors are (the GPU): the very values
    ``collate`` would have written. A device-decode batch (``img_jpeg``) is decoded, warped
    and normalised there (:func:`loaders.device_decode.decode_batch`). Other batches are
    returned as they are."""
    if "img_jpeg" in batch:
        return decode_batch(batch)
    img = batch["img"]
    if img.dtype != torch.uint8:
        return batch
    out = {k: v for k, v in batch.items() if k != "img_lut"}
    b, c, h, w = img.shape
    index = img.reshape(b, c, h * w).long()  # (B, 3, S·S) values 0..255
    out["img"] = torch.gather(batch["img_lut"], 2, index).reshape(b, c, h, w)
    return out
