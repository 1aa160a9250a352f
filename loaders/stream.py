"""Shards → mixed, augmented, batched training input (a torch ``IterableDataset``).

Stages, each a generator over the previous one (webdataset style)::

    shard urls (per component, split over rank × worker, or resampled)
      → tar members grouped by key (read_tar_members: webdataset's grouping, a lean reader)
      → shuffle buffer (filled completely before the first yield)
      → mix of components by ratio                              raw bytes
      → decode (JPEG, npy with allow_pickle=False, JSON)        CropSample
      → geometric augmentation (one warp) → occlusion-style → channel noise
      → labels for training (normalised keypoints, conventions) → batch of tensors
        (img float32, or uint8 + per-sample tables for the device to normalise, or with
        ``decode_on = "device"`` the JPEG bytes + pixel maps: loaders.device_decode)

Seeding: every random choice comes from a generator seeded by ``(seed, epoch, rank,
worker, …)`` — shard order, shuffle buffer, mix draws, and a per-sample generator keyed
by the sample's position in the stream — so a run is reproducible and resumable
(``resume_batches``) without webdataset's pid/time-seeded resampling.

Splitting: shards are split over ``rank × worker`` by us (no webdataset nodesplitter). In
finite mode (``resampled=False``) every shard is read exactly once per epoch by exactly one
(rank, worker), so no sample is seen twice within the rank set; that needs at least one
shard per rank × worker. In resampled mode each (rank, worker) draws shards with its own
seed, forever; the epoch length is set on the loader, in batches (:class:`EpochLoader`).

Corrupt samples (bad JPEG, bad annotation) are skipped, counted in :data:`STATS` and
logged with the shard and key; a truncated or short shard is logged, never silently
shortened.
"""

from __future__ import annotations

import bisect
import functools
import logging
import os
import re
import tarfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from hmr.core.crop import IMAGENET_MEAN, IMAGENET_STD, invert
from hmr.core.errors import ConfigError, HmrError
from loaders.augment import AugmentConfig, SmplRootModel, channel_gains, geometric_augment_map
from loaders.cache import CACHED, MISSING, SampleCache
from loaders.batch import CorruptSample, collate, decode_sample, identity_resize_affine, training_arrays
from loaders.device_decode import DECODE_MODES
from loaders.occlusion import OccluderBank, OcclusionConfig, apply_occlusions
from loaders.shard import ShardSet, is_remote

log = logging.getLogger("hmr.loaders")


def _secure_webdataset() -> None:
    """Our shards hold no pickles; make webdataset refuse them anyway (WDS_SECURE)."""
    os.environ.setdefault("WDS_SECURE", "1")
    import webdataset.utils

    webdataset.utils.enforce_security = True


@dataclass
class LoaderStats:
    """Per-process counters (each DataLoader worker has its own copy)."""

    samples: int = 0
    corrupt: int = 0
    bad_shards: int = 0
    corrupt_keys: list[str] = field(default_factory=list)


STATS = LoaderStats()


@dataclass
class StreamConfig:
    out_size: int = 224
    batch_size: int = 64
    shuffle_buffer: int = 1000
    resampled: bool = True
    seed: int = 0
    train: bool = True                   # False: no augmentation (evaluation / debugging)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    occlusion: OcclusionConfig = field(default_factory=OcclusionConfig)
    convention: str | None = None        # output keypoint convention (None: the shards')
    drop_last: bool = True
    channels_last: bool = False          # img in NHWC memory layout (same shape), saves a copy
    #: img stays uint8 with a per-sample lookup table (``img_lut``) for the device to normalise
    #: (loaders.batch.normalise_batch; the trainer's move_batch does it): the same float values
    normalise_on_device: bool = False
    #: input normalisation of ``img``: the model's (hmr.core.crop.InputConfig mean / std)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    max_corrupt_fraction: float = 0.5    # fail when more than this share of ≥ 1000 samples is bad
    #: keep up to this many MiB of decoded samples in memory and read shards held whole from
    #: there (loaders.cache; pays where the loading runs in one long-lived process)
    cache_mb: int = 0
    #: "device": leave each crop's JPEG undecoded, with the pixel map of its augmentation, for
    #: the training device to decode, warp and normalise (loaders.device_decode); labels as "cpu"
    decode_on: str = "cpu"


