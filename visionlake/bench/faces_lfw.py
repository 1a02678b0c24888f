"""``visionlake bench lfw`` and ``visionlake bench faces``: face accuracy and speed against the peer.

- ``bench lfw``: LFW View 2 (``pairs.txt``) 10-fold cross-validation, or any labelled pair list
  (``--pairs-csv`` with columns ``a,b,same``). Every pair counts: an image where no face is found is
  scored as a non-match at the maximum distance. With several faces in a photo the largest is used;
  for the LFW pair files (centred crops) the one nearest the image centre.
- ``bench faces``: end-to-end images/s (decode, detect, align, embed every face) on any folder, with
  an optional ``--upscale`` to turn small photos into large ones.

The peer is the ``face_recognition`` package with its documented defaults (HOG detector with one
upsample, ``num_jitters=1``, the small landmark model; Euclidean distance). Both run in the same
number of worker processes, one compute thread each, taking turns over slices of the image list so
that a busy shared machine slows both alike; worker CPU milliseconds per image are reported beside
images/s. Our per-image code is exactly what ingestion runs: ``load_image`` then
``FacePipeline.analyse``.
"""

from __future__ import annotations

import csv
import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visionlake.errors import BadInput

#: Score of a pair where a face is missing: below any cosine similarity (maximum distance).
MISSING_SCORE = -2.0

# ------------------------------------------------------------------------------------ pair lists


@dataclass
class PairList:
    """Labelled pairs of image paths with a fold number each (10 folds)."""

    a: list[str] = field(default_factory=list)
    b: list[str] = field(default_factory=list)
    same: list[bool] = field(default_factory=list)
    fold: list[int] = field(default_factory=list)

    def images(self) -> list[str]:
        """Unique image paths, in first-seen order."""
        return list(dict.fromkeys([*self.a, *self.b]))

    def __len__(self) -> int:
        return len(self.same)


def lfw_image(root: Path, name: str, num: int) -> str:
    """Path of LFW image ``num`` of ``name`` (``images/Name/Name_0001.jpg``)."""
    base = root / "images" if (root / "images").is_dir() else root
    return str(base / name / f"{name}_{num:04d}.jpg")


def read_lfw_pairs(path: Path, root: Path) -> PairList:
    """LFW pair files: ``pairs.txt`` (header ``10 300``, folds of 300 matched + 300 mismatched) or the
    View 1 files without header (all matched lines, then all mismatched; folds are assigned round-robin).
    """
    if not path.exists():
        raise BadInput(f"pairs file not found: {path}")
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    per_fold = None
    if lines and len(lines[0]) == 2 and all(t.isdigit() for t in lines[0]):
        n_folds, n_per = int(lines[0][0]), int(lines[0][1])
        per_fold = 2 * n_per
        lines = lines[1:]
        if len(lines) != n_folds * per_fold:
            raise BadInput(f"{path}: header says {n_folds}x{per_fold} pairs, found {len(lines)}")
    pairs = PairList()
    for i, t in enumerate(lines):
        if len(t) == 3:
            pairs.a.append(lfw_image(root, t[0], int(t[1])))
            pairs.b.append(lfw_image(root, t[0], int(t[2])))
            pairs.same.append(True)
        elif len(t) == 4:
            pairs.a.append(lfw_image(root, t[0], int(t[1])))
            pairs.b.append(lfw_image(root, t[2], int(t[3])))
            pairs.same.append(False)
        else:
            raise BadInput(f"{path}: line {i + 1} is neither 'name n1 n2' nor 'name1 n1 name2 n2'")
        pairs.fold.append(i // per_fold if per_fold else i % 10)
    return pairs


def read_pairs_csv(path: Path, root: Path) -> PairList:
    """A CSV with columns ``a,b,same`` (paths relative to ``root``; same is 1/0/true/false)."""
    if not path.exists():
        raise BadInput(f"pairs CSV not found: {path}")
    pairs = PairList()
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"a", "b", "same"} - set(reader.fieldnames or [])
        if missing:
            raise BadInput(f"{path}: missing column(s) {sorted(missing)}; need a,b,same")
        for i, row in enumerate(reader):
            flag = str(row["same"]).strip().lower()
            if flag not in ("1", "0", "true", "false", "yes", "no"):
                raise BadInput(f"{path}: row {i + 2}: 'same' must be 1/0/true/false, got {row['same']!r}")
            pairs.a.append(str(root / row["a"]))
            pairs.b.append(str(root / row["b"]))
            pairs.same.append(flag in ("1", "true", "yes"))
            pairs.fold.append(i % 10)
    if not pairs.same:
        raise BadInput(f"{path}: no pairs")
    return pairs


