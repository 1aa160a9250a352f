"""Converter options declared as data: every read goes through a declaration, unknown or
badly typed keys are refused before converting, and the declarations are well formed."""

from __future__ import annotations

import ast
import inspect

import pytest

from converters import get_converter, list_converters
from converters.options import ConvertOptions, Option, check_options, describe_options, get_option
from hmr.core.errors import HmrError
from tests.fixtures.converters_2d import convert, write_coco

DECLARED = (Option("min_keypoints", 1, int, "drop persons with fewer labelled keypoints"),
            Option("bbox", "annotation", str, "box source", choices=("annotation", "keypoints")),
            Option("depends", None, int, "default chosen by the converter"))


def test_get_option_reads_through_the_declaration():
    opts = ConvertOptions(extra={"min_keypoints": "7", "bbox": "keypoints"})
    assert get_option(opts, DECLARED, "min_keypoints") == 7
    assert get_option(opts, DECLARED, "bbox") == "keypoints"
    assert get_option(ConvertOptions(), DECLARED, "min_keypoints") == 1
    assert get_option(ConvertOptions(), DECLARED, "depends") is None
    with pytest.raises(HmrError, match="bbox='box'.*annotation, keypoints"):
        get_option(ConvertOptions(extra={"bbox": "box"}), DECLARED, "bbox")
    with pytest.raises(KeyError, match="not declared"):  # a converter bug, not a user error
        get_option(opts, DECLARED, "undeclared")


def test_unknown_option_lists_the_known_ones_with_close_matches():
    with pytest.raises(HmrError) as exc:
        check_options(DECLARED, {"min_keypoint": "3"}, "toy")
    message = str(exc.value)
    assert "no option 'min_keypoint'" in message and "did you mean min_keypoints" in message
    assert "min_keypoints, bbox, depends" in message
    with pytest.raises(HmrError, match="expected a int"):
        check_options(DECLARED, {"min_keypoints": "many"}, "toy")
    check_options(DECLARED, {"min_keypoints": "3", "bbox": "keypoints"}, "toy")


def test_the_driver_refuses_an_unknown_option_before_converting(tmp_path):
    write_coco(tmp_path / "coco")
    with pytest.raises(HmrError, match="did you mean min_keypoints"):
        convert("coco2017", tmp_path / "coco", tmp_path / "out", "val", min_keypoint=3)
    assert not (tmp_path / "out").exists()


def _option_names_read(module) -> set[str]:
    """Names passed as the last argument of ``get_option(options, TABLE, "name")`` calls."""
    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "get_option":
            last = node.args[-1]
            assert isinstance(last, ast.Constant), f"{module.__name__}: option name must be a literal"
            names.add(last.value)
    return names


@pytest.mark.parametrize("name", list_converters())
def test_every_converter_declares_what_it_reads(name):
    module = get_converter(name)
    declared = getattr(module, "OPTIONS", ())
    assert all(isinstance(o, Option) for o in declared)
    names = [o.name for o in declared]
    assert len(names) == len(set(names)), f"{name}: an option is declared twice"
    for o in declared:
        assert o.help and o.type in (str, int, float, bool), (name, o.name)
        assert o.default is None or isinstance(o.default, o.type), (name, o.name)
        assert not o.choices or o.default is None or o.default in o.choices, (name, o.name)
    assert _option_names_read(module) <= set(names), name


def test_describe_options_shows_name_type_default_and_help():
    text = describe_options(DECLARED)
    assert "-o min_keypoints=INT  (default 1)" in text and "drop persons" in text
    assert "one of: annotation, keypoints" in text and "default: see below" in text
    assert describe_options(()) == "  (none)"
