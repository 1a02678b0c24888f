"""``visionlake bench fashion``: colour accuracy, tagging throughput vs plain open_clip, heads, search.

Every comparison runs its peer in the same process and run, and the JSON carries both numbers and the
ratio, so that a noisy shared machine moves both sides together.
"""

from __future__ import annotations

import collections
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from visionlake.config import shared_data_dir
from visionlake.errors import BadInput, ModelUnavailable
from visionlake.trends.styles_csv import read_styles


def product_photos(data: Path, id_range: tuple[int, int] | None = None, limit: int | None = None
                   ) -> list[tuple[int, Path]]:
    """(id, path) of the product photos, by id, optionally restricted to ``LO <= id <= HI``."""
    items = []
    for p in (data / "images").glob("*.jpg"):
        if not p.stem.isdigit():
            continue
        i = int(p.stem)
        if id_range and not (id_range[0] <= i <= id_range[1]):
            continue
        items.append((i, p))
    items.sort()
    return items[:limit] if limit else items


def colour_benchmark(data: Path, id_range: tuple[int, int] | None = None, limit: int | None = None
                     ) -> dict[str, Any]:
    """Colour-family accuracy against ``baseColour``, with the mean-colour baseline in the same run."""
    from visionlake.fashion.colour import FAMILIES, analyse_colours, family_of_label, mean_colour_family

    styles = read_styles(data / "styles.csv")
    confusion: dict[str, collections.Counter[str]] = {f: collections.Counter() for f in FAMILIES}
    n = ok = ok_base = skipped = 0
    t0 = time.perf_counter()
    for i, path in product_photos(data, id_range, limit):
        row = styles.get(i)
        fam = family_of_label(row["baseColour"]) if row else None
        if fam is None:
            skipped += 1
            continue
        with PILImage.open(path) as im:
            im = im.convert("RGB")
        pred = analyse_colours(im).family
        base = mean_colour_family(im)
        n += 1
        ok += pred == fam
        ok_base += base == fam
        confusion[fam][pred] += 1
    secs = time.perf_counter() - t0
    return {
        "images": n,
        "skipped_no_label": skipped,
        "colour_accuracy": round(ok / n, 4) if n else None,
        "baseline_colour_accuracy": round(ok_base / n, 4) if n else None,
        "colour_ms_per_image": round(1000 * secs / max(n, 1) / 2, 2),  # two analyses per image
        "colour_confusion": {f: dict(c.most_common()) for f, c in confusion.items() if c},
        "id_range": list(id_range) if id_range else None,
    }


#: Product ids the colour settings were tuned on and the learned colour head is trained on; every other
#: id is untouched by any colour choice (``bench fashion --id-range 13000 15999`` reports on those).
COLOUR_TRAIN_IDS = (10000, 12999)


def learned_colour_benchmark(data: Path, train_range: tuple[int, int] = COLOUR_TRAIN_IDS,
                             id_range: tuple[int, int] | None = None, limit: int | None = None) -> dict[str, Any]:
    """Colour-family accuracy of a head learned from ``baseColour`` on ``train_range``, scored on ``id_range``.

    The head is what ``fashion train-colour`` trains (its features and candidates were chosen by CV on
    ids 10000-12999 only, ``scripts/select_colour_head.py``); without the image backbone file the
    colour-only head is scored instead, and the report says which. Photos whose bytes also occur in the
    training part are dropped from the scored part (the catalogue has ~120 duplicated files), so the
    score is on photos the head has never seen.
    """
    import hashlib

    from threadpoolctl import threadpool_limits

    from visionlake.fashion.colour import family_of_label
    from visionlake.fashion.colour_head import (
        HEAD_CANDIDATES,
        HEAD_CANDIDATES_NO_BACKBONE,
        HEAD_PARTS,
        HEAD_PARTS_NO_BACKBONE,
        fit_colour_head,
        image_features,
    )
    from visionlake.fashion.colour_training import load_backbone

    styles = read_styles(data / "styles.csv")
    try:
        backbone = load_backbone()
        parts, cands = HEAD_PARTS, HEAD_CANDIDATES
    except ModelUnavailable:
        backbone, parts, cands = None, HEAD_PARTS_NO_BACKBONE, HEAD_CANDIDATES_NO_BACKBONE

    def labelled(items: list[tuple[int, Path]]) -> tuple[np.ndarray, list[str], list[str]]:
        feats, labels, hashes = [], [], []
        todo = [(i, p, fam) for i, p in items
                if (fam := family_of_label(styles[i]["baseColour"]) if i in styles else None) is not None]
        for start in range(0, len(todo), 32):
            pics = []
            for _i, path, fam in todo[start:start + 32]:
                hashes.append(hashlib.sha256(path.read_bytes()).hexdigest())
                with PILImage.open(path) as im:
                    pics.append(im.convert("RGB"))
                labels.append(fam)
            feats.append(image_features(pics, parts, backbone))
        return (np.concatenate(feats) if feats else np.zeros((0, 1), np.float32)), labels, hashes

    t0 = time.perf_counter()
    X, y, train_hashes = labelled(product_photos(data, train_range))
    with threadpool_limits(limits=1):
        head = fit_colour_head(X, y, candidates=cands, parts=parts, groups=train_hashes)
    lo, hi = train_range
    seen = set(train_hashes)
    scored = [(i, p) for i, p in product_photos(data, id_range) if not lo <= i <= hi]
    dup = [(i, p) for i, p in scored if hashlib.sha256(p.read_bytes()).hexdigest() in seen]
    scored = [it for it in scored if it not in dup][: limit or None]
    Xt, yt, _ = labelled(scored)
    scored_ids = [i for i, _p in scored if i in styles and family_of_label(styles[i]["baseColour"]) is not None]
    with threadpool_limits(limits=1):
        pred = head.predict(Xt) if len(yt) else []
    acc = float(np.mean([a == b for a, b in zip(pred, yt, strict=True)])) if len(yt) else None
    confusion: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for truth, guess in zip(yt, pred, strict=True):
        confusion[truth][guess] += 1
    blocks: dict[str, list[bool]] = collections.defaultdict(list)
    for i, truth, guess in zip(scored_ids, yt, pred, strict=True):  # per 1,000 ids: how steady it is
        blocks[f"{i // 1000 * 1000}-{i // 1000 * 1000 + 999}"].append(truth == guess)
    return {
        "colour_accuracy_learned": round(acc, 4) if acc is not None else None,
        "colour_accuracy_learned_by_ids": {k: round(float(np.mean(v)), 4) for k, v in sorted(blocks.items())},
        "colour_learned_images": len(yt),
        "colour_learned_duplicates_dropped": len(dup),
        "colour_learned_confusion": {f: dict(c.most_common()) for f, c in confusion.items()},
        "colour_head_train_ids": list(train_range),
        "colour_head_train_images": len(y),
        "colour_head_features": list(parts),
        "colour_head_cv_accuracy": round(head.cv_accuracy, 4),
        "colour_head_model": head.name,
        "colour_head_cv_table": {k: round(v, 4) for k, v in head.cv_table.items()},
        "colour_learned_s": round(time.perf_counter() - t0, 1),
    }


