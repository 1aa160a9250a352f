"""Source manifests: what the raw files of one source must be.

One TOML file per source lives next to this module (package data, read through
:mod:`importlib.resources`, so it works from a wheel as well as from a checkout). A
manifest describes the source (homepage, licence, whether registration is required,
citation, where every fact came from) and lists its entries. Which converter reads it and
which splits it yields is the source's identity, declared once in
:data:`hmr.core.sources.SOURCES`: a manifest of a known source takes both from there. The
TOML keys ``converter`` and ``splits`` are optional (older locked copies still carry them)
and, when present, must agree with the table; a file's ``splits`` must be splits of the
source. Manifests of anything else (body-model files, a synthetic dataset's own manifest)
keep both keys in the TOML. Each entry has a ``kind``:

- ``file``: one file at ``path`` (relative to the dataset root, the layout the converter
  reads), with ``size`` / ``sha256`` / ``md5`` where publicly known,
- ``archive``: a downloaded archive; optional by default (people delete archives after
  extracting them) and checked only when present; ``extract_to`` says where it unpacks,
- ``dir``: a folder of many files (images, per-sequence files) matched by ``glob``,
  with an optional file ``count``, total ``size`` and ``tree_sha256`` (see
  :func:`manifests.hashing.tree_digest`), normally filled in by ``hmr manifest lock``.

Values nobody could look up are written ``"unknown"`` in the TOML and become ``None``
here; they are never guessed. ``hmr manifest lock`` fills them from a copy the user trusts
and writes the result to the user manifest folder, which is searched before the packaged
manifests (see :func:`manifest_search_path`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from hmr.core.errors import SchemaError
from hmr.core.sources import Source, source_for_manifest

UNKNOWN = "unknown"
MANIFEST_SCHEMA_VERSION = 1
KINDS = ("file", "archive", "dir")
CATEGORIES = ("dataset", "fits", "body_model", "auxiliary", "preprocessed")
USER_DIR_ENV = "HMR_MANIFEST_DIR"


@dataclass
class ManifestFile:
    """One entry of a source manifest (a file, an archive or a folder of files)."""

    path: str  # POSIX path relative to the dataset root
    kind: str = "file"
    url: str | None = None
    size: int | None = None  # bytes; for ``dir``: total bytes of the matched files
    sha256: str | None = None
    md5: str | None = None
    archive: str | None = None  # path of the ``archive`` entry this file comes from
    extract_to: str | None = None  # for archives: folder (relative to root) it unpacks into
    required: bool = True
    splits: list[str] = field(default_factory=list)
    glob: str = "*"  # for ``dir``: which files inside belong to it (Path.glob syntax)
    count: int | None = None  # for ``dir``: number of matched files
    tree_sha256: str | None = None  # for ``dir``: see manifests.hashing.tree_digest
    note: str = ""

    @property
    def key(self) -> str:
        """Unique id inside a manifest: the path, plus the glob for folder entries (one
        folder may hold several entries, e.g. SURREAL's ``*_info.mat`` and ``*.mp4``)."""
        return f"{self.path} [{self.glob}]" if self.kind == "dir" else self.path

    @property
    def has_checksum(self) -> bool:
        if self.kind == "dir":
            return self.tree_sha256 is not None
        return self.sha256 is not None or self.md5 is not None


@dataclass
class SourceManifest:
    """A parsed source manifest; ``manifest_path`` is the TOML it came from."""

    name: str
    title: str
    category: str
    homepage: str
    licence: str
    registration_required: bool
    citation: str
    converter: str | None
    splits: list[str]
    sources: list[str]
    files: list[ManifestFile]
    notes: str = ""
    schema_version: int = MANIFEST_SCHEMA_VERSION
    manifest_path: Path | None = None
    locked: dict[str, Any] = field(default_factory=dict)

    def entry(self, key: str) -> ManifestFile:
        """The entry with this :attr:`ManifestFile.key` (for files: the path)."""
        for f in self.files:
            if f.key == key:
                return f
        raise KeyError(f"{self.name}: no entry {key!r}")


# ----------------------------------------------------------------------------- locating


def user_manifest_dir() -> Path:
    """Where ``hmr manifest lock`` writes: ``$HMR_MANIFEST_DIR`` or the XDG config folder."""
    if os.environ.get(USER_DIR_ENV):
        return Path(os.environ[USER_DIR_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "hmrkit" / "manifests"


def _packaged_dir():
    return resources.files("manifests")


def manifest_search_path() -> list[Any]:
    """Folders searched for ``NAME.toml``, first match wins: user (locked) then packaged."""
    return [user_manifest_dir(), _packaged_dir()]


def list_manifests() -> list[str]:
    """Names of every available source manifest (packaged and user-locked), sorted."""
    names: set[str] = set()
    for folder in manifest_search_path():
        try:
            entries = list(folder.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            continue
        names.update(e.name[:-5] for e in entries if e.name.endswith(".toml") and e.is_file())
    return sorted(names)


def _resolve(name: str | os.PathLike):
    """The TOML resource for a name, or the file itself when given a path."""
    text = os.fspath(name)
    if text.endswith(".toml") or os.sep in text or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: manifest file not found")
        return path
    for folder in manifest_search_path():
        candidate = folder / f"{text}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(list_manifests()) or "none"
    raise FileNotFoundError(f"no manifest named {text!r} (known: {known})")


def manifest_bytes(name: str | os.PathLike) -> bytes:
    return _resolve(name).read_bytes()


def manifest_digest(name: str | os.PathLike) -> str:
    """sha256 of the manifest file's bytes (the one :func:`load_manifest` would read)."""
    return hashlib.sha256(manifest_bytes(name)).hexdigest()


def manifest_location(name: str | os.PathLike) -> str:
    return str(_resolve(name))


# ----------------------------------------------------------------------------- parsing


def source_schema() -> dict:
    """The JSON Schema every source manifest satisfies (``manifests/source.schema.json``)."""
    return json.loads((_packaged_dir() / "source.schema.json").read_text(encoding="utf-8"))


def _opt(value: Any) -> Any:
    return None if value == UNKNOWN else value


def _check_relative(path: str, where: str, origin: str) -> None:
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or "\\" in path:
        raise SchemaError(f"{where}: path {path!r} must be relative, POSIX, without '..'",
                          path=origin)


def _parse_entry(raw: dict, index: int, origin: str) -> ManifestFile:
    where = f"files[{index}]"
    kind = raw.get("kind", "file")
    entry = ManifestFile(
        path=raw["path"], kind=kind, url=_opt(raw.get("url")), size=_opt(raw.get("size")),
        sha256=_opt(raw.get("sha256")), md5=_opt(raw.get("md5")), archive=raw.get("archive"),
        extract_to=raw.get("extract_to"),
        required=raw.get("required", kind != "archive"),
        splits=list(raw.get("splits", [])), glob=raw.get("glob", "*"),
        count=_opt(raw.get("count")), tree_sha256=_opt(raw.get("tree_sha256")),
        note=raw.get("note", ""),
    )
    _check_relative(entry.path, where, origin)
    if entry.extract_to is not None:
        _check_relative(entry.extract_to, where, origin)
    return entry


def _validate(data: dict, origin: str) -> None:
    import jsonschema  # imported lazily: only needed when a manifest is read

    validator = jsonschema.Draft202012Validator(source_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        loc = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise SchemaError(f"manifest invalid at {loc}: {err.message}", path=origin)


def _identity(data: dict, files: list[ManifestFile], origin: str) -> tuple[str | None, list[str]]:
    """``(converter, splits)`` of a manifest: from its source's header when the manifest
    belongs to a known source (checking what the TOML says against it), else from the TOML."""
    written = data.get("converter", "none")
    written = None if written == "none" else written
    source = source_for_manifest(data["name"])
    if source is None:
        return written, list(data.get("splits", []))
    _check_identity(source, written, data.get("splits"), files, origin)
    return source.converter, list(source.splits)


def _check_identity(source: Source, converter: str | None, splits: list[str] | None,
                    files: list[ManifestFile], origin: str) -> None:
    """A TOML's own ``converter``/``splits`` (older locked copies) and every file's splits
    must agree with the source. Before a converter exists, the module a manifest planned
    for it is not checked; older manifests may list fewer splits than the converter reads."""
    where = f"source '{source.name}' (hmr.core.sources)"
    if converter is not None and source.converter is not None and converter != source.converter:
        raise SchemaError(f"converter {converter!r} disagrees with {where}: "
                          f"{source.converter!r}", path=origin)
    if not source.splits:  # open splits (any npz file stem): nothing to check against
        return
    if splits is not None and not set(splits) <= set(source.splits):
        raise SchemaError(f"splits {splits} are not splits of {where}: "
                          f"{list(source.splits)}", path=origin)
    for f in files:
        unknown = sorted(set(f.splits) - set(source.splits))
        if unknown:
            raise SchemaError(f"{f.path}: splits {unknown} are not splits of {where}: "
                              f"{list(source.splits)}", path=origin)


def parse_manifest(data: dict, origin: str = "<memory>") -> SourceManifest:
    """Validate a decoded TOML document against the schema and build the dataclass."""
    _validate(data, origin)
    files = [_parse_entry(raw, i, origin) for i, raw in enumerate(data.get("files", []))]
    keys = [f.key for f in files]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise SchemaError(f"duplicate entries {dupes}", path=origin)
    archives = {f.path for f in files if f.kind == "archive"}
    for i, f in enumerate(files):
        if f.archive is not None and f.archive not in archives:
            raise SchemaError(f"files[{i}] ({f.path}): archive {f.archive!r} is not an entry "
                              f"of kind 'archive'", path=origin)
    converter, splits = _identity(data, files, origin)
    return SourceManifest(
        name=data["name"], title=data["title"], category=data["category"],
        homepage=data["homepage"], licence=data["licence"],
        registration_required=data["registration_required"], citation=data["citation"],
        converter=converter, splits=splits,
        sources=list(data["sources"]), files=files, notes=data.get("notes", ""),
        schema_version=data["schema_version"], locked=dict(data.get("locked", {})),
    )


def load_manifest(name: str | os.PathLike) -> SourceManifest:
    """Load a source manifest by name (``"coco2014"``) or by path to a ``.toml`` file."""
    resource = _resolve(name)
    origin = str(resource)
    try:
        data = tomllib.loads(resource.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"not valid TOML: {exc}", path=origin) from exc
    manifest = parse_manifest(data, origin)
    manifest.manifest_path = Path(origin)
    return manifest


def manifest_to_dict(m: SourceManifest) -> dict[str, Any]:
    """The TOML document for a manifest (``None`` written back as ``"unknown"``)."""

    def unk(v: Any) -> Any:
        return UNKNOWN if v is None else v

    files = []
    for f in m.files:
        d: dict[str, Any] = {"path": f.path, "kind": f.kind}
        if f.url is not None:
            d["url"] = f.url
        d["size"] = unk(f.size)
        if f.kind == "dir":
            d["glob"] = f.glob
            d["count"] = unk(f.count)
            d["tree_sha256"] = unk(f.tree_sha256)
        else:
            d["sha256"] = unk(f.sha256)
            if f.md5 is not None:
                d["md5"] = f.md5
        for key in ("archive", "extract_to"):
            if getattr(f, key) is not None:
                d[key] = getattr(f, key)
        d["required"] = f.required
        if f.splits:
            d["splits"] = f.splits
        if f.note:
            d["note"] = f.note
        files.append(d)
    doc: dict[str, Any] = {
        "schema_version": m.schema_version, "name": m.name, "title": m.title,
        "category": m.category, "homepage": m.homepage, "licence": m.licence,
        "registration_required": m.registration_required, "citation": m.citation,
    }
    if source_for_manifest(m.name) is None:  # a known source's identity lives in its header
        doc.update({"converter": m.converter or "none", "splits": m.splits})
    doc["sources"] = m.sources
    if m.notes:
        doc["notes"] = m.notes
    if m.locked:
        doc["locked"] = m.locked
    doc["files"] = files
    return doc


def dump_manifest(m: SourceManifest) -> str:
    """TOML text of a manifest, validated first (so what we write, we can read back).

    For code that generates manifests (e.g. synthetic datasets listing every file they
    wrote): build a :class:`SourceManifest`, then write this text atomically.
    """
    import tomli_w

    doc = manifest_to_dict(m)
    parse_manifest(doc, origin=f"<manifest {m.name}>")
    return tomli_w.dumps(doc, multiline_strings=True)