# ------------------------------------------------------------------------------------ scoring


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold (predict same when score >= t) with the highest accuracy on these pairs."""
    s = np.unique(scores)
    cands = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2.0, [s[-1] + 1e-6]])
    # accuracy for every candidate at once via sorting
    order = np.argsort(scores)
    ss, yy = scores[order], same[order]
    pos_below = np.searchsorted(ss, cands, side="left")  # pairs with score < t
    cum_pos = np.concatenate([[0], np.cumsum(yy)])
    cum_neg = np.concatenate([[0], np.cumsum(~yy)])
    correct = cum_neg[pos_below] + (cum_pos[-1] - cum_pos[pos_below])
    return float(cands[int(np.argmax(correct))])


def cross_validate(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    """10-fold CV: threshold chosen on 9 folds, accuracy on the 10th; mean and std of the folds."""
    accs = []
    for f in np.unique(folds):
        test = folds == f
        t = best_threshold(scores[~test], same[~test])
        accs.append(float(np.mean((scores[test] >= t) == same[test])))
    return float(np.mean(accs)), float(np.std(accs))


def view1_threshold_report(view1: PairList, view2: PairList, vectors: dict[str, np.ndarray | None],
                           metric: str) -> dict[str, Any]:
    """Accuracy on all of View 2 at ONE threshold chosen on View 1 alone (no View 2 pair chooses it).

    The 10-fold protocol picks each fold's threshold on the other nine View 2 folds; this is the
    stricter reading (View 1 for every choice, View 2 only to report), and shows whether a setting
    such as flip-added embeddings needs its own threshold or merely shifts the scores.
    """
    s1 = score_pairs(view1, vectors, metric)
    same1 = np.asarray(view1.same, dtype=bool)
    t = best_threshold(s1, same1)
    s2 = score_pairs(view2, vectors, metric)
    same2 = np.asarray(view2.same, dtype=bool)
    return {
        "threshold": round(float(t), 5) if metric == "cosine" else round(float(-t), 5),
        "threshold_kind": "cosine, same when >=" if metric == "cosine" else "euclidean, same when <=",
        "view1_pairs": len(view1),
        "view1_accuracy": round(float(np.mean((s1 >= t) == same1)), 5),
        "view2_pairs": len(view2),
        "accuracy_view2": round(float(np.mean((s2 >= t) == same2)), 5),
    }


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> float:
    """True accept rate at the threshold where at most ``far`` of the impostor pairs are accepted."""
    imp = np.sort(scores[~same])[::-1]
    gen = scores[same]
    if len(imp) == 0 or len(gen) == 0:
        return float("nan")  # reported as null
    allowed = int(math.floor(far * len(imp)))
    # accept strictly above the (allowed+1)-th highest impostor score
    t = imp[allowed] if allowed < len(imp) else -np.inf
    return float(np.mean(gen > t))


# ------------------------------------------------------------------------------------ workers

_WORKER: dict[str, Any] = {}


def _init_worker(kind: str, opts: dict[str, Any]) -> None:
    """Load models once per worker process (one compute thread each, for a fair comparison)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER.clear()
    _WORKER["kind"] = kind
    _WORKER["pick"] = opts.get("pick", "largest")
    _WORKER["stages"] = {"decode_s": 0.0}
    if kind == "ours":
        from visionlake.faces.pipeline import FacePipeline

        popts = {k: v for k, v in opts.items() if k not in ("pick",)}
        _WORKER["pipeline"] = FacePipeline(threads=1, **popts)
    else:
        import face_recognition

        _WORKER["fr"] = face_recognition
    _WORKER["cpu0"] = time.process_time()


