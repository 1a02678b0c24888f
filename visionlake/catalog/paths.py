"""File paths in the catalog: any byte string a file system allows, stored so that it round-trips.

POSIX file names are bytes; Python hands undecodable bytes to us as lone surrogates
(``surrogateescape``), which a UTF-8 database driver refuses (``UnicodeEncodeError``: one such
name used to abort a whole ingest on every rerun). :class:`FsPath` stores a path that is valid UTF-8
as plain text (so every existing catalog reads the same), and any other path as its exact bytes:
a BLOB on SQLite, ``fsbytes:<hex>`` text elsewhere. Reading returns the original ``str``
(``os.fsdecode`` of the bytes), so lookups, resume and reports use the same value as the walk.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

_PREFIX = "fsbytes:"


def is_plain(path: str) -> bool:
    """True when a path is valid UTF-8 text (no surrogate-escaped bytes)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_path(path: str) -> str:
    """Printable form of a path: undecodable bytes shown as ``\\xNN`` (never raises on output)."""
    if is_plain(path):
        return path
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def safe_text(text: str) -> str:
    """Free text (error details that quote a path) made storable: surrogates become ``\\udcNN``."""
    if is_plain(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class FsPath(TypeDecorator):
    """A ``Text`` column holding file paths that may not be UTF-8 (see the module docstring)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None or not isinstance(value, str) or is_plain(value):
            return value
        raw = os.fsencode(value)
        if dialect.name == "sqlite":
            return raw  # stored as a BLOB: exact bytes, compared byte-wise
        return _PREFIX + raw.hex()

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, bytes | memoryview):
            return os.fsdecode(bytes(value))
        if isinstance(value, str) and value.startswith(_PREFIX) and dialect.name != "sqlite":
            try:
                return os.fsdecode(bytes.fromhex(value[len(_PREFIX):]))
            except ValueError:
                return value
        return value
