"""Converters and manifests name each other consistently."""

import importlib

import pytest

import manifests
from converters import get_converter, list_converters, registry
from hmr.core.errors import HmrError
from hmr.core.sources import SOURCES


def test_every_converter_declares_the_contract():
    for name in list_converters():
        module = get_converter(name)
        for attr in ("SOURCE", "VERSION", "iter_samples"):
            assert hasattr(module, attr), (name, attr)
        assert module.SOURCE is SOURCES[name]


def test_converter_manifests_exist_and_point_back():
    for name in list_converters():
        module = get_converter(name)
        manifest_name = module.SOURCE.manifest
        if not manifest_name:
            continue
        manifest = manifests.load_manifest(manifest_name)
        assert manifest.converter == module.__name__, (name, manifest_name, manifest.converter)


def test_manifest_converters_are_importable():
    modules = set(registry().values())
    for name in manifests.list_manifests():
        converter = manifests.load_manifest(name).converter
        if converter in (None, "none"):
            continue
        if converter in modules:
            importlib.import_module(converter)
        # manifests of sources without a converter yet name their future module; those
        # must not collide with an existing module of another source
        assert converter.startswith("converters.")


def test_unknown_converter_suggests_close_names():
    with pytest.raises(HmrError, match="did you mean"):
        get_converter("coco2071")
