"""Converter options: the ones every converter understands (:class:`ConvertOptions`) and the
``-o key=value`` ones a converter declares as data next to its header::

    OPTIONS = (
        Option("min_keypoints", 1, int, "drop persons with fewer labelled keypoints"),
        Option("bbox", "annotation", str, "box source", choices=("annotation", "keypoints")),
    )
    ...
    min_keypoints = get_option(options, OPTIONS, "min_keypoints")  # an int, default 1

The declaration is what ``hmr convert NAME --help`` prints, what the driver checks the given
keys against before converting (an unknown key is an error naming the known ones), and the
one place a value is cast and its default found.
"""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hmr.core.errors import HmrError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass
class ConvertOptions:
    """Options every converter understands; converter-specific ones go in ``extra``."""

    #: worker processes for per-image work (None: all cores)
    workers: int | None = None
    #: check that every image file exists (and read its size where the annotation lacks it)
    check_images: bool = True
    #: body model folder (SMPL files) for converters that regress joints from SMPL
    body_model: str | None = None
    #: ``-o key=value`` options, read through the converter's declared :class:`Option`s
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Option:
    """One ``-o name=value`` option of a converter.

    ``default`` None means "no value": the converter decides (its ``help`` says how, e.g. a
    default that depends on the split or on another option). ``type`` is str, int, float or
    bool (bool accepts 1/0/true/false/yes/no/on/off); ``choices``, when given, are the only values.
    """

    name: str
    default: Any
    type: type
    help: str
    choices: tuple[Any, ...] = ()

    def cast(self, raw: Any) -> Any:
        """``raw`` (a CLI string or an already-typed value) as this option's type."""
        if isinstance(raw, self.type) and not (self.type is int and isinstance(raw, bool)):
            value = raw
        else:
            value = _cast(self.name, raw, self.type)
        if self.choices and value not in self.choices:
            raise HmrError(f"option {self.name}={raw!r}: expected one of {', '.join(map(str, self.choices))}")
        return value


def _cast(name: str, raw: Any, kind: type) -> Any:
    text = str(raw).strip().lower()
    try:
        if kind is bool:
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(text)
        return kind(raw)
    except (TypeError, ValueError):
        raise HmrError(f"option {name}={raw!r}: expected a {kind.__name__}") from None


def declared(options: Sequence[Option], name: str) -> Option:
    """The declaration of ``name`` (a converter reading an undeclared option is a bug)."""
    for option in options:
        if option.name == name:
            return option
    raise KeyError(f"option '{name}' is not declared (declared: {', '.join(o.name for o in options)})")


def get_option(options: ConvertOptions, declaration: Sequence[Option], name: str) -> Any:
    """Value of the declared option ``name``: ``options.extra[name]`` cast to its type, else
    its default. A bad value raises :class:`HmrError` naming the option."""
    option = declared(declaration, name)
    if name not in options.extra:
        return option.default
    return option.cast(options.extra[name])


def check_options(declaration: Sequence[Option], given: Mapping[str, Any], converter: str) -> None:
    """Refuse keys the converter does not declare (a typo would otherwise be ignored) and
    values that do not cast, before any work."""
    known = [o.name for o in declaration]
    for key, value in given.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            listing = ", ".join(known) if known else "none"
            raise HmrError(f"converter '{converter}' has no option '{key}'{hint}; "
                           f"its options: {listing}")
        declared(declaration, key).cast(value)


def describe_options(declaration: Iterable[Option], width: int = 88) -> str:
    """The options as ``hmr convert NAME --help`` lists them: name, type, default, help."""
    blocks = []
    for o in declaration:
        default = "default: see below" if o.default is None else f"default {o.default!r}"
        lines = [f"  -o {o.name}={o.type.__name__.upper()}  ({default})"]
        lines += textwrap.wrap(o.help, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
        if o.choices:
            lines.append(" " * 6 + "one of: " + ", ".join(repr(c) if c == "" else str(c) for c in o.choices))
        blocks.append("\n".join(lines))
    return "\n".join(blocks) if blocks else "  (none)"
