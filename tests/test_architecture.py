"""The architecture of visionlake, as a table, and the tests that hold the code to it.

Every ``import`` of a ``visionlake`` module (module level or inside a function, ``TYPE_CHECKING``
blocks included) is an arrow from one top-level *area* (``visionlake/<area>`` or
``visionlake/<area>.py``) to another; type-only imports obey the layers too, but as they never run
they close no import loop (``keyring`` names ``Lake`` in its signatures while ``lake`` uses the key
ring). The areas sit in layers, lowest first:

======== =============================================== ==========================================
layer    areas                                           role
======== =============================================== ==========================================
base     errors, config, faults, areas                   user-facing errors, settings, crash points
                                                         for tests, the list of areas (by module
                                                         name: tables, routes, CLI groups, lake
                                                         hooks, encrypted columns) and extras
core     crypto, keyring, imageio, models, catalog,      encryption and the lake key, image input,
         index, lakefiles, locks, resync, lake           model files, catalog tables, vector
                                                         indexes, atomic lake files, write locks,
                                                         index resync (areas' spaces reached through
                                                         visionlake.areas), the lake folder; may use
                                                         each other (no cycles)
plug-ins analysers                                       the analyser interface ingestion runs
library  faces, fashion, trends, ingest                  what the product does; independent of
                                                         each other (faces never imports ingest)
service  service, check                                  HTTP API over the library; lake check and
                                                         repair (read every area)
bench    bench                                           measurements of the library and service
                                                         (never imported by them)
cli      cli                                             the command line over all of the above
entry    __main__, visionlake (the lazy facade)          ``python -m visionlake``; the public names
======== =============================================== ==========================================

An area may import its own modules and any area of a *lower* layer; inside ``core`` areas may
import each other as long as no cycle forms; anything else (a lower layer importing a higher one,
two library areas importing each other) is a fault, reported with the file, line and import.
Areas that must reach a higher layer at run time do it by module name through the one list in
:mod:`visionlake.areas` (catalog tables, service routes, CLI groups) or the analyser registry.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

import visionlake

PACKAGE_DIR = Path(visionlake.__file__).parent
TESTS_DIR = Path(__file__).parent

#: (layer, areas, whether areas of this layer may import each other). Lowest layer first.
LAYERS: list[tuple[str, frozenset[str], bool]] = [
    ("base", frozenset({"errors", "config", "faults", "areas"}), True),
    ("core", frozenset({"crypto", "keyring", "imageio", "models", "catalog", "index", "lakefiles", "locks", "resync",
                        "lake"}), True),
    ("plug-ins", frozenset({"analysers"}), False),
    ("library", frozenset({"faces", "fashion", "trends", "ingest"}), False),
    ("service", frozenset({"service", "check"}), False),
    ("bench", frozenset({"bench"}), False),
    ("cli", frozenset({"cli"}), False),
    ("entry", frozenset({"__main__", "visionlake"}), False),
]
RANK = {area: i for i, (_layer, areas, _peers) in enumerate(LAYERS) for area in areas}
LAYER_OF = {area: layer for layer, areas, _peers in LAYERS for area in areas}
PEERS_OK = {layer: peers for layer, _areas, peers in LAYERS}


@dataclass(frozen=True)
class Import:
    """One import statement: where it is and which visionlake module it names."""

    source: str  # importing module, e.g. visionlake.faces.detect
    path: Path
    line: int
    target: str  # imported module, e.g. visionlake.imageio
    typing_only: bool = False  # inside ``if TYPE_CHECKING:``: never runs

    def __str__(self) -> str:
        return f"{self.path.relative_to(PACKAGE_DIR.parent)}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def area_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "visionlake"


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE_DIR.parent / rel).is_dir() or (PACKAGE_DIR.parent / rel).with_suffix(".py").is_file()


def imports_of(path: Path) -> list[Import]:
    """Every visionlake import in a file (any depth in the syntax tree), relative ones resolved."""
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    out = []
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # "from visionlake import faces" names the sub-package, not the facade
            targets = list(dict.fromkeys(f"{mod}.{a.name}" if _is_module(f"{mod}.{a.name}") else mod
                                         for a in node.names))
        else:
            continue
        out += [Import(source, path, node.lineno, t, id(node) in typing_only)
                for t in targets if t.split(".")[0] == "visionlake"]
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    edges = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        edges += imports_of(path)
    assert len(edges) > 100, "the import scan found too few imports: is the package layout unchanged?"
    return edges


def test_every_area_has_a_layer(graph: list[Import]) -> None:
    areas = {area_of(module_name(p)) for p in PACKAGE_DIR.rglob("*.py")}
    unknown = sorted(areas - set(RANK))
    assert not unknown, f"new top-level area(s) {unknown}: add them to LAYERS in tests/test_architecture.py"


def layering_faults(edges: list[Import]) -> list[str]:
    faults = []
    for imp in edges:
        a, b = area_of(imp.source), area_of(imp.target)
        if a == b or a not in RANK or b not in RANK:  # unknown areas: test_every_area_has_a_layer
            continue
        if RANK[b] > RANK[a]:
            faults.append(f"{imp}: {a} ({LAYER_OF[a]}) may not import {b} ({LAYER_OF[b]}, a higher layer)")
        elif RANK[b] == RANK[a] and not PEERS_OK[LAYER_OF[a]]:
            faults.append(f"{imp}: {a} and {b} are both {LAYER_OF[a]} areas and must not import each other")
    return faults


def test_no_import_from_a_lower_layer_to_a_higher_one(graph: list[Import]) -> None:
    faults = layering_faults(graph)
    assert not faults, "imports against the layers:\n  " + "\n  ".join(faults)


def area_cycles(edges: list[Import]) -> list[str]:
    """Each cycle among areas once, written with one import that makes each of its arrows."""
    witness: dict[tuple[str, str], Import] = {}
    succ: dict[str, set[str]] = defaultdict(set)
    for imp in edges:
        a, b = area_of(imp.source), area_of(imp.target)
        if a != b and not imp.typing_only:  # a type-only import never runs, so it closes no loop
            succ[a].add(b)
            witness.setdefault((a, b), imp)
    cycles, seen = [], set()

    def walk(node: str, stack: list[str]) -> None:
        for nxt in sorted(succ[node]):
            if nxt in stack:
                loop = stack[stack.index(nxt):] + [nxt]
                key = frozenset(loop)
                if key not in seen:
                    seen.add(key)
                    cycles.append(" -> ".join(loop) + "\n    "
                                  + "\n    ".join(str(witness[(x, y)]) for x, y in zip(loop, loop[1:], strict=False)))
            elif len(stack) < len(RANK):
                walk(nxt, [*stack, nxt])

    for start in sorted(succ):
        walk(start, [start])
    return cycles


def test_no_cycle_between_areas(graph: list[Import]) -> None:
    cycles = area_cycles(graph)
    assert not cycles, "import cycles between areas:\n  " + "\n  ".join(cycles)


def test_the_checks_name_the_offending_import(graph: list[Import]) -> None:
    """The checks above do fire: a faces module importing ingestion, and a core <-> library loop."""
    back = Import("visionlake.faces.detect", PACKAGE_DIR / "faces" / "detect.py", 7, "visionlake.ingest.validate")
    assert layering_faults([back]) == [
        "visionlake/faces/detect.py:7 imports visionlake.ingest.validate: faces and ingest are both library "
        "areas and must not import each other"]
    up = Import("visionlake.lake", PACKAGE_DIR / "lake.py", 3, "visionlake.faces.gallery")
    assert "lake (core) may not import faces (library, a higher layer)" in layering_faults([up])[0]
    down = Import("visionlake.faces.gallery", PACKAGE_DIR / "faces" / "gallery.py", 9, "visionlake.lake")
    (cycle,) = area_cycles([up, down])
    assert cycle.startswith("faces -> lake -> faces") and "visionlake/lake.py:3 imports visionlake.faces" in cycle
    # imports inside functions count: the service starts ingestion jobs from inside a method
    assert any(i.source == "visionlake.service.jobs" and i.target == "visionlake.ingest" for i in graph)
    # type-only imports obey the layers but close no loop
    typed = Import("visionlake.keyring", PACKAGE_DIR / "keyring.py", 5, "visionlake.lake", typing_only=True)
    uses = Import("visionlake.lake", PACKAGE_DIR / "lake.py", 6, "visionlake.keyring")
    assert area_cycles([typed, uses]) == [] and len(area_cycles([replace(typed, typing_only=False), uses])) == 1
    assert any(i.typing_only and i.source == "visionlake.keyring" and i.target == "visionlake.lake" for i in graph)


def test_every_import_of_our_own_code_resolves() -> None:
    """Each ``from visionlake.x import y`` anywhere (function-level ones included, which run only when
    their function does) names a module that exists and a name it defines: a typo fails here."""
    broken = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            ours = isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "visionlake"
            if not ours or node.level:
                continue
            where = f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno}"
            try:
                mod = importlib.import_module(node.module)
            except ImportError as exc:
                broken.append(f"{where}: {node.module}: {exc}")
                continue
            broken += [f"{where}: {node.module} has no {a.name!r}" for a in node.names
                       if not hasattr(mod, a.name) and not _is_module(f"{node.module}.{a.name}")]
    assert not broken, "imports that cannot work:\n  " + "\n  ".join(broken)


def test_bench_is_a_library_without_the_command_line(graph: list[Import]) -> None:
    """bench/ never imports Typer or the CLI: ``visionlake bench ...`` lives in cli/bench_*.py."""
    offenders = [str(i) for i in graph if area_of(i.source) == "bench" and area_of(i.target) == "cli"]
    for path in sorted((PACKAGE_DIR / "bench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno} imports {n}"
                          for n in names if n.split(".")[0] == "typer"]
    assert not offenders, offenders


# ------------------------------------------------------------------ no silently missing areas


def test_every_area_module_is_there_and_imports() -> None:
    """Each module named by the one list of areas imports (a typo fails here, not as a missing feature)."""
    from visionlake.areas import AREAS, resolve

    assert [a.name for a in AREAS] == ["faces", "fashion", "trends"]
    for area in AREAS:
        for module in filter(None, (area.tables, area.routes, area.cli)):
            importlib.import_module(module)
        for ref in filter(None, (area.on_lake_open, *(s.model for s in area.sealed),
                                 *(r for _n, r in area.analysers))):
            assert resolve(ref) is not None, ref
        for sealed in area.sealed:
            assert hasattr(resolve(sealed.model), sealed.column) and hasattr(resolve(sealed.model), sealed.id_column)


def test_a_broken_area_fails_the_service_cli_and_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A route, CLI or table module that does not import raises; it is never skipped or unmounted."""
    import visionlake.areas as areas_mod
    import visionlake.catalog.db as db
    import visionlake.cli as cli
    import visionlake.service.app as app_mod
    from visionlake.areas import Area

    broken = Area("faces", "x", "visionlake.faces.modelz", "visionlake.service.routes.facez", "visionlake.cli.facez")
    monkeypatch.setattr(app_mod, "AREAS", (broken,))
    with pytest.raises(ModuleNotFoundError, match="visionlake.service.routes.facez"):
        app_mod.create_app(tmp_path / "lake")
    monkeypatch.setattr(areas_mod, "AREAS", (broken,))
    monkeypatch.setattr(cli, "_APP", None)
    with pytest.raises(ModuleNotFoundError, match="visionlake.cli.facez"):
        cli.build_app()
    monkeypatch.setattr(db, "MODEL_MODULES", [*db.MODEL_MODULES, "visionlake.faces.modelz"])
    with pytest.raises(ModuleNotFoundError, match="visionlake.faces.modelz"):
        db.ensure_schema(db.create_catalog_engine(db.sqlite_url(tmp_path / "c.db")))


