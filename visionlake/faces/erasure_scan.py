"""Raw-bytes scan of folders for a forgotten person's name and templates (standard library only).

Run as a child process by :func:`visionlake.faces.erasure.scan_files`::

    python -I -S path/to/erasure_scan.py < job.json        (what erasure does)
    python -m visionlake.faces.erasure_scan < job.json      (the same, by hand)

Why a separate process: the lake holds the live SQLite catalog, and with SQLite's POSIX locks,
closing *any* descriptor of a database file drops every lock the process holds on it. Reading the
catalog's raw bytes in the process that has it open would silently unlock that process's
connections. A child has its own locks. ``-I -S`` keeps the child free of site packages and of the
caller's environment, which is why this module imports nothing outside the standard library.

The job (JSON on stdin)::

    {"roots": ["/lake", "/milvus/faces.db"], "skip": ["keys"],
     "patterns": {"name": {"kind": "re", "hex": "...", "flags": 0},
                  "template 0 (float32)": {"kind": "bytes", "hex": "..."}}}

Output (JSON on stdout): ``{"hits": ["<root name>/<relative path>: <label>", ...], "scanned": N}``.
``skip`` names top-level folders of a root that are not scanned (the key folder).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable

#: Bytes read per step; matches that straddle two blocks are found through an overlap.
BLOCK = 8 << 20
#: Overlap kept for regex patterns (a name is far shorter).
REGEX_OVERLAP = 1024

Pattern = bytes | re.Pattern[bytes]


def scan_file(path: str, patterns: dict[str, Pattern], block: int = BLOCK) -> set[str] | None:
    """Labels of the patterns found in one file (None when it cannot be opened)."""
    longest = max((len(p) if isinstance(p, bytes) else REGEX_OVERLAP for p in patterns.values()), default=0)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; OSError must be told apart from a read
    except OSError:
        return None
    found: set[str] = set()
    with fh:
        tail = b""
        while True:
            chunk = fh.read(block)
            if not chunk:
                break
            buf = tail + chunk
            for label, pat in patterns.items():
                if label in found or not pat:
                    continue
                hit = (pat in buf) if isinstance(pat, bytes) else pat.search(buf) is not None
                if hit:
                    found.add(label)
            tail = buf[-(longest - 1):] if longest > 1 else b""
    return found


def scan(roots: list[str], patterns: dict[str, Pattern], skip: Iterable[str] = ()) -> tuple[list[str], int]:
    """Scan every file under each root (a folder or a single file); returns sorted hits and files read.

    Hits under the first root (the lake) are shown relative to it; hits under other roots (an
    engine's files outside the lake) by absolute path.
    """
    skip_set = set(skip)
    hits: set[str] = set()
    scanned = 0
    for n_root, root in enumerate(os.path.abspath(r) for r in roots):
        if os.path.isfile(root):
            walk: Iterable[tuple[str, list[str], list[str]]] = [(os.path.dirname(root), [], [os.path.basename(root)])]
            base = os.path.dirname(root)
        else:
            walk = os.walk(root)
            base = root
        for dirpath, dirs, files in walk:
            rel_dir = os.path.relpath(dirpath, base)
            if rel_dir.split(os.sep)[0] in skip_set:
                dirs[:] = []
                continue
            for fname in files:
                path = os.path.join(dirpath, fname)
                found = scan_file(path, patterns)
                if found is None:
                    continue
                scanned += 1
                shown = os.path.relpath(path, base) if n_root == 0 else path
                hits.update(f"{shown}: {label}" for label in found)
    return sorted(hits), scanned


def decode_patterns(spec: dict[str, dict[str, object]]) -> dict[str, Pattern]:
    """Patterns from the job's hex encoding (bytes survive JSON that way)."""
    out: dict[str, Pattern] = {}
    for label, p in spec.items():
        raw = bytes.fromhex(str(p["hex"]))
        out[label] = raw if p["kind"] == "bytes" else re.compile(raw, int(p.get("flags", 0)))  # type: ignore[arg-type]
    return out


def encode_patterns(patterns: dict[str, Pattern]) -> dict[str, dict[str, object]]:
    """Inverse of :func:`decode_patterns`."""
    out: dict[str, dict[str, object]] = {}
    for label, pat in patterns.items():
        if isinstance(pat, bytes):
            out[label] = {"kind": "bytes", "hex": pat.hex()}
        else:
            out[label] = {"kind": "re", "hex": pat.pattern.hex(), "flags": int(pat.flags)}
    return out


def main() -> int:
    """Read the job from stdin, write the result to stdout."""
    job = json.loads(sys.stdin.read())
    roots = job.get("roots") or [job["root"]]
    found, n = scan(roots, decode_patterns(job["patterns"]), job.get("skip", ()))
    sys.stdout.write(json.dumps({"hits": found, "scanned": n}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
