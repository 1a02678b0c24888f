"""Choose the head for the backbone's ``rows`` embeddings by blocked CV on product ids 10000-13999 only.

Nothing here reads ids 14000-15999 (the README's report range, scored once by ``bench fashion``).

Protocol (the benchmark's, inside the validation ids, as in ``select_backbone_layout.py``): for each
block of 1,000 ids, the head is trained on the other three blocks and scores the fourth (classes with
>= 20 training photos, natural mix), for articleType, usage and baseColour; accuracy and expected
calibration error (10 bins). Rule fixed before any run: adopt a head only if its articleType CV gains
>= 1 point over the shipped one on the same vectors, with usage, baseColour and ECE no worse.

    python scripts/select_head.py extract --out /tmp/rows.npz      # the product's own rows vectors
    python scripts/select_head.py cv --vectors /tmp/rows.npz --out head-cv.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

VALIDATION = (10000, 13999)
DATA = Path("../shared/data/fashion_products")


def extract(args: argparse.Namespace) -> None:
    """``BackboneModel(layout='rows').embed_images`` of every de-duplicated validation photo."""
    from visionlake.bench.fashion_backbone import embed_products, load_products
    from visionlake.fashion.backbone import BackboneModel

    products = [p for p in load_products(Path(args.data)) if VALIDATION[0] <= p.id <= VALIDATION[1]]
    rows, _ = embed_products(BackboneModel(layout="rows"), products)
    np.savez(args.out, ids=np.asarray([p.id for p in products]), orig=rows)


def _ece(p: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    conf, ok = p.max(axis=1), p.argmax(axis=1) == truth
    total = 0.0
    edges = np.linspace(0, 1, bins + 1)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += float(m.mean() * abs(ok[m].mean() - conf[m].mean()))
    return total


def cv(args: argparse.Namespace) -> None:
    from select_backbone_layout import _folds  # the same blocks (this script's folder is on sys.path)
    from sklearn.linear_model import LogisticRegression

    from visionlake.bench.fashion import read_styles
    from visionlake.fashion.ridge_head import CalibratedRidge

    z = np.load(args.vectors)
    ids, rows = z["ids"], z["orig"]
    pooled = rows[:, :1280] / np.linalg.norm(rows[:, :1280], axis=1, keepdims=True)
    styles = read_styles(Path(args.data) / "styles.csv")
    heads = {
        "rows": (rows, {"LR C=288": lambda: LogisticRegression(max_iter=3000, C=288.0),
                        "ridge a=0.1": lambda: CalibratedRidge(alpha=0.1),
                        "ridge a=0.03": lambda: CalibratedRidge(alpha=0.03)}),
        "pooled": (pooled, {"LR C=16": lambda: LogisticRegression(max_iter=3000, C=16.0),
                            "ridge a=1": lambda: CalibratedRidge(alpha=1.0),
                            "ridge a=0.3": lambda: CalibratedRidge(alpha=0.3)}),
    }
    table = {}
    for column in ("articleType", "usage", "baseColour"):
        y = np.asarray([styles[int(i)][column] for i in ids])
        for layout, (x, makers) in heads.items():
            for name, make in makers.items():
                t0 = time.perf_counter()
                accs, eces = [], []
                for _lo, tr, te in _folds(ids, y):
                    clf = make().fit(x[tr], y[tr])
                    p = clf.predict_proba(x[te])
                    truth = np.searchsorted(clf.classes_, y[te])
                    accs.append(float((p.argmax(axis=1) == truth).mean()))
                    eces.append(_ece(p, truth))
                key = f"{column} {layout} {name}"
                table[key] = {"acc": round(float(np.mean(accs)), 4), "folds": [round(a, 4) for a in accs],
                              "ece": round(float(np.mean(eces)), 4), "s": round(time.perf_counter() - t0)}
                print(key, table[key], flush=True)
    Path(args.out).write_text(json.dumps({"validation_ids": list(VALIDATION), "blocked_cv": table}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["extract", "cv"])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--vectors", help="npz written by extract")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    (extract if args.step == "extract" else cv)(args)


if __name__ == "__main__":
    main()
