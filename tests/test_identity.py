"""One identity per source: everything that names a source agrees with hmr.core.sources.

For every source in :data:`SOURCES`, those without a converter yet included: the name
follows the rule, its manifest exists and says the same, its converter module (when
written) points back at the same header, its keypoint convention exists; every mix
component and benchmark names a known source and split; aliases are unique;
``hmr datasets`` lists every source.
"""

from __future__ import annotations

import importlib
import pkgutil
import tomllib

import pytest

import converters
import manifests
from hmr.core.errors import HmrError, SchemaError
from hmr.core.keypoints import list_conventions
from hmr.core.sources import (
    KINDS, NAME_PATTERN, SOURCES, get_source, parse_shard_set_name, shard_set_name,
    shard_set_spellings, source_for_manifest,
)
from hmr.core.schema.sample_keys import set_name
from manifests.model import parse_manifest
from tests.fixtures.manifests import isolated_user_dir  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("isolated_user_dir")

ALL = sorted(SOURCES)
CONVERTED = [n for n in ALL if SOURCES[n].converter is not None]
# Where the manifest or module is named otherwise than the source, and why (hmr.core.sources).
MANIFEST_NAMED_OTHERWISE = {"spin_fits": "spin_static_fits", "humandata": "mmhuman3d_npz"}
MODULE_NAMED_OTHERWISE = {"coco2017": "converters.coco"}  # the COCO reader, shared
LEGACY_CONSTANTS = ("NAME", "SPLITS", "ALIASES", "MANIFEST", "DESCRIPTION", "DEFAULT_ROOT")


@pytest.mark.parametrize("name", ALL)
def test_name_follows_the_rule(name):
    source = SOURCES[name]
    assert source.name == name and NAME_PATTERN.fullmatch(name), name
    assert source.kind in KINDS and source.title and source.splits == tuple(source.splits)
    assert len(set(source.splits)) == len(source.splits)
    assert "-" not in name  # so '<name>-<split>' shard-set names split unambiguously
    assert source.manifest == MANIFEST_NAMED_OTHERWISE.get(name, name if source.manifest else None)
    for split in source.splits:  # the mixes' set names are what `hmr shard` writes
        assert shard_set_name(name, split) == set_name(name, split)
        assert parse_shard_set_name(shard_set_name(name, split)) == (source, split)


@pytest.mark.parametrize("name", ALL)
def test_manifest_exists_and_agrees(name):
    source = SOURCES[name]
    if source.manifest is None:
        assert source.kind == "synthetic", "only synthetic data carries its own manifest"
        return
    m = manifests.load_manifest(source.manifest)
    assert m.name == source.manifest and source_for_manifest(m.name) is source
    assert m.converter == source.converter and m.splits == list(source.splits)
    assert m.category == source.kind
    # What the packaged TOML itself says (no key, or the same) and every file's splits.
    data = tomllib.loads(m.manifest_path.read_text(encoding="utf-8"))
    assert data.get("converter", source.converter or "none") == (source.converter or "none")
    assert set(data.get("splits", source.splits)) <= set(source.splits)
    for f in m.files:
        assert not source.splits or set(f.splits) <= set(source.splits), (name, f.path, f.splits)


@pytest.mark.parametrize("name", CONVERTED)
def test_converter_module_points_back_at_its_source(name):
    source = SOURCES[name]
    assert source.converter == MODULE_NAMED_OTHERWISE.get(name, f"converters.{name}")
    module = importlib.import_module(source.converter)
    assert module.SOURCE is source and converters.get_converter(name) is module
    assert isinstance(module.VERSION, str) and callable(module.iter_samples)
    stale = [c for c in LEGACY_CONSTANTS if hasattr(module, c)]
    assert not stale, f"{source.converter} still declares {stale}: the header says it"


def test_the_benchmark_lists_31_sources():
    benchmark = [s for s in SOURCES.values() if s.benchmark]
    assert len(benchmark) == 31
    assert all(s.benchmark for s in SOURCES.values() if s.converter is None)


def test_every_converter_module_has_a_source():
    declared = {s.converter for s in SOURCES.values()}
    for info in pkgutil.iter_modules(converters.__path__):
        module = importlib.import_module(f"converters.{info.name}")
        if hasattr(module, "iter_samples") and hasattr(module, "SOURCE"):
            assert module.__name__ in declared, module.__name__


@pytest.mark.parametrize("name", ALL)
def test_convention_exists(name):
    convention = SOURCES[name].convention
    assert convention is None or convention in list_conventions(), (name, convention)


def test_every_data_manifest_belongs_to_a_source():
    for manifest in manifests.list_manifests():
        m = manifests.load_manifest(manifest)
        if m.category in ("dataset", "fits", "preprocessed"):
            assert source_for_manifest(manifest) is not None, manifest


def _split_of(set_name: str):
    parsed = parse_shard_set_name(set_name)
    assert parsed is not None, f"{set_name!r} names no source"
    source, split = parsed
    assert set_name == f"{source.name}-{split}", f"{set_name!r}: not the source's name"
    assert not source.splits or split in source.splits, f"{set_name!r}: {source.name} has no split {split!r}"
    return source, split


