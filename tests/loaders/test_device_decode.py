"""Device-decode mode (``decode_on = "device"``, loaders.device_decode) against the CPU path.

The labels must be bit-identical to the CPU path's (same draws, same label math); the images
may differ only by interpolation arithmetic (cv2's fixed-point bilinear warp against
grid_sample's float one; on CUDA also nvJPEG against libjpeg-turbo). The shards here hold
textured crops (smooth noise, sharp-edged boxes, a gradient): the pinhole scenes' black
background with a few dots would hide most warp differences.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from hmr.core.crop import invert
from hmr.core.errors import ConfigError
from loaders.augment import AugmentConfig
from loaders.batch import CorruptSample, decode_sample, normalise_batch
from loaders.device_decode import decode_batch, jpeg_header, warp_bilinear
from loaders.occlusion import OcclusionConfig
from loaders.shard import ShardConfig, load_shard_set, shard_store
from loaders.stream import EpochLoader, ShardStream, StreamConfig
from tests.fixtures.loaders import pinhole_store

OUT = 48
#: tolerances of the device images against the CPU path's, in normalised units (1 uint8 level
#: ≈ 0.017 at ImageNet's std, up to 1.4× that with channel noise); measured on the CPU: mean
#: ≤ 0.00007, max 2 levels = 0.035 (docs/loaders.md)
MEAN_TOL, MAX_TOL = 0.002, 0.1
VARIANTS = {
    "no augmentation": dict(train=False),
    "augmented": dict(train=True, augment=AugmentConfig(translate_frac=0.1, random_crop_prob=0.5)),
    "flip and rotation always": dict(train=True, augment=AugmentConfig(flip_prob=1.0, rotation_prob=1.0)),
    "channels_last, other convention": dict(train=True, channels_last=True, convention="smpl_49"),
}


def textured(size: tuple[int, int], seed: int) -> np.ndarray:
    """(H, W, 3) uint8 BGR: smooth colour noise, a gradient and sharp-edged boxes."""
    rng = np.random.default_rng(seed)
    h, w = size
    noise = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 3.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min() + 1e-6)
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    img = (160 * noise + 80 * ramp).astype(np.uint8)
    for _ in range(12):
        x0, y0 = rng.integers(0, w - 4), rng.integers(0, h - 4)
        x1, y1 = x0 + rng.integers(3, w // 3), y0 + rng.integers(3, h // 3)
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
    return img


@pytest.fixture(scope="module")
def shard_sets(tmp_path_factory) -> list:
    out = tmp_path_factory.mktemp("device-decode")
    for name, n, seed in (("tex-a", 20, 21), ("tex-b", 12, 22)):
        store = pinhole_store(out, n=n, seed=seed, dataset=name)
        for i, png in enumerate(sorted((out / f"images-{name}").glob("*.png"))):
            cv2.imwrite(str(png), textured(cv2.imread(str(png)).shape[:2], 100 * seed + i))
        shard_store(store, out / "shards", ShardConfig(samples_per_shard=5, crop_size=64), progress=False)
    return [(load_shard_set(out / "shards" / "tex-a-train"), 2.0), (load_shard_set(out / "shards" / "tex-b-train"), 1.0)]


def stream(sources, batches: int = 3, **kw) -> list[dict]:
    cfg = StreamConfig(out_size=OUT, batch_size=8, shuffle_buffer=6, seed=5, **kw)
    return list(EpochLoader(ShardStream(sources, cfg), batches))


def decoded(batches: list[dict], device: str = "cpu") -> list[dict]:
    """Each batch moved to ``device`` and decoded there (as the trainer's move_batch does), back on the CPU."""
    out = []
    for b in batches:
        moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in b.items()}
        out.append({k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in normalise_batch(moved).items()})
    return out


def image_differences(cpu: list[dict], device: list[dict]) -> tuple[float, float]:
    """(mean, max) absolute difference of ``img`` over the batches; every label must be equal."""
    diffs = []
    for i, (c, d) in enumerate(zip(cpu, device, strict=True)):
        assert c.keys() == d.keys(), sorted(set(c) ^ set(d))
        for name, value in c.items():
            if name == "img":
                continue
            same = torch.equal(value, d[name]) if isinstance(value, torch.Tensor) else value == d[name]
            assert same, f"batch {i}: {name} differs from the CPU path's"
        assert d["img"].dtype == torch.float32 and d["img"].shape == c["img"].shape
        diffs.append((c["img"] - d["img"]).abs())
    diff = torch.stack(diffs)
    return float(diff.mean()), float(diff.max())


