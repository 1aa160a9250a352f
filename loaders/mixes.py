"""Dataset mixes: shard sets combined by sampling ratio.

The 11 presets are the mixes of Pang et al., "Benchmarking 3D Pose and Shape Estimation
Beyond Algorithms" (NeurIPS 2022). Components and ratios are read from the benchmark's
published configs, ``configs/mixed/resnet50_hmr_mix{1..11}.py`` of
github.com/smplbody/hmr-benchmarks (commit 6d782f06), field ``partition`` of the
``MixedDataset``; ``ann_file`` names the annotation each component uses (``eft_coco_train.npz``
= COCO with EFT pseudo-ground-truth SMPL, ``spin_mpi_inf_3dhp_train.npz`` = MPI-INF-3DHP with
SPIN's fits, ``muco3dhp_no3dkp_train.npz`` = MuCo-3DHP without 3D keypoints). Three more presets,
``graphcmr``, ``pare`` and ``graphormer``, are the mixes of the benchmark's rows for those
algorithms, taken from each algorithm's public code (sources and choices next to them).

A component names a shard set by its ``name`` (the folder ``hmr shard`` writes, by default
``<source>-<split>``, the source named as in :mod:`hmr.core.sources`). ``ANN_FILE_TO_SOURCE``
maps the benchmark's annotation files to a source and split (``hmr convert eft_coco --split
train`` → ``eft_coco-train``, ``hmr convert spin_fits --split mpi-inf-3dhp`` →
``spin_fits-mpi-inf-3dhp``); sources without a converter yet are named the same way. Shard
sets made before the naming rule (``eft-coco-train``) are found too, and the benchmark's own
HumanData files imported with ``hmr convert humandata --split <file stem>``
(``humandata-h36m_mosh_train``). ``aliases`` (``--alias`` on the CLI) maps any other name.

User mixes use the same form, in TOML or JSON::

    name = "my-mix"
    description = "H36M + EFT-COCO"
    [[components]]
    set = "h36m-train"
    ratio = 0.6
    [[components]]
    set = "eft_coco-train"
    ratio = 0.4
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from hmr.core.errors import ConfigError, HmrError
from hmr.core.sources import shard_set_name, shard_set_spellings
from loaders.shard import INDEX_NAME, ShardSet, is_remote, load_shard_set

BENCHMARK_SOURCE = ("github.com/smplbody/hmr-benchmarks @ 6d782f06, configs/mixed/"
                    "resnet50_hmr_mix{N}.py, MixedDataset.partition")

# The benchmark's ann_file → (source, split) in our names.
ANN_FILE_TO_SOURCE = {
    "h36m_mosh_train.npz": ("h36m", "train"),
    "mpi_inf_3dhp_train.npz": ("mpi_inf_3dhp", "train"),
    "spin_mpi_inf_3dhp_train.npz": ("spin_fits", "mpi-inf-3dhp"),
    "coco_2014_train.npz": ("coco2014", "train"),
    "eft_coco_train.npz": ("eft_coco", "train"),
    "eft_mpii_train.npz": ("eft_mpii", "train"),
    "eft_lspet_train.npz": ("eft_lspet", "train"),
    "eft_posetrack_train.npz": ("eft_posetrack", "train"),
    "eft_ochuman_train.npz": ("eft_ochuman", "train"),
    "mpii_train.npz": ("mpii", "train"),
    "lsp_train.npz": ("lsp", "train"),
    "lspet_train.npz": ("lspet", "train"),
    "muco3dhp_no3dkp_train.npz": ("muco3dhp", "train"),
    "prox_train.npz": ("prox", "train"),
    "crowdpose_train.npz": ("crowdpose", "train"),
    "mtp_train.npz": ("mtp", "train"),
    "up3d_trainval.npz": ("up3d", "trainval"),
}
# The benchmark's ann_file → our shard-set name (``eft_coco-train``).
ANN_FILE_TO_SET = {f: shard_set_name(*source_split) for f, source_split in ANN_FILE_TO_SOURCE.items()}


@dataclass(frozen=True)
class MixComponent:
    set: str          # shard-set name
    ratio: float
    ann_file: str = ""  # the benchmark's annotation file, for presets

    def preferred(self) -> list[str]:
        """The names to ask for: ours, then the HumanData import of the benchmark's file."""
        names = [self.set]
        if self.ann_file:
            names.append(f"humandata-{Path(self.ann_file).stem}")
        return names

    def candidates(self) -> list[str]:
        """Accepted shard-set names: :meth:`preferred`, then ours in older spellings
        (``eft-coco-train``, sharded before the naming rule)."""
        names = self.preferred()
        return names + [n for n in shard_set_spellings(self.set) if n not in names]


