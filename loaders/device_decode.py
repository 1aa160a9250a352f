"""Device-decode mode: the crop's JPEG is decoded and warped on the training device.

With ``StreamConfig.decode_on = "device"`` (training config ``data.decode_on``) the loader
does every label transform as in the CPU path but leaves the pixels alone: each batch
carries, instead of ``img``,

- ``img_jpeg``: list of B (N_i,) uint8 tensors, the stored crops' JPEG bytes (stay on the CPU:
  ``torchvision.io.decode_jpeg`` reads them from there, nvJPEG on CUDA);
- ``img_affine``: (B, 2, 3) float32, output-crop pixel → stored-crop pixel (the inverse of the
  warp the CPU path gives ``cv2.warpAffine``, the flip folded in);
- ``img_lut``: (B, 3, 256) float32, each sample's colour-noise + normalisation table, the one
  ``normalise_on_device`` batches carry (:func:`loaders.batch.normalise_batch`);
- ``img_size_px``: the output side S (an int).

:func:`decode_batch` turns that into the float32 (B, 3, S, S) ``img`` where ``img_affine``
lives: decode (RGB), bilinear warp with ``grid_sample`` (pixel centres at integers and black
outside the crop, cv2's ``BORDER_CONSTANT`` 0), round to uint8 levels, then the table lookup:
colour noise and mean/std exactly as the CPU path applies them. The remaining difference from
the CPU path is cv2's fixed-point bilinear interpolation (coordinates in 1/32 px, weights in
1/1024) against grid_sample's float one, and on CUDA nvJPEG's decoder against libjpeg-turbo's;
``tests/loaders/test_device_decode.py`` bounds it and docs/loaders.md gives the figures.

Only torch and torchvision here: the loader side of the mode (labels, :func:`jpeg_header`)
stays in :mod:`loaders.stream` / :mod:`loaders.batch`.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

__all__ = ["DECODE_MODES", "TRANSPORT_KEYS", "decode_batch", "grid_from_affine", "jpeg_header", "warp_bilinear"]

#: where a crop's JPEG is decoded and warped: in the loader (cv2) or on the training device
DECODE_MODES = ("cpu", "device")
#: the batch keys that carry the undecoded image; :func:`decode_batch` replaces them by ``img``
TRANSPORT_KEYS = ("img_jpeg", "img_affine", "img_lut", "img_size_px")

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: markers without a length


def jpeg_header(data: bytes) -> tuple[int, int, int]:
    """``(height, width, components)`` from a JPEG's frame header (SOFn), without decoding it.

    The loader's check of a crop in device-decode mode (the CPU path's is cv2 decoding it):
    raises ValueError for bytes that are not a JPEG or end before the frame header. A crop
    whose header is sound but whose entropy-coded data is broken is found only by the device's
    decoder, which then fails the batch (docs/loaders.md)."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ValueError(f"bad JPEG marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _SOF:
            if pos + 10 > n:
                break
            height = int.from_bytes(data[pos + 5:pos + 7], "big")
            width = int.from_bytes(data[pos + 7:pos + 9], "big")
            return height, width, data[pos + 9]
        if marker in (0xD9, 0xDA) or length < 2:  # EOI / start of scan before any frame header
            break
        pos += 2 + length
    raise ValueError("JPEG ends before its frame header")


def grid_from_affine(out_to_src_px: torch.Tensor, out_px: int, src_hw: tuple[int, int]) -> torch.Tensor:
    """``grid_sample`` grid (B, S, S, 2) for a pixel map ``out_to_src_px`` (B, 2, 3).

    Pixel centres sit at integers in both frames (cv2's convention); ``grid_sample`` with
    ``align_corners=False`` puts pixel i's centre at ``(2i + 1) / size - 1``. So the grid is
    ``N_src · A · N_out⁻¹`` applied by ``affine_grid`` to the output's normalised centres, with
    ``N(x) = (2x + 1) / size - 1`` per axis. Computed in float64, returned in float32."""
    b = out_to_src_px.shape[0]
    h, w = src_hw
    a = torch.zeros(b, 3, 3, dtype=torch.float64, device=out_to_src_px.device)
    a[:, :2] = out_to_src_px.to(torch.float64)
    a[:, 2, 2] = 1.0
    n_src = a.new_tensor([[2.0 / w, 0.0, 1.0 / w - 1.0], [0.0, 2.0 / h, 1.0 / h - 1.0], [0.0, 0.0, 1.0]])
    s = float(out_px)
    n_out_inv = a.new_tensor([[s / 2.0, 0.0, s / 2.0 - 0.5], [0.0, s / 2.0, s / 2.0 - 0.5], [0.0, 0.0, 1.0]])
    theta = (n_src @ a @ n_out_inv)[:, :2]  # (B, 2, 3), normalised output → normalised source
    return F.affine_grid(theta.to(torch.float32), [b, 1, out_px, out_px], align_corners=False)


def warp_bilinear(images: torch.Tensor, out_to_src_px: torch.Tensor, out_px: int) -> torch.Tensor:
    """(B, C, H, W) float → (B, C, S, S) float: ``cv2.warpAffine(..., INTER_LINEAR,
    BORDER_CONSTANT, borderValue=0)`` of each image by the inverse of ``out_to_src_px``."""
    grid = grid_from_affine(out_to_src_px, out_px, (images.shape[2], images.shape[3]))
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def decode_jpegs(jpegs: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """JPEG bytes (list of (N_i,) uint8 CPU tensors) → (B, 3, H, W) float32 RGB on ``device``,
    images smaller than the largest padded with black at the bottom and right (where the warp
    reads black anyway: ``warp_bilinear``'s grid is normalised by the padded size)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its image codecs in favour of TorchCodec (not a dependency
        # here); decode_jpeg works as documented meanwhile, and one warning per batch is noise
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
        images = decode_jpeg(jpegs, mode=ImageReadMode.RGB, device=device)  # list of (3, H_i, W_i) uint8
    h = max(int(im.shape[1]) for im in images)
    w = max(int(im.shape[2]) for im in images)
    if all(im.shape[1] == h and im.shape[2] == w for im in images):
        return torch.stack(images).to(torch.float32)
    out = torch.zeros(len(images), 3, h, w, dtype=torch.float32, device=device)
    for i, im in enumerate(images):
        out[i, :, :im.shape[1], :im.shape[2]] = im
    return out


def decode_batch(batch: dict, channels_last: bool = False) -> dict:
    """A device-decode batch (see the module docstring) → the same batch with ``img``
    (B, 3, S, S) float32 on ``img_affine``'s device, normalised with ``img_lut``; the
    ``img_*`` transport keys removed. ``channels_last``: NHWC memory (same shape)."""
    affine, lut, out_px = batch["img_affine"], batch["img_lut"], int(batch["img_size_px"])
    src = decode_jpegs(list(batch["img_jpeg"]), affine.device)  # (B, 3, H, W)
    warped = warp_bilinear(src, affine, out_px)  # (B, 3, S, S) float
    # cv2 rounds the warped value to a uint8 level; the colour-noise table is indexed by levels
    levels = warped.round_().clamp_(0, 255).to(torch.int64)
    b = levels.shape[0]
    img = torch.gather(lut, 2, levels.reshape(b, 3, out_px * out_px)).reshape(b, 3, out_px, out_px)
    if channels_last:
        img = img.contiguous(memory_format=torch.channels_last)
    out = {k: v for k, v in batch.items() if k not in TRANSPORT_KEYS}
    out["img"] = img
    return out
