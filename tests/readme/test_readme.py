"""The README's CLI tour and Python example, run verbatim (issue 14: every README line works as written).

The commands are read from the README at test time, so lines other people add to the tour are run
too. They run with bash, one after the other in one shell (variables carry over), in a sandbox laid
out like a checkout:

    sandbox/repo/            the working folder: .venv -> this interpreter's environment, and the
                             photos the tour names (photo.jpg, a.jpg, ada1.jpg, look.jpg...), made
                             from LFW and the product photos
    sandbox/shared/data/     a small copy of ../shared/data (symlinks): 36 product photos of three
                             article types, 4 LFW pairs (one matched and one mismatched in each of 2
                             folds), the first 1,500 StreetStyle rows. Each line's behaviour does not
                             depend on the size; small data keeps the tour in the heavy tier's budget
    sandbox/home/            $HOME, so ``~/photos`` is a folder of LFW faces

Models that would be downloaded are replaced through the same code path: ``VISIONLAKE_FASHION_MODEL``
points the fashion tagger at the tests' tiny ONNX model. ``serve`` lines run in the background on a
free port (the tour's 8000 may be taken on a shared machine) until ``/health`` answers, then stop.
Any line that exits non-zero fails the test, naming the line.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from visionlake.config import shared_data_dir

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
IMAGE_EXT = (".jpg", ".jpeg", ".png")
LFW_FOLDS = 2  # cross-validation needs at least two folds; each fold costs the tour's `bench lfw --peer` 8 photos
PRODUCTS_PER_TYPE = 12  # enough for the fashion heads' stratified cross-validation (folds <= the rarest class)



# ------------------------------------------------------------------------------------- README parsing
def readme_block(heading: str, lang: str) -> str:
    """The first fenced ``lang`` block after the ``## heading`` line."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {heading}")
    m = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, start)
    assert m, f"no ```{lang} block under '## {heading}'"
    return m.group(1)