@dataclass(frozen=True)
class Mix:
    name: str
    components: tuple[MixComponent, ...]
    description: str = ""
    source: str = ""

    def ratios(self) -> list[float]:
        total = sum(c.ratio for c in self.components)
        return [c.ratio / total for c in self.components]


def _preset(n: int, description: str, parts: list[tuple[str, float]]) -> Mix:
    comps = tuple(MixComponent(ANN_FILE_TO_SET[f], r, f) for f, r in parts)
    return Mix(f"mix{n}", comps, description, BENCHMARK_SOURCE.replace("{N}", str(n)))


# Sources of the algorithm presets (the benchmark's GraphCMR, PARE and Graphormer rows).
GRAPHCMR_SOURCE = "github.com/nkolot/GraphCMR @ eaee920d, datasets/datasets.py, FullDataset.partition"
PARE_SOURCE = "github.com/open-mmlab/mmhuman3d @ 1dd919f8, configs/pare/hrnet_w32_conv_pare_mix.py, MixedDataset.partition"
GRAPHORMER_SOURCE = ("github.com/microsoft/MeshGraphormer @ 4ccc3676, docs/EXP.md: --train_yaml "
                     "Tax-H36m-coco40k-Muco-UP-Mpii/train.yaml, one concatenated set without ratios")


def _algorithm_preset(name: str, description: str, source: str, parts: list[tuple[str, float]]) -> Mix:
    comps = tuple(MixComponent(ANN_FILE_TO_SET[f], r, f) for f, r in parts)
    return Mix(name, comps, description, source)