def _pick(boxes: list[tuple[int, int, int, int]], size: tuple[int, int], rule: str) -> int:
    """Index of the face to use: the largest, or the one whose centre is nearest the image centre."""
    if rule == "centre":
        cx, cy = size[0] / 2.0, size[1] / 2.0
        d = [((b[0] + b[2]) / 2 - cx) ** 2 + ((b[1] + b[3]) / 2 - cy) ** 2 for b in boxes]
        return int(np.argmin(d))
    return int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))


def _process(path: str) -> tuple[str, np.ndarray | None, int, str | None]:
    """One image: (path, vector of the picked face or None, faces found, error)."""
    t0 = time.perf_counter()
    try:
        if _WORKER["kind"] == "ours":
            from visionlake.faces.pipeline import load_image

            img = load_image(path)
            _WORKER["stages"]["decode_s"] += time.perf_counter() - t0
            found = _WORKER["pipeline"].analyse(img)
            if not found:
                return path, None, 0, None
            i = _pick([f.box for f, _ in found], img.size, _WORKER["pick"])
            return path, found[i][1], len(found), None
        fr = _WORKER["fr"]
        arr = fr.load_image_file(path)
        _WORKER["stages"]["decode_s"] += time.perf_counter() - t0
        locs = fr.face_locations(arr)
        if not locs:
            return path, None, 0, None
        encs = fr.face_encodings(arr, locs, num_jitters=1, model="small")
        boxes = [(left, top, right, bottom) for top, right, bottom, left in locs]
        i = _pick(boxes, (arr.shape[1], arr.shape[0]), _WORKER["pick"])
        return path, np.asarray(encs[i], dtype=np.float32), len(locs), None
    except Exception as exc:  # a bad file is reported, never aborts the benchmark
        return path, None, 0, f"{type(exc).__name__}: {exc}"


def _warm(_: int) -> int:
    time.sleep(0.2)
    return os.getpid()


def _stats(_: int) -> dict[str, Any]:
    import resource

    time.sleep(0.2)
    out = dict(_WORKER["stages"])
    if "pipeline" in _WORKER:
        out.update(_WORKER["pipeline"].timings)
    out["pid"] = os.getpid()
    out["cpu"] = time.process_time() - _WORKER.get("cpu0", 0.0)
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


@dataclass
class RunResult:
    """Vectors per image and throughput of one side (ours or the peer)."""

    vectors: dict[str, np.ndarray | None]
    faces_found: int
    images_without_face: int
    errors: list[str]
    seconds: float
    stages: dict[str, float]
    peak_rss_mb: float  # sum over the side's worker processes of each one's peak RSS
    cpu_ms_per_image: float = float("nan")  # worker CPU time per image, model loading excluded
    workers_seen: int = 0

    @property
    def images_per_s(self) -> float:
        return len(self.vectors) / self.seconds if self.seconds > 0 else float("nan")


def _stderr_progress(total: int) -> Callable[..., None]:
    """Plain progress lines on stderr (stdout may carry JSON), one per label change."""
    state = {"done": 0, "label": None}

    def advance(n: int = 1, total: int | None = None, label: str | None = None) -> None:
        state["done"] += n
        if label != state["label"]:
            state["label"] = label
            print(f"{label}: {state['done']}/{total} images", file=sys.stderr, flush=True)

    return advance