def test_mix_components_name_known_sources_and_splits():
    from loaders.mixes import ANN_FILE_TO_SET, ANN_FILE_TO_SOURCE, MIXES

    for mix in MIXES.values():
        for comp in mix.components:
            _split_of(comp.set)
            assert ANN_FILE_TO_SET[comp.ann_file] == comp.set
    for ann_file, (name, split) in ANN_FILE_TO_SOURCE.items():
        assert _split_of(ANN_FILE_TO_SET[ann_file]) == (SOURCES[name], split), ann_file


def test_benchmarks_name_known_sources_and_splits():
    from converters.eft import BENCHMARKS as EFT_TEST_SETS
    from hmr.evaluation.benchmarks import BENCHMARKS

    for bench in BENCHMARKS.values():
        for name in bench.sources:
            source = SOURCES[name]  # a source name, not an alias
            assert set(bench.splits) <= set(source.splits), bench.name
            assert set(source.spellings()) <= set(bench.datasets)
    for title, (name, split) in EFT_TEST_SETS.items():
        assert split in SOURCES[name].splits, title


def test_aliases_are_unique_and_shadow_no_name():
    seen: dict[str, str] = {}
    for source in SOURCES.values():
        for alias in source.aliases:
            assert alias not in SOURCES, f"alias {alias!r} of {source.name} is another source's name"
            assert alias not in seen, f"alias {alias!r} of {source.name} and {seen[alias]}"
            seen[alias] = source.name
            assert get_source(alias) is source


def test_older_spellings_still_resolve():
    assert get_source("eft-coco") is SOURCES["eft_coco"]
    assert get_source("spin-fits") is SOURCES["spin_fits"]
    assert get_source("muco-3dhp") is SOURCES["muco3dhp"] is get_source("muco")
    assert converters.get_converter("3dpw") is converters.get_converter("pw3d")
    assert shard_set_spellings("eft-coco-train")[:2] == ["eft_coco-train", "eft-coco-train"]
    assert parse_shard_set_name("spin_fits-lsp-orig") == (SOURCES["spin_fits"], "lsp-orig")
    with pytest.raises(HmrError, match="did you mean eft_coco"):
        get_source("eftcoco")



def test_a_source_without_a_converter_says_so(monkeypatch):
    import dataclasses

    import hmr.core.sources as sources

    planned = dataclasses.replace(SOURCES["agora"], converter=None)
    monkeypatch.setitem(sources._BY_SPELLING, "agora", planned)
    with pytest.raises(HmrError, match="'agora' has no converter yet"):
        converters.get_converter("agora")


def test_hmr_datasets_lists_every_source(capsys, monkeypatch, tmp_path):
    import json

    from cli.main import main

    monkeypatch.setenv("HMR_DATA", str(tmp_path))
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].split()[0] == "dataset"  # the header row
    rows = {line.split()[0]: line for line in lines[4:] if line.strip()}
    assert set(rows) == set(SOURCES)
    for name, line in rows.items():
        assert ("no converter yet" in line) == (SOURCES[name].converter is None), line
    assert main(["datasets", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in listed} == set(SOURCES)


# ------------------------------------------------------------- manifests that disagree


def _manifest(name: str, **over) -> dict:
    doc = {"schema_version": 1, "name": name, "title": "t", "category": "dataset",
           "homepage": "https://x.org", "licence": "x", "registration_required": False,
           "citation": "c", "sources": ["s"],
           "files": [{"path": "a.json", "kind": "file", "size": 1, "sha256": "unknown",
                      "required": True, "splits": ["train"]}]}
    doc.update(over)
    return doc


def test_a_manifest_takes_converter_and_splits_from_its_source():
    m = parse_manifest(_manifest("coco2014"))
    assert (m.converter, m.splits) == ("converters.coco2014", ["train", "val"])
    # An older locked copy that still lists them (fewer splits, as it did) loads.
    old = parse_manifest(_manifest("coco2014", converter="converters.coco2014", splits=["train"]))
    assert old.splits == ["train", "val"]
    # A manifest of no source keeps its own (a synthetic dataset's, body-model files).
    own = parse_manifest(_manifest("my_synth", converter="converters.synth", splits=["train"]))
    assert (own.converter, own.splits) == ("converters.synth", ["train"])


@pytest.mark.parametrize("over, words", [
    ({"converter": "converters.coco"}, "disagrees"),
    ({"splits": ["train", "valid"]}, "not splits of"),
    ({"files": [{"path": "a.json", "kind": "file", "size": 1, "sha256": "unknown",
                 "required": True, "splits": ["test"]}]}, "a.json"),
])
def test_a_manifest_that_disagrees_with_its_source_is_refused(over, words):
    with pytest.raises(SchemaError, match=words):
        parse_manifest(_manifest("coco2014", **over), origin="coco2014.toml")


def test_a_source_declared_twice_is_refused():
    from hmr.core.sources import index_sources

    row = SOURCES["lsp"]
    assert list(index_sources((SOURCES["mpii"], row))) == ["lsp", "mpii"]
    with pytest.raises(HmrError, match="'lsp' is declared twice"):
        index_sources((row, SOURCES["mpii"], row))