# --------------------------------------------------------------------------------------
# Raw stages
# --------------------------------------------------------------------------------------
#: a remote shard whose reading fails is opened again this many times (the samples already
#: yielded are skipped) before it counts as bad; waits RETRY_WAIT_S × attempt in between
SHARD_RETRIES = 3
RETRY_WAIT_S = 0.5
_LOCAL_ERRORS = (tarfile.TarError, OSError, EOFError, ValueError)
#: ``pipe:CMD`` shard URLs are run only when this environment variable is 1
PIPE_SHARDS_ENV = "HMR_PIPE_SHARDS"


class _FullReads:
    """A streamed file object whose ``read(n)`` returns n bytes unless the stream ends
    (network streams return what has arrived), reading the stream in chunks of ``CHUNK``
    bytes (each read of fsspec's HTTP stream is a round trip to its event-loop thread, so
    the tar reader's many small reads go to this buffer instead); not seekable."""

    CHUNK = 1 << 20

    def __init__(self, raw):
        self.raw, self.buf, self.pos = raw, bytearray(), 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            out = bytes(self.buf[self.pos:]) + self.raw.read()
            self.buf, self.pos = bytearray(), 0
            return out
        while len(self.buf) - self.pos < n:
            part = self.raw.read(max(self.CHUNK, n - (len(self.buf) - self.pos)))
            if not part:
                break
            del self.buf[:self.pos]
            self.pos = 0
            self.buf += part
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += len(out)
        return out

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_shard(url: str):
    """A binary file object reading the shard at ``url`` as a stream (nothing saved to disk):
    a local path; ``pipe:CMD`` (the command's stdout, through webdataset's Pipe); any URL fsspec
    knows (``http(s)://`` streamed, ``s3://`` / ``gs://`` read in blocks, credentials from the
    storage library's usual environment)."""
    if not is_remote(url):
        return open(url, "rb")
    if url.startswith("pipe:"):
        # webdataset refuses pipe: URLs in the secure mode we run it in (a command is code):
        # the user opts in for the process, and we start it with webdataset's Pipe as gopen does
        if os.environ.get(PIPE_SHARDS_ENV) != "1":
            raise HmrError(f"pipe: shards run a shell command: set {PIPE_SHARDS_ENV}=1 to allow them",
                           path=url)
        from webdataset.gopen import Pipe

        return _FullReads(Pipe(url[len("pipe:"):], mode="rb", shell=True, bufsize=8192,
                               ignore_status=[141]))
    import fsspec

    kw = {"block_size": 0} if url.startswith(("http://", "https://")) else {}  # 0: a plain stream
    return _FullReads(fsspec.open(url, "rb", **kw).open())


def iter_shard(url: str, expected: int | None = None) -> Iterator[dict]:
    """Samples (dicts of raw bytes, ``__key__``, ``__url__``) of one tar; logs truncation.
    A remote shard is retried (SHARD_RETRIES) from where its reading failed."""
    count, attempt, remote = 0, 0, is_remote(url)
    while True:
        try:
            with ExitStack() as stack:
                fh = stack.enter_context(open_shard(url))
                members = read_tar_members(fh)
                if members is None:  # not a plain tar (compressed?): webdataset's reader copes
                    from webdataset.tariterators import tar_file_iterator

                    if remote:
                        fh = stack.enter_context(open_shard(url))
                    else:
                        fh.seek(0)
                    members = ((m["fname"], m["data"]) for m in tar_file_iterator(fh))
                done = 0
                for sample in group_members(members, url):
                    done += 1
                    if done > count:  # after a retry: skip what was yielded before
                        count += 1
                        yield sample
            break
        except HmrError:
            raise
        except Exception as exc:  # noqa: BLE001 - storage libraries raise their own classes
            if not remote and not isinstance(exc, _LOCAL_ERRORS):
                raise
            if remote and attempt < SHARD_RETRIES:
                attempt += 1
                log.warning("shard %s: reading failed after %d samples (%s: %s); retry %d of %d",
                            url, count, type(exc).__name__, exc, attempt, SHARD_RETRIES)
                time.sleep(RETRY_WAIT_S * attempt)
                continue
            STATS.bad_shards += 1
            log.warning("shard %s is truncated or unreadable after %d samples (%s: %s)",
                        url, count, type(exc).__name__, exc)
            return
    if expected is not None and count != expected:
        STATS.bad_shards += 1
        log.warning("shard %s holds %d samples, its index says %d (truncated?)", url, count, expected)