def run_sides(sides: list[tuple[str, dict[str, Any]]], paths: list[str], workers: int,
              rounds: int = 10, progress: Callable[..., None] | bool | None = None) -> list[RunResult]:
    """Process every path with each side (ours, peer) in its own pool of ``workers`` processes.

    The paths are split into ``rounds`` slices and the sides take turns slice by slice, so that a
    shared machine's changing load hits both sides alike; each side's time is the sum of its turns.
    ``progress`` is called once per image as ``progress(1, label=...)`` (the CLI passes a Rich bar on
    stderr, so it also shows with ``--json``); ``True`` prints a line per round on stderr.
    CPU seconds per image (from the workers, model loading excluded) are reported too: they do not
    depend on what else the machine is doing.
    """
    workers = max(1, int(workers))
    ctx = mp.get_context("spawn")  # same start method for both sides; no model state is inherited
    n_rounds = max(1, min(int(rounds), len(paths)))
    slices = [paths[i::n_rounds] for i in range(n_rounds)]
    pools = [ctx.Pool(workers, initializer=_init_worker, initargs=(kind, opts)) for kind, opts in sides]
    advance = _stderr_progress(len(paths) * len(sides)) if progress is True else (progress or None)
    if advance is not None:
        advance(0, total=len(paths) * len(sides))
    try:
        for pool in pools:
            pool.map(_warm, range(workers * 2), chunksize=1)
        state = [{"vectors": {}, "faces": 0, "errors": [], "seconds": 0.0} for _ in sides]
        for r, part in enumerate(slices):
            for (kind, _), pool, st in zip(sides, pools, state, strict=True):
                chunk = max(1, min(16, len(part) // (workers * 8) or 1))
                t0 = time.perf_counter()
                for path, vec, nfaces, err in pool.imap_unordered(_process, part, chunksize=chunk):
                    st["vectors"][path] = vec
                    st["faces"] += nfaces
                    if err:
                        st["errors"].append(f"{path}: {err}")
                    if advance is not None:
                        advance(1, label=f"{kind}: round {r + 1}/{n_rounds}")
                st["seconds"] += time.perf_counter() - t0
        results = []
        for pool, st in zip(pools, state, strict=True):
            stages: dict[str, float] = {}
            seen: set[int] = set()
            cpu, rss = 0.0, 0.0
            for w in pool.map(_stats, range(workers * 3), chunksize=1):
                if w["pid"] in seen:
                    continue
                seen.add(w["pid"])
                cpu += w["cpu"]
                rss += w["maxrss_mb"]
                for k, v in w.items():
                    if k.endswith("_s"):
                        stages[k] = stages.get(k, 0.0) + v
            vectors = st["vectors"]
            missing = sum(1 for v in vectors.values() if v is None)
            res = RunResult(vectors, st["faces"], missing, st["errors"], st["seconds"],
                            {k: round(v, 3) for k, v in stages.items()}, round(rss, 1))
            res.cpu_ms_per_image = round(1000.0 * cpu / max(1, len(vectors)), 2)
            res.workers_seen = len(seen)
            results.append(res)
        return results
    finally:
        for pool in pools:
            pool.terminate()
            pool.join()


def run_side(kind: str, paths: list[str], workers: int, opts: dict[str, Any],
             progress: bool = False) -> RunResult:
    """One side alone (see ``run_sides``)."""
    return run_sides([(kind, opts)], paths, workers, rounds=1, progress=progress)[0]


def score_pairs(pairs: PairList, vectors: dict[str, np.ndarray | None], metric: str) -> np.ndarray:
    """Similarity per pair (higher = more alike): cosine for ours, minus Euclidean for the peer."""
    out = np.full(len(pairs), MISSING_SCORE, dtype=np.float64)
    for i, (a, b) in enumerate(zip(pairs.a, pairs.b, strict=True)):
        va, vb = vectors.get(a), vectors.get(b)
        if va is None or vb is None:
            continue
        if metric == "cosine":
            out[i] = float(np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb)))
        else:
            out[i] = -float(np.linalg.norm(va - vb))
    if metric != "cosine":  # maximum distance for missing faces: below every real pair
        real = out[out != MISSING_SCORE]
        out[out == MISSING_SCORE] = (real.min() - 1.0) if len(real) else -1.0
    return out