def tour_commands(block: str) -> list[str]:
    """Logical command lines: continuation lines joined, blank lines dropped, comments kept (bash
    ignores them)."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1].rstrip()
            continue
        if line.strip():
            out.append(line.strip())
    assert not pending, "the block ends with a continuation line"
    return out


def test_tour_parsing_joins_continuations():
    cmds = tour_commands("a \\\n   b --x\n\n# note\nc  # why\n")
    assert cmds == ["a b --x", "# note", "c  # why"]


def test_tour_names_only_existing_commands_and_options():
    """Fast, without data: every ``visionlake ...`` line of the tour names a real command and options it
    has (the full run below is in the heavy tier)."""
    import typer

    from visionlake.cli import build_app

    root = typer.main.get_command(build_app())
    root_opts = {o for p in root.params for o in p.opts}
    checked = 0
    for line in tour_commands(readme_block("A tour of the CLI", "bash")):
        words = shlex.split(line, comments=True)
        if not words or Path(words[0]).name != "visionlake":
            continue
        cmd, rest = root, words[1:]
        while rest and rest[0] in root_opts:  # root options such as --lake PATH
            rest = rest[2:]
        while getattr(cmd, "commands", None) and rest and rest[0] in cmd.commands:
            cmd, rest = cmd.commands[rest[0]], rest[1:]
        assert not getattr(cmd, "commands", None), f"'{line}' names no command"
        known = {o for p in cmd.params for o in [*p.opts, *p.secondary_opts]} | {"--help"}
        for w in rest:
            if w.startswith("-") and w != "-":
                assert w.split("=")[0] in known, f"'{line}': {cmd.name} has no option {w}"
        checked += 1
    assert checked >= 20


# ------------------------------------------------------------------------------------------ sandbox
def _words(cmds: list[str]) -> list[str]:
    words: list[str] = []
    for c in cmds:
        try:
            words += shlex.split(c, comments=True)
        except ValueError:
            words += c.split()
    return words


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        dst.symlink_to(src)


def _small_shared(data: Path, root: Path) -> None:
    """A small ../shared/data: same folders and file names, far fewer files."""
    lfw = data / "lfw"
    # LFW: in the first LFW_FOLDS folds, its first matched and first mismatched pair of the real pairs.txt
    lines = (lfw / "pairs.txt").read_text().splitlines()
    n_folds, n_per = (int(x) for x in lines[0].split())
    n_folds = min(n_folds, LFW_FOLDS)
    keep: list[str] = []
    for f in range(n_folds):
        fold = lines[1 + f * 2 * n_per: 1 + (f + 1) * 2 * n_per]
        keep += [fold[0], fold[n_per]]
    out = root / "lfw"
    out.mkdir(parents=True)
    (out / "pairs.txt").write_text(f"{n_folds}\t1\n" + "\n".join(keep) + "\n")
    for ln in keep:
        t = ln.split()
        pairs = [(t[0], t[1]), (t[0], t[2])] if len(t) == 3 else [(t[0], t[1]), (t[2], t[3])]
        for name, n in pairs:
            rel = Path("images") / name / f"{name}_{int(n):04d}.jpg"
            _link(lfw / rel, out / rel)
    for name in ("pairsDevTrain.txt", "pairsDevTest.txt", "SOURCE.md"):
        if (lfw / name).exists():
            _link(lfw / name, out / name)
    # products: the three commonest article types (so that heads can be cross-validated), a few each
    prod = data / "fashion_products"
    with open(prod / "styles.csv", newline="", encoding="utf-8", errors="replace") as fh:
        rows = [r for r in csv.DictReader(fh) if (prod / "images" / f"{r['id']}.jpg").exists()]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["articleType"]] = counts.get(r["articleType"], 0) + 1
    common = sorted(counts, key=counts.get, reverse=True)[:3]
    taken = {t: 0 for t in common}
    for r in rows:
        t = r["articleType"]
        if t in taken and taken[t] < PRODUCTS_PER_TYPE:
            taken[t] += 1
            _link(prod / "images" / f"{r['id']}.jpg", root / "fashion_products" / "images" / f"{r['id']}.jpg")
    _link(prod / "styles.csv", root / "fashion_products" / "styles.csv")
    # StreetStyle: the first 1,500 looks
    ss = data / "streetstyle27k"
    (root / "streetstyle27k").mkdir()
    for f in ss.glob("*.csv"):
        with open(f, encoding="utf-8", errors="replace") as src:
            head = [next(src, "") for _ in range(1501)]
        (root / "streetstyle27k" / f.name).write_text("".join(head))
    # the forecast data (HERMES) as it is: small tables
    if (data / "forecast").exists():
        _link(data / "forecast", root / "forecast")


def _faces(lfw_images: Path) -> dict[str, list[Path]]:
    """Two people with several photos each (from the real LFW)."""
    people = {}
    for name in ("George_W_Bush", "Colin_Powell", "Tony_Blair"):
        people[name] = sorted((lfw_images / name).glob("*.jpg"))
    return people


def _make_named_files(words: list[str], cwd: Path, home: Path, faces: dict[str, list[Path]], products: Path) -> None:
    """Create every photo, folder and table the commands name that does not exist yet."""
    bush, powell, blair = faces["George_W_Bush"], faces["Colin_Powell"], faces["Tony_Blair"]
    face_cycle = iter(bush[10:])
    product_photos = sorted(products.glob("*.jpg"))
    for w in words:
        if w.startswith("-") or "=" in w or "$" in w:
            continue
        if w.startswith("~/"):
            folder = home / w[2:]
            if not folder.suffix and not folder.exists():  # a folder of photos: two people, several each
                for i, p in enumerate(powell[:4] + blair[:4] + bush[:2]):
                    _link(p, folder / f"{i:02d}_{p.name}")
            continue
        if "/" in w or not w.lower().endswith(IMAGE_EXT):
            continue
        dst = cwd / w
        if dst.exists():
            continue
        stem = dst.stem.lower()
        if stem.startswith(("look", "product", "dress", "garment")):
            src = product_photos[0]
        elif stem.startswith(("ada", "probe")):  # one person: enrolled, then identified
            src = bush[{"ada1": 0, "ada2": 1}.get(stem, 2)]
        elif stem in ("a", "b"):  # a pair of the same person
            src = powell[0 if stem == "a" else 1]
        else:
            src = next(face_cycle)
        _link(src, dst)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVE_WAIT = r'''
_ok=1
for _i in $(seq 1 240); do
  if "$VL_PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:%(port)d/health', timeout=1)" \
      2>/dev/null; then _ok=0; break; fi
  kill -0 $_srv 2>/dev/null || break  # the server ended by itself: its exit status is the answer
  sleep 0.25
done
if [ $_ok -eq 0 ]; then kill $_srv; wait $_srv 2>/dev/null; else wait $_srv; _st=$?; echo "serve ended: $_st" >&2; fi
[ $_ok -eq 0 ]'''


CHECK = ("_rc=$?; echo \"::: exit $_rc after $((SECONDS - _s)) s\" >&2; "
         "if [ $_rc -ne 0 ]; then echo 'FAILED ('$_rc'):' %(label)s >&2; exit 97; fi")


def build_script(cmds: list[str]) -> str:
    """One bash script: each line verbatim, then a check of its exit status naming the line."""
    parts = ["set -u"]
    for i, c in enumerate(cmds):
        if c.startswith("#"):
            continue
        label = shlex.quote(c)
        parts.append(f"echo '::: line {i + 1}:' {label} >&2; _s=$SECONDS")
        if re.match(r"^(\S*/)?visionlake\s+serve\b", c):
            port = _free_port()
            served = re.sub(r"--port[ =]\d+", f"--port {port}", c.split(" #")[0])
            if "--port" not in served:
                served += f" --port {port}"
            parts.append(f"{served} >&2 &\n_srv=$!")
            parts.append(SERVE_WAIT % {"port": port})
            parts.append(CHECK % {"label": label})
            continue
        parts.append(c)
        parts.append(CHECK % {"label": label})
    return "\n".join(parts) + "\n"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    data = shared_data_dir()
    needed = [data / "lfw" / "pairs.txt", data / "fashion_products" / "styles.csv", data / "streetstyle27k"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        pytest.skip(f"real data not found ({', '.join(missing)}): set VISIONLAKE_DATA to run the README tour")
    pytest.importorskip("onnx", reason="the tiny fashion test model needs the onnx package")
    from visionlake.fashion.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("readme")
    shared = root / "shared" / "data"
    _small_shared(data, shared)
    repo = root / "repo"
    repo.mkdir()
    (repo / ".venv").symlink_to(Path(sys.prefix))
    home = root / "home"
    home.mkdir()
    model = build_tiny_model(root / "tiny-fashion-model")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISIONLAKE_")}
    env.update({
        "HOME": str(home),
        "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        "VISIONLAKE_FASHION_MODEL": str(model),
        "VISIONLAKE_DATA": str(shared),
        "VL_PY": sys.executable,
        "COLUMNS": "100",
        "PYTHONUNBUFFERED": "1",
    })
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix))
    return {"repo": repo, "home": home, "shared": shared, "env": env, "faces": _faces(data / "lfw" / "images")}


@pytest.mark.heavy
@pytest.mark.shared_data
def test_readme_cli_tour_runs_line_by_line(sandbox):
    cmds = tour_commands(readme_block("A tour of the CLI", "bash"))
    assert any(c.startswith("visionlake ") for c in cmds)
    _make_named_files(_words(cmds), sandbox["repo"], sandbox["home"], sandbox["faces"],
                      sandbox["shared"] / "fashion_products" / "images")
    script = build_script(cmds)
    (sandbox["repo"].parent / "tour.sh").write_text(script)
    r = subprocess.run(["bash", str(sandbox["repo"].parent / "tour.sh")], cwd=sandbox["repo"], env=sandbox["env"],
                       capture_output=True, text=True, timeout=1500)
    log = REPO / "test-output" / "readme-tour.log"  # per-line exit codes and seconds, for a look afterwards
    log.parent.mkdir(exist_ok=True)
    log.write_text(r.stderr)
    failed = [ln for ln in r.stderr.splitlines() if ln.startswith("FAILED")]
    assert r.returncode == 0, "\n".join(failed or [f"exit {r.returncode}"]) + "\n--- stderr (end):\n" + r.stderr[-4000:]
    assert "Traceback" not in r.stderr, r.stderr[-4000:]
    # what the tour promises is there: the report out of the repository root, the lake in ./lake
    assert (sandbox["repo"] / "lake" / "lake.json").exists()
    reports = list((sandbox["repo"] / "reports").glob("*.html")) if (sandbox["repo"] / "reports").exists() else []
    if any(" trends report" in c for c in cmds):
        assert reports, "trends report wrote no file under reports/"
        assert not list(sandbox["repo"].glob("*.html")), "a report was written into the repository root"


def _python_cwd(sandbox, code: str, cwd: Path) -> Path:
    """A folder with the photos, the photo folder and the table the example names."""
    cwd.mkdir()
    words = re.findall(r'"([^"]+)"', code)
    products = sandbox["shared"] / "fashion_products" / "images"
    _make_named_files([w for w in words if w.lower().endswith(IMAGE_EXT)], cwd, sandbox["home"], sandbox["faces"],
                      products)
    for w in words:
        if w.endswith("/") and not (cwd / w).exists():  # a folder of photos to ingest
            for p in sorted(products.glob("*.jpg"))[:12]:
                _link(p, cwd / w / p.name)
        elif w.endswith(".csv") and not (cwd / w).exists():
            _link(sandbox["shared"] / "fashion_products" / "styles.csv", cwd / w)
    return cwd


@pytest.mark.heavy
@pytest.mark.shared_data
def test_readme_python_example_runs_verbatim(sandbox, tmp_path):
    """The block runs verbatim, then (in the same process, so the block runs once, not twice) the names
    mean what the README says."""
    code = readme_block("Python API", "python")
    done = "::: the README block ran"
    check = code + (
        f"\nprint({done!r}, flush=True)"
        "\nassert callable(vl.ingest) and report['ingested'] > 0, report"
        "\nt, rgt, b, lft = boxes[0]; assert t < b and lft < rgt, boxes"
        "\nassert vl.compare_faces(known, enc[0]) == [True]"
        "\nassert vl.compare_faces(known, enc[0], tolerance=0.0) == [False]"
        "\nimport visionlake.ingest.pipeline\nassert callable(vl.ingest)\n"
    )
    r = subprocess.run([sys.executable, "-c", check], cwd=_python_cwd(sandbox, code, tmp_path / "verbatim"),
                       env=sandbox["env"], capture_output=True, text=True, timeout=600)
    assert done in r.stdout, "the README block failed:\n" + r.stderr[-4000:]
    assert r.returncode == 0, "the README block ran, a check of what it gave failed:\n" + r.stderr[-4000:]