MIXES: dict[str, Mix] = {m.name: m for m in (
    _preset(1, "H36M, MI, COCO", [("h36m_mosh_train.npz", 0.34), ("mpi_inf_3dhp_train.npz", 0.33),
                                  ("coco_2014_train.npz", 0.33)]),
    _preset(2, "H36M, MI, EFT-COCO", [("h36m_mosh_train.npz", 0.5), ("mpi_inf_3dhp_train.npz", 0.3),
                                      ("eft_coco_train.npz", 0.2)]),
    _preset(3, "H36M, MI, EFT-COCO, MPII", [("h36m_mosh_train.npz", 0.25), ("mpi_inf_3dhp_train.npz", 0.25),
                                            ("mpii_train.npz", 0.25), ("eft_coco_train.npz", 0.25)]),
    _preset(4, "H36M, MuCo, EFT-COCO", [("h36m_mosh_train.npz", 0.2), ("muco3dhp_no3dkp_train.npz", 0.3),
                                        ("eft_coco_train.npz", 0.5)]),
    _preset(5, "H36M, MI, COCO, LSP, LSPET, MPII (the SPIN mix)",
            [("h36m_mosh_train.npz", 0.35), ("mpi_inf_3dhp_train.npz", 0.15), ("lsp_train.npz", 0.1),
             ("lspet_train.npz", 0.1), ("mpii_train.npz", 0.1), ("coco_2014_train.npz", 0.2)]),
    _preset(6, "EFT-[COCO, MPII, LSPET], SPIN-MI, H36M",
            [("h36m_mosh_train.npz", 0.5), ("eft_coco_train.npz", 0.233), ("eft_lspet_train.npz", 0.046),
             ("eft_mpii_train.npz", 0.021), ("spin_mpi_inf_3dhp_train.npz", 0.2)]),
    _preset(7, "EFT-[COCO, MPII, LSPET], MuCo, H36M, PROX",
            [("h36m_mosh_train.npz", 0.3), ("eft_coco_train.npz", 0.2), ("eft_lspet_train.npz", 0.05),
             ("eft_mpii_train.npz", 0.05), ("prox_train.npz", 0.2), ("muco3dhp_no3dkp_train.npz", 0.2)]),
    _preset(8, "EFT-[COCO, PT, LSPET], MI, H36M",
            [("h36m_mosh_train.npz", 0.35), ("eft_coco_train.npz", 0.4), ("eft_lspet_train.npz", 0.05),
             ("eft_posetrack_train.npz", 0.1), ("mpi_inf_3dhp_train.npz", 0.1)]),
    _preset(9, "EFT-[COCO, PT, LSPET, OCH], MI, H36M",
            [("h36m_mosh_train.npz", 0.3), ("eft_coco_train.npz", 0.4), ("eft_lspet_train.npz", 0.05),
             ("eft_posetrack_train.npz", 0.1), ("eft_ochuman_train.npz", 0.05),
             ("mpi_inf_3dhp_train.npz", 0.1)]),
    # The published config also lists EFT-MPII (10 components at 0.1 each).
    _preset(10, "PROX, MuCo, EFT-[COCO, PT, LSPET, OCH, MPII], UP-3D, MTP, CrowdPose",
            [("muco3dhp_no3dkp_train.npz", 0.1), ("prox_train.npz", 0.1), ("eft_lspet_train.npz", 0.1),
             ("eft_mpii_train.npz", 0.1), ("eft_coco_train.npz", 0.1), ("eft_posetrack_train.npz", 0.1),
             ("eft_ochuman_train.npz", 0.1), ("crowdpose_train.npz", 0.1), ("mtp_train.npz", 0.1),
             ("up3d_trainval.npz", 0.1)]),
    _preset(11, "EFT-[COCO, MPII, LSPET], MuCo, H36M",
            [("h36m_mosh_train.npz", 0.5), ("eft_coco_train.npz", 0.233), ("eft_lspet_train.npz", 0.046),
             ("eft_mpii_train.npz", 0.021), ("muco3dhp_no3dkp_train.npz", 0.2)]),
    # The benchmark table's rows for the other algorithms: each algorithm's own public mix.
    # GraphCMR's FullDataset samples H36M .3, LSP (original 1,000 images) .1, COCO .2, MPII .2,
    # UP-3D .2 and has no LSPET; the benchmark row adds LSPET, so LSP's share is split evenly
    # between LSP and LSPET (our choice; the two together keep GraphCMR's 0.1).
    _algorithm_preset("graphcmr", "GraphCMR: H36M, COCO, LSP, LSPET, MPII, UP-3D", GRAPHCMR_SOURCE,
                      [("h36m_mosh_train.npz", 0.3), ("lsp_train.npz", 0.05), ("lspet_train.npz", 0.05),
                       ("coco_2014_train.npz", 0.2), ("mpii_train.npz", 0.2), ("up3d_trainval.npz", 0.2)]),
    # PARE as MMHuman3D (which the benchmark builds on) trains it: mix6's ratios with the plain
    # MPI-INF-3DHP file where mix6 uses SPIN's MPI-INF-3DHP fits.
    _algorithm_preset("pare", "PARE: H36M, MPI-INF-3DHP, EFT-[COCO, LSPET, MPII]", PARE_SOURCE,
                      [("h36m_mosh_train.npz", 0.5), ("eft_coco_train.npz", 0.233), ("eft_lspet_train.npz", 0.046),
                       ("eft_mpii_train.npz", 0.021), ("mpi_inf_3dhp_train.npz", 0.2)]),
    # Graphormer trains on one concatenated set (each dataset weighted by its image count, which
    # depends on the preprocessing); no ratios are published, so the five share equally here.
    _algorithm_preset("graphormer", "Graphormer: H36M, MuCo-3DHP, COCO, UP-3D, MPII (equal shares)",
                      GRAPHORMER_SOURCE,
                      [("h36m_mosh_train.npz", 0.2), ("muco3dhp_no3dkp_train.npz", 0.2), ("coco_2014_train.npz", 0.2),
                       ("up3d_trainval.npz", 0.2), ("mpii_train.npz", 0.2)]),
)}