_BLOCK = 512
_META = re.compile(r"__[^/]*__($|/)")           # webdataset's metadata members, skipped
_KEY_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")  # webdataset's key / extension split


def _tar_number(field: bytes) -> int:
    """A numeric header field: octal text, or base-256 when the first byte has its top bit."""
    if field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] == 0xFF else value
    text = field.split(b"\0", 1)[0].strip(b" ")
    return int(text, 8) if text else 0


def _tar_header(block: bytes, first: bool) -> tuple[str, int, bytes] | None:
    """(name, size, type) of a 512-byte header block; None at the end of the archive.

    Checked as tarfile checks it: the header checksum (unsigned or signed sum). A bad header
    first in the file raises tarfile.ReadError; later, like tarfile's stream mode, it ends the
    archive (the caller's sample count then tells the shard was cut)."""
    if len(block) < _BLOCK or block == bytes(_BLOCK):
        if first and not block:
            raise tarfile.ReadError("empty file")
        return None
    try:
        stored = _tar_number(block[148:156])
    except ValueError:
        stored = -1
    if stored != sum(block) - sum(block[148:156]) + 256 and stored != _signed_checksum(block):
        if first:
            raise tarfile.ReadError("bad checksum")
        return None
    name = block[0:100].split(b"\0", 1)[0]
    if block[257:262] == b"ustar":
        prefix = block[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode("utf-8", "surrogateescape"), _tar_number(block[124:136]), block[156:157]


def _signed_checksum(block: bytes) -> int:
    return sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 256


def read_tar_members(fh) -> Iterator[tuple[str, bytes]] | None:
    """(name, data) of the regular files of an uncompressed tar, in order; None when the
    file does not start with a tar header (then a general reader must take it).

    A lean replacement for ``tarfile`` in stream mode (what webdataset uses), which spends
    most of a small member's time in generic header parsing: this reads ustar / GNU headers,
    POSIX ``path`` / ``size`` extended records and GNU long names, and skips what is not a
    regular file and webdataset's ``__meta__`` members, as webdataset does. Data cut short
    raises tarfile.ReadError."""
    block = fh.read(_BLOCK)
    if block and block != bytes(_BLOCK):
        try:
            if len(block) < _BLOCK or _tar_header(block, True) is None:
                return None
        except (tarfile.ReadError, ValueError):
            return None
    return _tar_members(fh, block)


def _tar_members(fh, block: bytes) -> Iterator[tuple[str, bytes]]:
    first, pending = True, {}
    while True:
        header = _tar_header(block, first)
        if header is None:
            return
        first = False
        name, size, kind = header
        size = int(pending.get("size", size))
        if size < 0:
            raise tarfile.ReadError(f"negative size in the header of member {name!r}")
        data = fh.read(size)
        if len(data) < size:
            raise tarfile.ReadError(f"unexpected end of data in member {name!r}")
        pad = -size % _BLOCK
        if pad:
            fh.read(pad)
        if kind in (b"x", b"L"):  # describes the next member
            if kind == b"L":
                pending["path"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            else:
                pending.update(_pax_records(data))
        else:
            name = pending.get("path", name)
            pending = {}
            if kind in (b"0", b"\0", b"7") and not _META.match(name):
                yield name, data
        block = fh.read(_BLOCK)


def _pax_records(data: bytes) -> dict[str, str]:
    """``path`` and ``size`` of a POSIX extended header (records ``<len> key=value\\n``)."""
    out, pos = {}, 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        if length <= space - pos:
            raise tarfile.ReadError(f"bad extended header record at byte {pos}")
        key, _, value = data[space + 1:pos + length - 1].partition(b"=")
        if key in (b"path", b"size"):
            out[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def group_members(members: Iterator[tuple[str, bytes]], url: str) -> Iterator[dict]:
    """Consecutive members with the same key → one sample dict, as webdataset groups them
    (key and extension split at the first dot of the file name, extension lower-cased; a
    duplicate extension within a sample is an error)."""
    sample: dict | None = None
    for name, data in members:
        m = _KEY_EXT.match(name)
        if m is None:
            continue
        key, ext = m.group(1), m.group(2).lower()
        if sample is None or key != sample["__key__"]:
            if sample is not None:
                yield sample
            sample = {"__key__": key, "__url__": url}
        if ext in sample:
            raise ValueError(f"{name}: duplicate file name in tar file {url}")
        sample[ext] = data
    if sample is not None:
        yield sample


def shuffle_buffer(samples: Iterator[dict], size: int, rng: np.random.Generator) -> Iterator[dict]:
    """Uniform shuffle through a buffer of ``size``, filled completely before yielding."""
    if size <= 1:
        yield from samples
        return
    buf: list[dict] = []
    for s in samples:
        if len(buf) < size:
            buf.append(s)
            continue
        j = int(rng.integers(size))
        buf[j], s = s, buf[j]
        yield s
    order = rng.permutation(len(buf))
    for j in order:
        yield buf[j]


@dataclass(frozen=True)
class Placement:
    rank: int
    world_size: int
    worker: int
    num_workers: int

    @property
    def index(self) -> int:
        return self.rank * self.num_workers + self.worker

    @property
    def total(self) -> int:
        return self.world_size * self.num_workers


def placement(rank: int | None, world_size: int | None) -> Placement:
    """This process's (rank, worker) place: explicit > torch.distributed > env > single."""
    if rank is None or world_size is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        else:
            rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    info = get_worker_info()
    worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return Placement(int(rank), int(world_size), worker, num_workers)


def component_samples(sset: ShardSet, comp: int, cfg: StreamConfig, epoch: int,
                      where: Placement, cache: SampleCache | None = None) -> Iterator[dict]:
    """Raw shuffled samples of one shard set for this (rank, worker)."""
    counts = {sset.url(s["name"]): int(s["num_samples"]) for s in sset.shards}
    urls = list(counts)
    if not urls:
        raise HmrError("shard set has no shards", path=sset.root)
    if cfg.resampled:
        rng = np.random.default_rng([cfg.seed, epoch, comp, where.index, 1])
        weights = np.array([max(1, counts[u]) for u in urls], dtype=np.float64)

        def shards() -> Iterator[str]:
            while True:
                yield urls[int(rng.choice(len(urls), p=weights / weights.sum()))]
    else:
        if len(urls) < where.total:
            raise HmrError(f"{len(urls)} shards cannot feed {where.world_size} ranks × {where.num_workers} "
                           "workers: reshard with fewer samples per shard, use fewer workers, or "
                           "stream with resampled=True", path=sset.root)
        order = np.random.default_rng([cfg.seed, epoch, comp, 0]).permutation(len(urls))
        mine = [urls[j] for j in order[where.index::where.total]]
        rng = np.random.default_rng([cfg.seed, epoch, comp, where.index, 1])

        def shards() -> Iterator[str]:
            yield from mine
    return shuffle_buffer(_read_shards(shards(), counts, sset, cache), cfg.shuffle_buffer, rng)


def _read_shards(urls: Iterator[str], counts: dict[str, int], sset: ShardSet,
                 cache: SampleCache | None = None) -> Iterator[dict]:
    """Samples of the given shards in turn; fails instead of spinning when none yields anything."""
    barren = 0
    for url in urls:
        got = False
        samples = (cache.read(url, counts[url], lambda u: iter_shard(u, counts[u])) if cache is not None
                   else iter_shard(url, counts[url]))
        for sample in samples:
            got = True
            yield sample
        barren = 0 if got else barren + 1
        if barren > 2 * len(counts) + 2:
            raise HmrError(f"{barren} shards in a row gave no sample: the shard set is unreadable "
                           "(see the warnings above)", path=sset.root)


def mix_samples(streams: Sequence[Iterator[dict]], ratios: Sequence[float],
                rng: np.random.Generator) -> Iterator[tuple[int, dict]]:
    """(component, sample) drawn by ratio; stops when a component runs out (finite mode)."""
    p = np.asarray(ratios, dtype=np.float64)
    p = p / p.sum()
    rng.choice(len(p), p=p, size=0)  # numpy's own checks of the ratios, once
    # rng.choice(n, p=p) draws one rng.random() and finds it in p's normalised cumulative sum
    # (numpy's Generator.choice); done here with that same sum, without re-checking p per sample.
    cdf = p.cumsum()
    cdf = (cdf / cdf[-1]).tolist()
    its = [iter(s) for s in streams]
    while True:
        c = bisect.bisect_right(cdf, rng.random()) if len(its) > 1 else 0
        try:
            yield c, next(its[c])
        except StopIteration:
            return


# --------------------------------------------------------------------------------------
# The dataset and its loader
# --------------------------------------------------------------------------------------
class ShardStream(IterableDataset):
    """Batches from one or several shard sets mixed by ratio.

    ``sources``: ``[(ShardSet, ratio), ...]``. ``rank`` / ``world_size`` default to
    torch.distributed (or the RANK / WORLD_SIZE environment). Call :meth:`set_epoch` before
    each epoch; ``resume_batches`` skips the batches an interrupted epoch already used.
    """

    def __init__(self, sources: Sequence[tuple[ShardSet, float]], cfg: StreamConfig | None = None, *,
                 rank: int | None = None, world_size: int | None = None,
                 smpl_root: SmplRootModel | None = None):
        if not sources:
            raise HmrError("no shard sets to stream from")
        self.sources = list(sources)
        self.cfg = cfg or StreamConfig()
        self.rank, self.world_size = rank, world_size
        self.smpl_root = smpl_root
        self.epoch = 0
        self.resume_batches = 0
        conventions = {s.keypoint_convention for s, _ in self.sources}
        sizes = {s.num_keypoints for s, _ in self.sources}
        if len(conventions) != 1 or len(sizes) != 1:
            raise HmrError(f"shard sets mix keypoint conventions {sorted(conventions)}: reshard them "
                           "from stores in one convention")
        self.src_convention = conventions.pop()
        self.num_keypoints = sizes.pop()
        self.cache = SampleCache(self.cfg.cache_mb * 2**20) if self.cfg.cache_mb > 0 else None
        self._check_decode_mode()

    def _check_decode_mode(self) -> None:
        mode = self.cfg.decode_on
        if mode not in DECODE_MODES:
            raise ConfigError(f"decode_on = {mode!r}: choose one of {', '.join(map(repr, DECODE_MODES))}")
        if mode == "device" and self.cfg.train and self.cfg.occlusion.enabled():
            # they change decoded pixels with their own random draws, in the loader
            raise ConfigError(f"decode_on = 'device' cannot apply the occlusion-style augmentations "
                              f"{self.cfg.occlusion.enabled()}: switch them off or decode on the CPU")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[dict]:
        _secure_webdataset()
        where = self._resumed_place(placement(self.rank, self.world_size))
        cfg = self.cfg
        streams = [component_samples(s, c, cfg, self.epoch, where, self.cache)
                   for c, (s, _) in enumerate(self.sources)]
        mixed = mix_samples(streams, [r for _, r in self.sources],
                            np.random.default_rng([cfg.seed, self.epoch, where.index, 2]))
        skip = self._skip_samples(where)
        processed = (self._process(raw, n, where) for n, (_, raw) in enumerate(mixed) if n >= skip)
        batch: list[dict] = []
        for item in processed:
            if item is None:
                continue
            batch.append(item)
            if len(batch) == cfg.batch_size:
                yield collate(batch, cfg.channels_last, cfg.mean, cfg.std, not cfg.normalise_on_device)
                batch = []
        if batch and not cfg.drop_last:
            yield collate(batch, cfg.channels_last, cfg.mean, cfg.std, not cfg.normalise_on_device)

    def _resumed_place(self, where: Placement) -> Placement:
        """The worker part this DataLoader worker plays. The DataLoader asks its workers for
        batches round-robin from worker 0, but after ``resume_batches`` = k the next batch of
        the uninterrupted epoch is worker k mod n's: DataLoader worker i plays worker
        (i + k) mod n, so the batches come in the uninterrupted order."""
        if where.num_workers <= 1 or not self.resume_batches:
            return where
        worker = (where.worker + self.resume_batches) % where.num_workers
        return Placement(where.rank, where.world_size, worker, where.num_workers)

    def _skip_samples(self, where: Placement) -> int:
        """Raw samples this worker already turned into batches before ``resume_batches``.

        DataLoader takes batches from workers round-robin, so worker w made the batches
        j < resume_batches with j % num_workers == w. Exact unless skipped samples were corrupt.
        """
        k, w, n = self.resume_batches, where.worker, where.num_workers
        mine = max(0, (k - w + n - 1) // n)
        return mine * self.cfg.batch_size

    def _process(self, raw: dict, n: int, where: Placement) -> dict | None:
        from hmr.core.keypoints import flip_permutation

        cfg = self.cfg
        if not hasattr(self, "_flip_perm"):
            self._flip_perm = np.asarray(flip_permutation(self.src_convention), dtype=np.int64)
            self._bank = None
            if cfg.occlusion.occluder_images:
                self._bank = OccluderBank.from_images(cfg.occlusion.occluder_images,
                                                      np.random.default_rng([cfg.seed, 3]))
        rng = np.random.default_rng([cfg.seed, self.epoch, where.index, 4, n])
        cache = self.cache
        item = MISSING
        if cache is not None:  # decoded (train) or finished (no augmentation) in an earlier epoch
            item = cache.get(raw) if raw.get(CACHED) else cache.lookup(raw)
        if item is not MISSING:
            if item is None:  # a corrupt sample, counted when it was first read
                return None
            STATS.samples += 1
            if not cfg.train:
                return dict(item)
            sample = item
        else:
            try:
                sample = (decode_sample(raw, self.num_keypoints) if cfg.decode_on == "cpu"
                          else decode_sample(raw, self.num_keypoints, decode_image=False))
            except CorruptSample as exc:
                self._count_corrupt(raw, exc)
                if cache is not None:
                    cache.put(raw, None)
                return None
            STATS.samples += 1
            if cache is not None and cfg.train:
                cache.put(raw, sample)
        # Device-decode mode (loaders.device_decode): the same draws from ``rng`` in the same
        # order, the same labels; the crop stays a JPEG with the inverse of its pixel map
        # (occlusion-style augmentations are refused there).
        on_device = cfg.decode_on == "device"
        if cfg.train:
            sample, pixels = geometric_augment_map(sample, cfg.augment, rng, cfg.out_size, self._flip_perm,
                                                   self.smpl_root)
            if not on_device:
                image = apply_occlusions(sample.image, cfg.occlusion, rng, keypoints2d_px=sample.keypoints2d_px,
                                         box_center_px=sample.box_center_px, box_side_px=sample.box_side_px,
                                         bank=self._bank)
                sample = sample.replace(image=image)
            gains = channel_gains(cfg.augment.channel_noise, rng)
        else:
            sample, pixels = identity_resize_affine(sample, cfg.out_size, self._flip_perm)
            gains = np.ones(3)
        arrays = training_arrays(sample, cfg.out_size, self.src_convention, cfg.convention)
        arrays["gains"] = gains  # colour noise, applied with the normalisation in collate
        if on_device:
            del arrays["img"]
            arrays.update(jpeg=sample.jpeg, img_affine=invert(pixels), img_size_px=cfg.out_size)
        if cache is not None and not cfg.train:
            cache.put(raw, dict(arrays))
        return arrays

    def _count_corrupt(self, raw: dict, exc: Exception) -> None:
        STATS.corrupt += 1
        key = f"{raw.get('__url__', '?')}:{raw.get('__key__', '?')}"
        if len(STATS.corrupt_keys) < 1000:
            STATS.corrupt_keys.append(key)
        log.warning("skipping corrupt sample %s (%s)", key, exc)
        seen = STATS.corrupt + STATS.samples
        if seen >= 1000 and STATS.corrupt > self.cfg.max_corrupt_fraction * seen:
            raise HmrError(f"{STATS.corrupt} of {seen} samples are corrupt: the shards are broken",
                           path=raw.get("__url__"))


class EpochLoader:
    """A DataLoader over a :class:`ShardStream` whose epoch is ``batches_per_epoch`` batches.

    The epoch length lives here, in batches, after batching — not on the dataset, where
    webdataset's ``with_epoch`` would count per worker. ``None`` runs until the stream ends
    (finite mode).
    """

    def __init__(self, dataset: ShardStream, batches_per_epoch: int | None = None, *,
                 num_workers: int = 0, pin_memory: bool = False, prefetch_factor: int | None = None,
                 multiprocessing_context: str | None = None):
        self.dataset = dataset
        self.batches_per_epoch = batches_per_epoch
        self.kwargs = {"num_workers": num_workers, "pin_memory": pin_memory}
        if num_workers > 0:
            self.kwargs["prefetch_factor"] = prefetch_factor or 2
            if multiprocessing_context:
                self.kwargs["multiprocessing_context"] = multiprocessing_context

    def set_epoch(self, epoch: int, resume_batches: int = 0) -> None:
        self.dataset.set_epoch(epoch)
        self.dataset.resume_batches = int(resume_batches)

    def __len__(self) -> int:
        if self.batches_per_epoch is None:
            raise TypeError("finite-mode loader has no fixed length")
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[dict]:
        closing = _closing_flag() if self.kwargs["num_workers"] > 0 else None
        init = functools.partial(_worker_signals, closing) if closing is not None else None
        loader = DataLoader(self.dataset, batch_size=None, worker_init_fn=init, **self.kwargs)
        remaining = None
        if self.batches_per_epoch is not None:
            remaining = self.batches_per_epoch - self.dataset.resume_batches
        try:
            yield from islice(loader, remaining)
        finally:
            if closing is not None:
                closing.value = 1
                _LIVE_CLOSING_FLAGS.remove(closing)
        self.dataset.resume_batches = 0


#: the "this iteration is ending" flags of the EpochLoader iterations alive in this process
_LIVE_CLOSING_FLAGS: list = []


def _closing_flag():
    """A flag shared with one iteration's DataLoader workers (created before they start):
    set when the iteration ends, and at interpreter exit, so that a worker then takes the
    SIGTERM its DataLoader or multiprocessing sends it (see :func:`_worker_signals`)."""
    import atexit
    import multiprocessing

    if not hasattr(_closing_flag, "registered"):
        # registered after multiprocessing's own exit hook, so it runs first (atexit is LIFO)
        atexit.register(lambda: [setattr(flag, "value", 1) for flag in _LIVE_CLOSING_FLAGS])
        _closing_flag.registered = True
    flag = multiprocessing.RawValue("b", 0)
    _LIVE_CLOSING_FLAGS.append(flag)
    return flag


def _worker_signals(closing, worker_id: int) -> None:
    """A DataLoader worker ignores SIGTERM while its iteration runs: Slurm's preemption and
    torchrun's shutdown signal whole process groups, and a worker killed by it would crash the
    trainer it feeds before that trainer checkpoints (hmr.training.trainer stops on SIGTERM).
    Once the iteration ends (``closing``), SIGTERM ends the worker as usual: the DataLoader's
    own shutdown and multiprocessing's at exit rely on it."""
    import signal

    def on_sigterm(signum, frame) -> None:
        if closing.value:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def batches_per_epoch(num_samples: int, batch_size: int, world_size: int = 1) -> int:
    """Nominal epoch length per rank: every sample once, on average, across the rank set."""
    return max(1, num_samples // (batch_size * world_size))


def finite_batches_per_epoch(shard_samples: Sequence[int], batch_size: int, world_size: int = 1,
                             num_workers: int = 0) -> int:
    """Batches that every rank makes in every finite-mode epoch of one shard set.

    Each of the ``world_size × workers`` places reads every ``places``-th shard of the epoch's
    permutation, so it gets at least ``len // places`` shards — at worst the smallest ones —
    and makes ``samples // batch_size`` batches of them (drop_last). Ending every rank's epoch
    there keeps the ranks stepping together (DDP), the DataLoader's round-robin over workers
    intact (exact resume), and reads no sample twice; every sample is read when the shards
    split evenly (equal shards, their count a multiple of the places, a worker's samples a
    multiple of the batch)."""
    workers = max(1, num_workers)
    places = world_size * workers
    if len(shard_samples) < places:
        raise HmrError(f"{len(shard_samples)} shards cannot feed {world_size} ranks × {workers} workers: "
                       "reshard with fewer samples per shard or use fewer workers")
    fewest = sum(sorted(int(n) for n in shard_samples)[:len(shard_samples) // places])
    if fewest < batch_size:
        raise HmrError(f"a worker may get only {fewest} samples per epoch, fewer than a batch of {batch_size}")
    return workers * (fewest // batch_size)
