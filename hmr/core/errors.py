"""One exception type per failure family, each carrying the file and the record.

The CLI turns any :class:`HmrError` into one clear line (a traceback only with ``--debug``).
"""

from __future__ import annotations


class HmrError(Exception):
    """Base class of every error the CLI reports as one line.

    ``path`` is the file the error is about, ``record`` the sample index, key or
    annotation id inside it (when known).
    """

    def __init__(self, message: str, *, path: object | None = None, record: object | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.record = record
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.record is not None:
            where.append(f"record {self.record}")
        return f"{': '.join([', '.join(where), self.message]) if where else self.message}"


class SchemaError(HmrError):
    """A store or sample violates schema v1 (wrong shape, dtype, NaN, range, convention)."""

    def __init__(self, message: str, *, field: str | None = None, index: int | None = None,
                 path: object | None = None):
        self.field = field
        self.index = index
        parts = []
        if field is not None:
            parts.append(f"field '{field}'")
        if index is not None:
            parts.append(f"sample {index}")
        prefix = (", ".join(parts) + ": ") if parts else ""
        super().__init__(prefix + message, path=path)


class DatasetFormatError(HmrError):
    """A raw dataset file does not have the layout or content its converter expects."""


class ChecksumMismatch(HmrError):
    """A file's size or digest differs from its manifest."""


class UnsafePickleError(HmrError):
    """A pickle tried to import something outside the allow-list."""


class UnsafeArchiveError(HmrError):
    """An archive member would land outside its target folder."""


class ConventionError(HmrError):
    """Unknown keypoint convention or joint name."""


class BodyModelError(HmrError):
    """A body-model file is missing or malformed."""


class ConfigError(HmrError):
    """A configuration file or override is invalid."""