@pytest.mark.parametrize("variant", VARIANTS)
def test_device_mode_gives_the_cpu_labels_and_images_within_tolerance(shard_sets, variant):
    kw = VARIANTS[variant]
    cpu = stream(shard_sets, **kw)
    raw = stream(shard_sets, decode_on="device", **kw)
    assert "img" not in raw[0] and len(raw[0]["img_jpeg"]) == 8 and raw[0]["img_affine"].shape == (8, 2, 3)
    mean, worst = image_differences(cpu, decoded(raw))
    assert mean < MEAN_TOL and worst < MAX_TOL, f"{variant}: mean {mean:.5f}, max {worst:.4f}"
    if variant.startswith("flip"):  # the draws this variant is for did happen
        flips = torch.cat([b["aug_flip"] for b in cpu])
        rotated = torch.cat([b["aug_rotation"] for b in cpu])[:, 0, 0] < 0.9999
        assert bool(flips.all()) and int(rotated.sum()) >= 20
    if kw.get("channels_last"):
        assert decode_batch(raw[0], channels_last=True)["img"].is_contiguous(memory_format=torch.channels_last)


def test_a_wrong_pixel_convention_would_be_caught(shard_sets, monkeypatch):
    """The tolerance is tight enough to see a half-pixel slip (align_corners=True)."""
    import loaders.device_decode as dd

    real = dd.F.grid_sample
    monkeypatch.setattr(dd.F, "grid_sample", lambda *a, **kw: real(*a, **{**kw, "align_corners": True}))
    kw = VARIANTS["no augmentation"]
    mean, _ = image_differences(stream(shard_sets, **kw), decoded(stream(shard_sets, decode_on="device", **kw)))
    assert mean > MEAN_TOL


def test_device_mode_with_the_sample_cache_gives_the_same_batches(shard_sets):
    kw = {"decode_on": "device", "train": True, "resampled": False}
    plain = decoded(stream(shard_sets, batches=None, **kw))
    cfg = StreamConfig(out_size=OUT, batch_size=8, shuffle_buffer=6, seed=5, cache_mb=64, **kw)
    ds = ShardStream(shard_sets, cfg)
    loader = EpochLoader(ds, None)
    first = decoded(list(loader))
    again = decoded(list(loader))  # the second pass reads the cached JPEG bytes
    assert ds.cache.hits > 0 and ds.cache.nbytes > 32 * 1000  # the cached items hold the JPEGs
    for a, b, c in zip(plain, first, again, strict=True):
        assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in a if isinstance(a[k], torch.Tensor))