def lfw_report(pairs: PairList, res: RunResult, metric: str) -> dict[str, Any]:
    """The accuracy keys of ``bench lfw`` for one side."""
    scores = score_pairs(pairs, res.vectors, metric)
    same = np.asarray(pairs.same, dtype=bool)
    acc, std = cross_validate(scores, same, np.asarray(pairs.fold))
    return {
        "accuracy": round(acc, 5),
        "accuracy_std": round(std, 5),
        "tar_at_far_1e-3": _num(tar_at_far(scores, same, 1e-3)),
        "pairs": len(pairs),
        "images": len(res.vectors),
        "faces_not_found": res.images_without_face,
        "errors": len(res.errors),
        "images_per_s": round(res.images_per_s, 2),
        "seconds": round(res.seconds, 2),
        "cpu_ms_per_image": res.cpu_ms_per_image,
    }


def _pipeline_opts(pick: str, backend: str, flip: bool | None, max_side: int | None, jitters: int = 0,
                   pack: str = "dlib", upscale: float | None = None) -> dict[str, Any]:
    """Worker pipeline options; a pack's own defaults apply where the user gave nothing."""
    opts: dict[str, Any] = {"pick": pick, "pack": pack}
    if flip is not None:
        opts["flip"] = flip
    if pack == "dlib":
        opts.update({"backend": backend, "jitters": jitters, "max_side": 1024 if max_side is None else max_side})
    elif max_side is not None:
        opts["max_side"] = max_side
    if upscale is not None:
        opts["max_upscale"] = upscale
    return opts


def _method(pack: str) -> str:
    from visionlake.faces.packs import pack_info

    info = pack_info(pack)
    return f"visionlake {info.space or pack} (cosine); licence: {info.licence}"


def _num(v: float, digits: int = 5) -> float | None:
    """JSON has no NaN: undefined values (e.g. TAR without impostor pairs) become null."""
    return None if math.isnan(v) else round(v, digits)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b and not math.isnan(b) and not math.isnan(a) else None


# ------------------------------------------------------------------------------------ bench faces