def test_a_missing_extra_is_named_and_our_own_modules_are_not_extras() -> None:
    from visionlake.areas import missing_extra

    assert missing_extra(ModuleNotFoundError("No module named 'pymilvus'", name="pymilvus")) == "milvus"
    assert missing_extra(ModuleNotFoundError("x", name="open_clip.factory")) == "clip"
    assert missing_extra(ModuleNotFoundError("x", name="psycopg")) == "postgres"
    assert missing_extra(ModuleNotFoundError("x", name="visionlake.faces.gallery")) is None


# ------------------------------------------------------------------ tests that would hide a broken import


def test_no_test_skips_when_a_visionlake_module_fails_to_import() -> None:
    """``importorskip('visionlake...')`` or ``try: import visionlake... except ImportError: skip`` turns a
    regression into "skipped"; only third-party extras may be skipped that way."""
    offenders = []
    for path in sorted(TESTS_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip" and node.args
                    and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("visionlake")):
                offenders.append(f"{path.relative_to(TESTS_DIR)}:{node.lineno} importorskip({node.args[0].value!r})")
            if isinstance(node, ast.Try):
                imports_ours = any(
                    (isinstance(n, ast.ImportFrom) and (n.module or "").startswith("visionlake"))
                    or (isinstance(n, ast.Import) and any(a.name.startswith("visionlake") for a in n.names))
                    for stmt in node.body for n in ast.walk(stmt))
                skips = any(isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "skip"
                            for h in node.handlers for stmt in h.body for n in ast.walk(stmt))
                if imports_ours and skips:
                    offenders.append(f"{path.relative_to(TESTS_DIR)}:{node.lineno} skips when a visionlake "
                                     "import fails")
    assert not offenders, offenders
