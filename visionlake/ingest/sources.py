"""Where files come from: a folder walk, a manifest table, or a list of paths on stdin.

Everything here is a generator, so a ten-million-file tree is streamed, never listed in memory.
"""

from __future__ import annotations

import csv
import fnmatch
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from visionlake.config import IMAGE_EXTENSIONS
from visionlake.errors import BadInput

#: Columns that name the file in a manifest, in order of preference.
PATH_COLUMNS = ("path", "uri", "file", "filename")
#: Columns a metadata table may use to match files, in order of preference.
KEY_COLUMNS = ("id", "image_id", "filename", "file", "file_name", "name", "path")


@dataclass
class SourceItem:
    """One candidate file and the metadata that came with it (manifest columns, joined table)."""

    path: str
    meta: dict[str, str] = field(default_factory=dict)
    reject: tuple[str, str] | None = None  # known bad before reading (e.g. a directory named x.jpg)


def walk_folder(
    root: Path, include: Iterable[str] = (), exclude: Iterable[str] = (), all_files: bool = False
) -> Iterator[SourceItem]:
    """Recursive, sorted, streaming walk. Directories named like images are reported, then entered."""
    include = list(include)
    exclude = list(exclude)

    def wanted(rel: str, name: str) -> bool:
        if exclude and any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in exclude):
            return False
        if include:
            return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in include)
        return all_files or os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS

    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            rel = os.path.relpath(entry.path, root)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                if wanted(rel, entry.name) and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                    yield SourceItem(entry.path, reject=("not_a_file", "a directory named like an image"))
                subdirs.append(Path(entry.path))
            elif wanted(rel, entry.name):
                yield SourceItem(entry.path)
        stack.extend(reversed(subdirs))


def count_folder(root: Path, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> int:
    """Count what :func:`walk_folder` would yield (for the progress bar's total and ETA)."""
    return sum(1 for _ in walk_folder(root, include, exclude))


def read_table(path: Path) -> Iterator[dict[str, str]]:
    """Rows of a CSV or Parquet table as dicts of strings.

    CSV rows with more fields than the header (unquoted commas in the last column, as in the
    Myntra ``styles.csv``) are repaired by joining the extra fields into the last column.
    """
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        table = pq.ParquetFile(path)
        for batch in table.iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                yield {k: "" if v is None else str(v) for k, v in row.items()}
        return
    if suffix not in (".csv", ".tsv", ".txt"):
        raise BadInput(f"{path}: unsupported table format (use .csv, .tsv or .parquet)")
    delimiter = "\t" if suffix == ".tsv" else ","
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return
        n = len(header)
        for fields in reader:
            if not fields:
                continue
            if len(fields) > n:
                fields = fields[: n - 1] + [delimiter.join(fields[n - 1 :])]
            elif len(fields) < n:
                fields = fields + [""] * (n - len(fields))
            yield dict(zip(header, (f.strip() for f in fields), strict=True))


def manifest_items(path: Path) -> Iterator[SourceItem]:
    """Files listed in a manifest table; the other columns become metadata."""
    base = path.parent
    column: str | None = None
    for row in read_table(path):
        if column is None:
            column = next((c for c in PATH_COLUMNS if c in row), None)
            if column is None:
                raise BadInput(f"{path}: a manifest needs a column named one of {', '.join(PATH_COLUMNS)}")
        value = row.pop(column)
        if value.startswith("file://"):
            value = value[len("file://") :]
        elif "://" in value:
            yield SourceItem(value, meta=row, reject=("unreadable", "remote URIs are not fetched by ingestion"))
            continue
        p = Path(value)
        yield SourceItem(str(p if p.is_absolute() else base / p), meta=row)


def stdin_items(stream: TextIO | None = None) -> Iterator[SourceItem]:
    """One path per line from standard input (blank lines ignored)."""
    for line in stream or sys.stdin:
        line = line.strip()
        if line:
            yield SourceItem(line)


class MetaTable:
    """A metadata table joined to files by id or file name (e.g. ``styles.csv`` by ``id`` = file stem)."""

    def __init__(self, path: Path, key: str | None = None) -> None:
        if not path.exists():
            raise BadInput(f"metadata table {path} does not exist")
        self.rows: dict[str, dict[str, str]] = {}
        self.key: str | None = key
        for row in read_table(path):
            if self.key is None:
                self.key = next((c for c in KEY_COLUMNS if c in row), None)
                if self.key is None:
                    raise BadInput(f"{path}: cannot tell which column names the files; use one of "
                                   f"{', '.join(KEY_COLUMNS)}")
            k = row.get(self.key, "")
            if k:
                self.rows[k] = {c: v for c, v in row.items() if c != self.key and v != ""}
                self.rows[k][self.key] = k

    def lookup(self, path: str) -> dict[str, str]:
        """Metadata for a file: matched on full path, file name, then stem."""
        name = os.path.basename(path)
        for candidate in (path, name, os.path.splitext(name)[0]):
            row = self.rows.get(candidate)
            if row is not None:
                return dict(row)
        return {}

    def __len__(self) -> int:
        return len(self.rows)


def iter_source(source: str, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> Iterator[SourceItem]:
    """Dispatch on what SOURCE is: ``-`` (stdin), a folder, a manifest table, or a single image."""
    if source == "-":
        yield from stdin_items()
        return
    p = Path(source)
    if p.is_dir():
        yield from walk_folder(p, include, exclude)
    elif p.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq", ".txt") and p.is_file():
        yield from manifest_items(p)
    elif p.exists() or p.is_symlink():
        yield SourceItem(str(p))
    else:
        raise BadInput(f"source {source} does not exist")


def count_source(source: str, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> int | None:
    """Total for the progress bar, or None when counting would mean reading stdin."""
    if source == "-":
        return None
    p = Path(source)
    if p.is_dir():
        return count_folder(p, include, exclude)
    if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq", ".txt"):
        return sum(1 for _ in read_table(p))
    return 1


def meta_for(item: SourceItem, table: MetaTable | None) -> dict[str, Any]:
    """Manifest columns plus the joined table's row (the table wins on conflicts)."""
    meta = dict(item.meta)
    if table is not None:
        meta.update(table.lookup(item.path))
    return meta
