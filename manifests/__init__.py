"""Manifests: what the raw files of every source must be, and what each conversion produced.

Source manifests (one TOML file per source in this folder, validated against
``source.schema.json``) list every file, archive and image folder a converter reads, with
URL, size and checksum where publicly known and ``"unknown"`` where not. Output manifests
(``<store>.manifest.json``) record the checksums of a converter's store, the digests of the
source manifest and raw files it read, the converter version, sample counts and command.

Public API::

    load_manifest(name) -> SourceManifest          list_manifests() -> list[str]
    manifest_digest(name) -> str                   verify_source(name, root, ...) -> VerifyReport
    verify_output(store) -> VerifyReport           write_output_manifest(store, ...) -> Path
    check_store_files(store) -> bool (raises ChecksumMismatch on a changed store file)
    lock_manifest(name, root, ...) -> Path         dump_manifest(SourceManifest) -> str

Manifests name their converter as a module string (``"converters.coco"``); nothing here
imports converters (data flows one way: manifests are upstream of converters).
"""

from manifests.lock import lock_manifest
from manifests.model import (ManifestFile, SourceManifest, dump_manifest, list_manifests,
                             load_manifest, manifest_digest, manifest_location, source_schema,
                             user_manifest_dir)
from manifests.output import output_manifest_path, write_output_manifest
from manifests.report import FileCheck, VerifyReport
from manifests.verify import check_store_files, verify_output, verify_source

__all__ = [
    "FileCheck", "ManifestFile", "check_store_files", "SourceManifest", "VerifyReport", "dump_manifest",
    "list_manifests",
    "load_manifest", "lock_manifest", "manifest_digest", "manifest_location",
    "output_manifest_path", "source_schema", "user_manifest_dir", "verify_output",
    "verify_source", "write_output_manifest",
]
