"""How the learned colour head's features and model were chosen: CV on product ids 10000-12999 only.

Two steps, so that the slow part (segmenting ~2,500 garments and embedding them) runs once:

    python scripts/select_colour_head.py extract --data ../shared/data/fashion_products --cache /tmp/cc
    python scripts/select_colour_head.py select --cache /tmp/cc --out docs/benchmarks/fashion-colour-head-cv.json

``extract`` reads only ids 10000-12999 (the training/validation range); ``select`` cross-validates every
feature set x model on those rows (5 stratified folds, fixed seed) and writes the table. The untouched
range (13000-15999) is scored once, afterwards, by ``visionlake bench fashion --id-range 13000 15999``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

TRAIN = (10000, 12999)
#: Compared candidates left out, and why (written into the table)
NOT_RUN = {"lab+polar+clusters | hgb lr=0.1 leaves=15 iter=100": "not run: the same trees on the 360 lab "
           "features alone took 561 s of 5-fold CV on the shared 2-core machine; twice the features, ~20 min"}


def extract(data: Path, cache: Path, id_range: tuple[int, int], limit: int | None) -> None:
    from visionlake.bench.fashion import product_photos
    from visionlake.fashion.backbone import BackboneModel
    from visionlake.fashion.colour import ColourSettings, family_of_label, garment_pixels
    from visionlake.fashion.colour_head import cluster_features, lab_features, polar_features
    from visionlake.trends.styles_csv import read_styles

    styles = read_styles(data / "styles.csv")
    model = BackboneModel(batch_size=32, threads=2)
    s = ColourSettings()
    rows: dict[str, list] = {k: [] for k in ("id", "label", "sha", "article", "lab", "polar", "clusters", "emb")}
    batch: list[PILImage.Image] = []
    t0 = time.time()
    items = product_photos(data, id_range, limit)
    for n, (i, path) in enumerate(items):
        fam = family_of_label(styles[i]["baseColour"]) if i in styles else None
        if fam is None:
            continue
        raw = path.read_bytes()
        with PILImage.open(path) as im:
            im = im.convert("RGB")
        g = garment_pixels(im, s)
        rows["id"].append(i)
        rows["label"].append(fam)
        rows["sha"].append(hashlib.sha256(raw).hexdigest())
        rows["article"].append(styles[i]["articleType"])
        rows["lab"].append(lab_features(g, s))
        rows["polar"].append(polar_features(g))
        rows["clusters"].append(cluster_features(g))
        batch.append(im)
        if len(batch) == 32:
            rows["emb"].extend(model.features(batch)[0])
            batch = []
        if n % 200 == 0:
            print(f"{n}/{len(items)} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    if batch:
        rows["emb"].extend(model.features(batch)[0])
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"features_{id_range[0]}_{id_range[1]}.npz"
    np.savez_compressed(out, **{k: np.asarray(v) for k, v in rows.items()})
    print(f"wrote {out} ({len(rows['id'])} rows, {time.time() - t0:.0f}s)", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract")
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--cache", type=Path, required=True)
    e.add_argument("--limit", type=int)
    sel = sub.add_parser("select")
    sel.add_argument("--cache", type=Path, required=True)
    sel.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.cmd == "extract":
        extract(args.data, args.cache, TRAIN, args.limit)
    else:
        print(json.dumps(select(args.cache, args.out), indent=2))


def select(cache: Path, out: Path | None) -> dict:
    """CV accuracy of every (feature set, model) on the training ids; groups = photo hash, so the
    catalogue's byte-identical duplicates never sit on both sides of a fold."""
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    from visionlake.fashion.colour_head import SELECTION_CANDIDATES, feature_matrix, make_candidate

    d = np.load(cache / f"features_{TRAIN[0]}_{TRAIN[1]}.npz")
    y = d["label"].astype(str)
    values, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, values[counts >= 5])
    groups = d["sha"][keep]
    cv = StratifiedGroupKFold(5, shuffle=True, random_state=0)
    table: dict[str, dict] = {}
    if out is not None and out.exists():  # resume: rows already scored (same data, folds and seed) are kept
        table = {k: v for k, v in json.loads(out.read_text())["table"].items() if k in SELECTION_CANDIDATES}
    for name, (feats, kind, params) in SELECTION_CANDIDATES.items():
        if name in table:
            continue
        X = feature_matrix({k: d[k] for k in ("lab", "polar", "clusters", "emb")}, feats)[keep]
        t0 = time.time()
        with threadpool_limits(limits=1):
            scores = cross_val_score(make_candidate(kind, params), X, y[keep], cv=cv, groups=groups)
        table[name] = {"cv_accuracy": round(float(scores.mean()), 4), "fold_sd": round(float(scores.std()), 4),
                       "features": list(feats), "dims": int(X.shape[1]), "seconds": round(time.time() - t0, 1)}
        print(f"{table[name]['cv_accuracy']:.4f} +- {table[name]['fold_sd']:.4f}  {name} "
              f"({table[name]['seconds']} s)", file=sys.stderr, flush=True)
        if out is not None:
            out.write_text(json.dumps({"train_ids": list(TRAIN), "table": table}, indent=2) + "\n")
    best = max(table, key=lambda n: table[n]["cv_accuracy"])
    result = {"train_ids": list(TRAIN), "rows": int(keep.sum()), "folds": "5, stratified, grouped by photo hash",
              "not_run": NOT_RUN, "chosen": best,
              "table": dict(sorted(table.items(), key=lambda kv: -kv[1]["cv_accuracy"]))}
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