def throughput_benchmark(data: Path, n_images: int = 32, batch_size: int = 16, threads: int | None = None
                         ) -> dict[str, Any]:
    """ViT-B-16-SigLIP (random weights): ONNX Runtime batched vs open_clip+torch one image at a time."""
    try:
        import open_clip
        import torch
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "visionlake":  # our own code is never optional
            raise
        return {"throughput_skipped": f"torch/open_clip not importable ({exc}); run the bench from an "
                                      "environment with the clip extra to time the plain loop"}
    from visionlake.fashion.onnx_tagger import OnnxFashionModel
    from visionlake.fashion.openclip_tagger import export_onnx

    torch.manual_seed(0)
    # random weights carry no preprocess config: give it SigLIP's (the one webli and Marqo ship)
    model, _, preprocess = open_clip.create_model_and_transforms(
        "ViT-B-16-SigLIP", pretrained=None, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5),
        image_interpolation="bicubic", image_resize_mode="squash")
    model.eval()
    pics = []
    for _i, p in product_photos(data)[:n_images]:
        with PILImage.open(p) as im:
            pics.append(im.convert("RGB"))
    if not pics:
        return {"throughput_skipped": f"no product photos under {data}"}
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(model, tmp)
        ort_model = OnnxFashionModel(tmp, batch_size=batch_size, threads=threads or os.cpu_count())
        ort_model.embed_images(pics[:2])  # warm-up (first run allocates)
        with torch.no_grad():
            model.encode_image(preprocess(pics[0]).unsqueeze(0))
        t0 = time.perf_counter()
        ours = ort_model.embed_images(pics)
        t_ours = time.perf_counter() - t0
        plain = []
        t0 = time.perf_counter()
        with torch.no_grad():
            for im in pics:  # the plain way: one image at a time, default threads
                plain.append(model.encode_image(preprocess(im).unsqueeze(0), normalize=True)[0].numpy())
        t_plain = time.perf_counter() - t0
    plain_arr = np.stack(plain).astype(np.float32)
    cos = (ours * plain_arr).sum(1) / np.linalg.norm(plain_arr, axis=1)
    ours_ips = len(pics) / t_ours
    plain_ips = len(pics) / t_plain
    return {
        "tag_images": len(pics),
        "tag_images_per_s": round(ours_ips, 3),
        "plain_images_per_s": round(plain_ips, 3),
        "tag_ratio": round(ours_ips / plain_ips, 3),
        "embedding_cosine_min": round(float(cos.min()), 5),
        "tag_batch_size": batch_size,
        "tag_threads": threads or os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def train_benchmark(data: Path, model: Any, n_images: int = 600, columns: tuple[str, ...] = (
        "articleType", "gender", "usage")) -> dict[str, Any]:
    """Cross-validated accuracy of heads on ``n_images`` product photos for each label column."""
    from visionlake.fashion.heads import fit_head

    styles = read_styles(data / "styles.csv")
    items = [(i, p) for i, p in product_photos(data) if i in styles][:n_images]
    pics = []
    for _i, p in items:
        with PILImage.open(p) as im:
            pics.append(im.convert("RGB"))
    emb = model.embed_images(pics)
    out: dict[str, Any] = {"images": len(items), "model": getattr(model, "name", "")}
    for col in columns:
        labels = [styles[i][col] for i, _ in items]
        head = fit_head(emb, labels, col, folds=5, min_per_class=5)
        majority = collections.Counter(labels).most_common(1)[0][1] / len(labels)
        out[col] = {"cv_accuracy": round(head.cv_accuracy, 4), "classes": len(head.classes),
                    "majority_baseline": round(majority, 4)}
    return out


def search_benchmark(n: int = 100_000, dim: int = 768, queries: int = 50, top: int = 10) -> dict[str, Any]:
    """p50 latency of a filtered top-K query on ``n`` synthetic vectors through the lake's index code."""
    from visionlake.index.faiss_index import FaissIndex

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    ids = np.arange(1, n + 1, dtype=np.int64)
    seasons = ["Spring", "Summer", "Fall", "Winter"]
    index = FaissIndex(None, dim=dim, metric="cosine")
    index.build(ids, vecs)
    for i in ids.tolist():
        index._set_meta(i, {"season": seasons[i % 4], "year": str(2008 + i % 10)})
    q = rng.standard_normal((queries, dim)).astype(np.float32)
    plain_ms, filt_ms = [], []
    for row in q:
        t0 = time.perf_counter()
        index.search(row[None, :], k=top)
        plain_ms.append(1000 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        hits = index.search(row[None, :], k=top, where={"season": "Summer", "year": "2012"})
        filt_ms.append(1000 * (time.perf_counter() - t0))
        assert all(index.metadata(h.id)["season"] == "Summer" for h in hits[0])
    return {"search_vectors": n, "search_kind": index.kind, "search_p50_ms": round(statistics.median(filt_ms), 3),
            "search_unfiltered_p50_ms": round(statistics.median(plain_ms), 3)}


def run_fashion(data: Path | None = None, id_range: tuple[int, int] | None = None, limit: int | None = None,
                tag_images: int = 32, batch_size: int = 16, train_images: int = 600,
                search_vectors: int = 100_000, model_dir: str | None = None,
                skip: set[str] | frozenset[str] = frozenset(),
                colour_train_range: tuple[int, int] = COLOUR_TRAIN_IDS) -> dict[str, Any]:
    """Every part of ``bench fashion`` not in ``skip`` (colour, throughput, train, search, backbone), one report."""
    folder = data or shared_data_dir() / "fashion_products"
    if not (folder / "styles.csv").exists() or not (folder / "images").is_dir():
        raise BadInput(f"{folder} does not hold images/ and styles.csv (see --data)")
    report: dict[str, Any] = {"data": str(folder)}
    # "colour" skips both colour parts; "colour-model-free" / "colour-learned" skip one (each takes minutes)
    if "colour" not in skip and "colour-model-free" not in skip:
        report.update(colour_benchmark(folder, tuple(id_range) if id_range else None, limit))
        report["colour_settings_tuned_on_ids"] = list(COLOUR_TRAIN_IDS)
    if "colour" not in skip and "colour-learned" not in skip:
        report.update(learned_colour_benchmark(folder, tuple(colour_train_range),
                                               tuple(id_range) if id_range else None, limit))
    if "throughput" not in skip:
        tp = throughput_benchmark(folder, tag_images, batch_size)
        if "throughput_skipped" in tp:
            print(tp["throughput_skipped"], file=sys.stderr)
        report.update(tp)
    if "train" not in skip:
        from visionlake.fashion.onnx_tagger import OnnxFashionModel
        from visionlake.fashion.tiny_model import build_tiny_model

        with tempfile.TemporaryDirectory() as tmp:
            report["train_tiny_model"] = train_benchmark(folder, OnnxFashionModel(build_tiny_model(tmp)),
                                                         train_images)
        try:
            real = OnnxFashionModel(model_dir)
            report["train_real_model"] = train_benchmark(folder, real, train_images)
        except ModelUnavailable as exc:
            report["train_real_model"] = {"skipped": exc.message}
    if "search" not in skip:
        report.update(search_benchmark(search_vectors))
    if "backbone" not in skip:
        report.update(backbone_part(folder, tuple(id_range) if id_range else None, batch_size))
    return report


def backbone_part(folder: Path, id_range: tuple[int, int] | None, batch_size: int) -> dict[str, Any]:
    """Offline-backbone heads and search: trained outside ``id_range`` (default 14000-15999), scored inside."""
    from visionlake.bench.fashion_backbone import REPORT_IDS, backbone_benchmark
    from visionlake.fashion.backbone import BackboneModel

    try:
        model = BackboneModel(batch_size=max(batch_size, 1))
    except ModelUnavailable as exc:
        print(f"backbone part skipped: {exc.message}", file=sys.stderr)
        return {"backbone_skipped": exc.message}
    return backbone_benchmark(folder, id_range or REPORT_IDS, model)