def mix_from_dict(data: dict, path: str | os.PathLike | None = None) -> Mix:
    """A user mix from its TOML / JSON content (see the module docstring)."""
    try:
        comps = tuple(MixComponent(str(c["set"]), float(c["ratio"])) for c in data["components"])
        mix = Mix(str(data.get("name", Path(path).stem if path else "custom")), comps,
                  str(data.get("description", "")), str(path or ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"bad mix definition ({type(exc).__name__}: {exc}); expected "
                          "[[components]] tables with 'set' and 'ratio'", path=path) from None
    if not comps or any(c.ratio <= 0 for c in comps):
        raise ConfigError("a mix needs components with positive ratios", path=path)
    return mix


def load_mix(spec: str) -> Mix:
    """A preset name (``mix5``) or a path to a TOML / JSON mix file."""
    if spec in MIXES:
        return MIXES[spec]
    p = Path(spec)
    if not p.exists():
        raise ConfigError(f"unknown mix '{spec}' (presets: {', '.join(MIXES)}; or give a .toml/.json file)")
    if p.suffix == ".json":
        return mix_from_dict(json.loads(p.read_text()), p)
    import tomllib

    return mix_from_dict(tomllib.loads(p.read_text()), p)


def find_shard_sets(root: str | os.PathLike) -> dict[str, ShardSet]:
    """Shard sets under ``root`` (each ``root/<name>/index.json``), by name. ``root`` may be a
    URL prefix (``s3://``, ``gs://``, ``http(s)://``): listed through fsspec, which reads an
    HTTP server's directory pages (a server without them lists nothing; :func:`resolve_mix`
    does not need the list)."""
    if not is_remote(root):
        indexes: list = sorted(Path(root).glob(f"*/{INDEX_NAME}"))
    else:
        fs, _ = _url_fs(root)
        fs.invalidate_cache()  # a listing cached earlier in this process may be stale
        try:
            listed = fs.glob(_join(root, f"*/{INDEX_NAME}"))
        except Exception as exc:  # noqa: BLE001 - storage libraries raise their own classes
            raise HmrError(f"cannot list shard sets ({type(exc).__name__}: {exc})", path=root) from None
        # fsspec gives http(s) results as URLs and object stores' without their protocol
        indexes = sorted(p if "://" in p else f"{str(root).split('://', 1)[0]}://{p}" for p in listed)
    found = {}
    for index in indexes:
        sset = load_shard_set(index)
        found[sset.name] = sset
    return found


def _url_fs(url: str):
    import fsspec

    return fsspec.core.url_to_fs(url)


def _join(root: str, name: str) -> str:
    return str(root).rstrip("/") + "/" + name


def _probe_remote(root: str, names: list[str]) -> ShardSet | None:
    """The first of ``names`` with an ``index.json`` under the URL ``root`` (one request each):
    a set is found by name, as in a folder, without listing the bucket or server."""
    fs, _ = _url_fs(root)
    for name in names:
        if fs.exists(_join(root, f"{name}/{INDEX_NAME}")):
            return load_shard_set(_join(root, name))
    return None


def resolve_mix(mix: Mix, root: str | os.PathLike, aliases: dict[str, str] | None = None
                ) -> list[tuple[ShardSet, float]]:
    """The mix's shard sets under ``root`` with normalised ratios; errors name what is missing.
    ``root`` is a folder or a URL prefix (``http(s)://``, ``s3://``, ``gs://``): under a URL
    each component's names are tried in order as ``<root>/<name>/index.json``."""
    remote = is_remote(root)
    available = {} if remote else find_shard_sets(root)
    aliases = aliases or {}
    missing = []
    out = []
    for comp, ratio in zip(mix.components, mix.ratios()):
        names = [aliases.get(n, n) for n in comp.candidates()]
        if remote:
            sset = _probe_remote(str(root), names)
            if sset is not None:
                available[sset.name] = sset
        else:
            found = [n for n in names if n in available]
            sset = available[found[0]] if found else None
        if sset is None:
            asked = [aliases.get(n, n) for n in comp.preferred()]
            missing.append(" or ".join(asked) + (f" (benchmark file {comp.ann_file})" if comp.ann_file else ""))
            continue
        out.append((sset, ratio))
    if missing:
        where = (f"found: {', '.join(available) or 'none'}" if not remote else
                 f"no <name>/{INDEX_NAME} there, or the server cannot be reached")
        raise HmrError(f"mix '{mix.name}' needs shard sets that are not under {root}: {', '.join(missing)} "
                       f"({where}); shard them with 'hmr shard'", path=root)
    return out