@pytest.mark.parametrize("name, matrix", [
    ("one pixel right", [[1, 0, 1], [0, 1, 0]]),
    ("one pixel up and two left", [[1, 0, -2], [0, 1, -1]]),
    ("90 degrees about a pixel centre", [[0, -1, 16], [1, 0, 2]]),
    ("mirror", [[-1, 0, 19], [0, 1, 0]]),
])
def test_integer_maps_match_cv2_exactly(name, matrix):
    """Maps that land on pixel centres: no interpolation, so grid_sample must give cv2's
    pixels exactly, black border included (a half-pixel convention slip would blur them)."""
    img = np.random.default_rng(3).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    m = np.asarray(matrix, dtype=np.float64)
    want = cv2.warpAffine(img, m, (20, 20), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    src = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    got = warp_bilinear(src, torch.from_numpy(invert(m))[None].float(), 20)[0].permute(1, 2, 0)
    np.testing.assert_array_equal(got.round().to(torch.uint8).numpy(), want)
    assert (want == 0).any() and (want != 0).mean() > 0.3  # the border and the pattern are both in view


@pytest.mark.parametrize("matrix", [[[1, 0, 0.5], [0, 1, 0.25]], [[1.7, 0.4, -3.1], [-0.4, 1.7, 2.2]]])
def test_subpixel_maps_match_cv2_up_to_its_fixed_point_rounding(matrix):
    """cv2 quantises coordinates to 1/32 px and weights to 1/1024: one level off at most on a smooth pattern."""
    img = cv2.GaussianBlur(np.random.default_rng(4).integers(0, 256, (31, 31, 3), dtype=np.uint8), (0, 0), 1.5)
    m = np.asarray(matrix, dtype=np.float64)
    want = cv2.warpAffine(img, m, (24, 24), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    src = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    got = warp_bilinear(src, torch.from_numpy(invert(m))[None].float(), 24)[0].permute(1, 2, 0).round()
    diff = np.abs(got.numpy() - want.astype(np.float32))
    assert diff.max() <= 1 and diff.mean() < 0.2


def test_jpeg_header_and_corrupt_crops():
    img = textured((40, 40), 1)
    data = cv2.imencode(".jpg", img)[1].tobytes()
    assert jpeg_header(data) == (40, 40, 3)
    assert jpeg_header(cv2.imencode(".jpg", img[:, :30, 0])[1].tobytes()) == (40, 30, 1)
    for bad in (b"", b"\x89PNG\r\n", data[:20]):
        with pytest.raises(ValueError):
            jpeg_header(bad)
    raw = {"__key__": "k", "jpg": cv2.imencode(".jpg", img[:, :30])[1].tobytes(), "json": b"{}"}
    with pytest.raises(CorruptSample, match="square"):
        decode_sample(raw, 1, decode_image=False)
    with pytest.raises(CorruptSample, match="bad JPEG"):
        decode_sample({**raw, "jpg": data[:20]}, 1, decode_image=False)


def test_device_mode_refuses_occlusion(shard_sets):
    cfg = StreamConfig(out_size=OUT, decode_on="device", occlusion=OcclusionConfig(coarse_dropout=0.5))
    with pytest.raises(ConfigError, match="coarse_dropout"):
        ShardStream(shard_sets, cfg)
    with pytest.raises(ConfigError, match="decode_on"):
        ShardStream(shard_sets, StreamConfig(decode_on="gpu"))
    ShardStream(shard_sets, StreamConfig(decode_on="device", train=False, occlusion=cfg.occlusion))  # no augmentation


def test_training_config_checks_decode_on():
    from hmr.training.config import load_config

    base = ['data.source="shards"', 'data.shards=["x"]']
    assert load_config("tiny_cpu", [*base, 'data.decode_on="device"']).data.decode_on == "device"
    with pytest.raises(ConfigError, match="data.decode_on"):
        load_config("tiny_cpu", [*base, 'data.decode_on="gpu"'])
    with pytest.raises(ConfigError, match="hard_erasing"):
        load_config("tiny_cpu", [*base, 'data.decode_on="device"', "data.occlusion={hard_erasing = 0.5}"])
    with pytest.raises(ConfigError, match="random"):
        load_config("tiny_cpu", ['data.source="random"', 'data.decode_on="device"'])


def test_training_in_device_mode_follows_the_cpu_path(shard_sets, tmp_path):
    """A few trainer steps with decode_on = "device" (CPU) run, and their loss is the CPU
    path's to within the small image difference (3 s)."""
    from hmr.training.launch import train

    set_dir = shard_sets[0][0].root
    runs = {}
    for mode in ("cpu", "device"):
        overrides = ['model.backbone="test_resnet"', "model.hidden=32", f"model.img_size={OUT}", "train.total_steps=3",
                     "train.batch_size=4", "train.log_every=1", "train.checkpoint_every=100", 'train.device="cpu"',
                     'train.precision="fp32"', 'data.source="shards"', f'data.shards=["{set_dir}"]',
                     "data.num_workers=0", "data.shuffle_buffer=4", f'data.decode_on="{mode}"']
        runs[mode] = train("tiny_cpu", overrides, out=tmp_path / mode, progress=False)
    assert runs["device"]["images_per_s"] > 0
    # measured: 3e-7 apart; a half-pixel slip of the warp (align_corners=True) moves it 4e-5
    assert runs["device"]["loss"] == pytest.approx(runs["cpu"]["loss"], rel=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", ["no augmentation", "augmented"])
def test_cuda_decode_matches_the_cpu_decode(shard_sets, variant):
    """nvJPEG + grid_sample on CUDA against the same batches decoded on the CPU (torchvision's
    libjpeg-turbo): the labels are the same tensors, the images differ by the decoders' IDCT
    and chroma upsampling only."""
    raw = stream(shard_sets, decode_on="device", **VARIANTS[variant])
    mean, worst = image_differences(decoded(raw, "cpu"), decoded(raw, "cuda"))
    print(f"{variant}: CUDA vs CPU decode, mean {mean:.5f}, max {worst:.4f} (normalised units)")
    assert mean < MEAN_TOL and worst < 3 * MAX_TOL