def list_images(folder: Path, limit: int | None) -> list[str]:
    """Image files under ``folder`` (sorted, recursive), at most ``limit``."""
    from visionlake.config import IMAGE_EXTENSIONS

    if not folder.is_dir():
        raise BadInput(f"{folder} is not a folder of images")
    files = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if limit:
        # spread the sample over the whole folder (LFW is sorted by name: avoid one person only)
        step = max(1, len(files) // limit)
        files = files[::step][:limit]
    if not files:
        raise BadInput(f"no images found under {folder}")
    return files


def upscale_copies(files: Iterable[str], size: int, out_dir: Path) -> list[str]:
    """JPEG copies of ``files`` resized to ``size`` x ``size`` (large-photo benchmark input)."""
    from PIL import Image

    out = []
    for i, f in enumerate(files):
        with Image.open(f) as im:
            big = im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        dst = out_dir / f"{i:06d}.jpg"
        big.save(dst, quality=92)
        out.append(str(dst))
    return out


def faces_report(res: RunResult) -> dict[str, Any]:
    """The keys of ``bench faces`` for one side."""
    return {
        "images": len(res.vectors),
        "images_per_s": round(res.images_per_s, 3),
        "faces_found": res.faces_found,
        "images_without_face": res.images_without_face,
        "errors": len(res.errors),
        "seconds": round(res.seconds, 2),
        "stage_seconds": res.stages,
        "cpu_ms_per_image": res.cpu_ms_per_image,
        "peak_rss_mb": res.peak_rss_mb,
    }


def consistency(small_paths: list[str], small: RunResult, big_paths: list[str],
                big: RunResult) -> dict[str, Any]:
    """Cosine between the vector of each original photo and of its upscaled copy (1.0 = identical)."""
    sims = []
    for a, b in zip(small_paths, big_paths, strict=True):
        va, vb = small.vectors.get(a), big.vectors.get(b)
        if va is not None and vb is not None:
            sims.append(float(np.dot(va, vb)))
    if not sims:
        return {"pairs": 0}
    return {"pairs": len(sims), "mean_cosine": round(float(np.mean(sims)), 4),
            "min_cosine": round(float(np.min(sims)), 4)}


def agreement(ours: RunResult, peer: RunResult, threshold: float = 0.5) -> dict[str, Any]:
    """How often both found a face; not an accuracy, a sanity check that speed did not cost faces."""
    both = sum(1 for p in ours.vectors if ours.vectors[p] is not None and peer.vectors.get(p) is not None)
    only_ours = sum(1 for p in ours.vectors if ours.vectors[p] is not None and peer.vectors.get(p) is None)
    only_peer = sum(1 for p in ours.vectors if ours.vectors[p] is None and peer.vectors.get(p) is not None)
    return {"face_in_both": both, "face_only_ours": only_ours, "face_only_peer": only_peer}


# ------------------------------------------------------------------------------------ runs


def balanced_subset(pairs: PairList, limit: int) -> PairList:
    """At most ``limit`` pairs: half matched, half mismatched, spread over the list (every fold)."""
    same_i = [i for i, v in enumerate(pairs.same) if v]
    diff_i = [i for i, v in enumerate(pairs.same) if not v]
    half = max(1, limit // 2)
    keep = sorted(same_i[:: max(1, len(same_i) // half)][:half]
                  + diff_i[:: max(1, len(diff_i) // half)][:half])
    return PairList([pairs.a[i] for i in keep], [pairs.b[i] for i in keep],
                    [pairs.same[i] for i in keep], [pairs.fold[i] for i in keep])


def run_lfw(data: Path | None = None, pairs_file: str = "pairs.txt", pairs_csv: Path | None = None,
            root: Path | None = None, peer: bool = False, workers: int = 1, pick: str = "auto",
            backend: str = "onnx", flip: bool | None = None, max_side: int | None = None, jitters: int = 0,
            limit: int | None = None, progress: Callable[..., None] | bool = True, pack: str = "dlib",
            upscale: float | None = None, view1_threshold: str = "none") -> dict[str, Any]:
    """LFW 10-fold verification accuracy, TAR at FAR 1e-3 and images/s; optionally vs face_recognition.

    ``view1_threshold`` also reports View 2 accuracy at one threshold chosen on View 1 pairs
    (``pairsDevTrain.txt`` + ``pairsDevTest.txt``) only: ``all`` embeds View 1's 1,355 photos that
    View 2 lacks too (~18% more work); ``shared`` uses only the View 1 pairs whose two photos View 2
    also holds (1,831 of 3,200 pairs, no extra photo) -- for a loaded machine.
    """
    from visionlake.config import shared_data_dir

    if pairs_csv is not None:
        if root is None:
            raise BadInput("--pairs-csv needs --root (the folder its paths are relative to)")
        pairs = read_pairs_csv(pairs_csv, root)
        rule = "largest" if pick == "auto" else pick
    else:
        folder = data or shared_data_dir() / "lfw"
        if not folder.exists():
            raise BadInput(f"LFW folder not found: {folder} (pass --data)")
        pairs = read_lfw_pairs(folder / pairs_file, folder)
        rule = "centre" if pick == "auto" else pick
    if rule not in ("largest", "centre"):
        raise BadInput(f"--pick must be auto, largest or centre, not {pick!r}")
    if limit:
        pairs = balanced_subset(pairs, limit)
    paths = pairs.images()
    view1: PairList | None = None
    if view1_threshold not in ("none", "all", "shared"):
        raise BadInput(f"--view1-threshold must be none, all or shared, not {view1_threshold!r}")
    if view1_threshold != "none":
        if pairs_csv is not None:
            raise BadInput("--view1-threshold needs the LFW folder (pairs files), not --pairs-csv")
        view1 = PairList()
        for name in ("pairsDevTrain.txt", "pairsDevTest.txt"):
            part = read_lfw_pairs(folder / name, folder)
            view1 = PairList(view1.a + part.a, view1.b + part.b, view1.same + part.same, view1.fold + part.fold)
        if view1_threshold == "shared":
            have = set(paths)
            keep = [i for i in range(len(view1)) if view1.a[i] in have and view1.b[i] in have]
            view1 = PairList([view1.a[i] for i in keep], [view1.b[i] for i in keep],
                             [view1.same[i] for i in keep], [view1.fold[i] for i in keep])
        if limit:
            view1 = balanced_subset(view1, limit)
        view2_images = len(paths)
        paths = list(dict.fromkeys([*paths, *view1.images()]))
    absent = [p for p in paths if not Path(p).exists()]
    if absent:
        raise BadInput(f"{len(absent)} image(s) named by the pairs do not exist, e.g. {absent[0]}")
    opts = _pipeline_opts(rule, backend, flip, max_side, jitters, pack, upscale)
    sides = [("ours", opts)]
    if peer:
        sides.append(("peer", {"pick": rule}))
    results = run_sides(sides, paths, workers, progress=progress)
    ours = results[0]
    out: dict[str, Any] = {"method": _method(pack), "pack": pack, "workers": workers, "pick": rule,
                           "flip": opts.get("flip", pack == "dlib"), "jitters": jitters if pack == "dlib" else 0,
                           "settings": {k: v for k, v in opts.items() if k != "pick"}}
    out.update(lfw_report(pairs, ours, "cosine"))
    out["stage_seconds"] = ours.stages
    if view1 is not None:  # "images" and speed then cover View 1's extra images too
        out["view2_images"] = view2_images
        out["view1_threshold"] = {"view1_pairs_used": view1_threshold,
                                  **view1_threshold_report(view1, pairs, ours.vectors, "cosine")}
    if peer:
        theirs = results[1]
        p = lfw_report(pairs, theirs, "euclidean")
        p["method"] = "face_recognition 1.3.0 defaults (hog, upsample 1, num_jitters=1, small; euclidean)"
        if view1 is not None:
            p["view1_threshold"] = view1_threshold_report(view1, pairs, theirs.vectors, "euclidean")
        out["peer"] = p
        out["ratio"] = {
            "accuracy": _ratio(out["accuracy"], p["accuracy"]),
            "images_per_s": _ratio(out["images_per_s"], p["images_per_s"]),
            "cpu_per_image": _ratio(p["cpu_ms_per_image"], out["cpu_ms_per_image"]),
        }
    return out


def run_faces(data: Path | None = None, peer: bool = False, workers: int = 1, limit: int | None = 500,
              upscale: int | None = None, backend: str = "onnx", flip: bool | None = None,
              max_side: int | None = None, jitters: int = 0, progress: Callable[..., None] | bool = True,
              pack: str = "dlib") -> dict[str, Any]:
    """End-to-end face throughput (decode, detect, align, embed every face), optionally vs the peer."""
    from visionlake.config import shared_data_dir

    folder = data or shared_data_dir() / "lfw" / "images"
    files = list_images(folder, limit)
    with tempfile.TemporaryDirectory(prefix="vl-faces-bench-") as tmp:
        originals = files
        if upscale:
            files = upscale_copies(files, int(upscale), Path(tmp))
        opts = _pipeline_opts("largest", backend, flip, max_side, jitters, pack)
        sides = [("ours", opts)] + ([("peer", {"pick": "largest"})] if peer else [])
        results = run_sides(sides, files, workers, rounds=min(10, len(files)), progress=progress)
        ours = results[0]
        out: dict[str, Any] = {"data": str(folder), "upscale": upscale, "workers": workers, "pack": pack,
                               "method": _method(pack), "settings": {k: v for k, v in opts.items() if k != "pick"}}
        out.update(faces_report(ours))
        if upscale:  # accuracy unchanged on large photos: same face, same vector as on the original
            small = run_side("ours", originals, workers, opts)
            out["upscaled_vs_original"] = consistency(originals, small, files, ours)
        if peer:
            theirs = results[1]
            out["peer"] = faces_report(theirs)
            out["ratio"] = _ratio(ours.images_per_s, theirs.images_per_s)
            out["cpu_ratio"] = _ratio(theirs.cpu_ms_per_image, ours.cpu_ms_per_image)
            out["agreement"] = agreement(ours, theirs)
    return out
