"""Choose the backbone's head and preprocessing settings by cross-validation on product ids 10000-13999.

Nothing here looks at ids 14000-15999 (the range ``bench fashion --id-range 14000 15999`` reports on).

    python scripts/select_backbone_params.py --model-dir ~/.cache/visionlake/models/efficientnet-lite0 \
        --out docs/benchmarks/fashion-backbone-selection.json [--cache /tmp/emb.npz]

1. preprocessing: (x-127)/128 vs ImageNet mean/std, 5-fold articleType accuracy on a subset;
2. the logistic regression's C over a grid, by the benchmark's protocol inside the validation ids:
   train on three blocks of 1,000 ids, score the fourth (classes with >= 20 training photos), 4 times.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np

VALIDATION = (10000, 13999)
C_GRID = (1.0, 4.0, 16.0, 64.0)


def cv_accuracy(x: np.ndarray, y: list[str], c: float, folds: int = 5, min_n: int = 20) -> float:
    """Shuffled stratified k-fold accuracy (classes with >= ``min_n`` photos)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from visionlake.fashion.heads import make_classifier

    counts = collections.Counter(y)
    keep = [i for i, v in enumerate(y) if counts[v] >= min_n]
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    return float(np.mean(cross_val_score(make_classifier(c), x[keep], np.asarray(y)[keep], cv=cv, n_jobs=1)))


def blocked_cv_accuracy(x: np.ndarray, y: list[str], ids: np.ndarray, c: float, block: int = 1000,
                        min_train: int = 20) -> float:
    """The benchmark's protocol inside the validation ids: train on the other id blocks, score one block
    (classes with >= ``min_train`` training photos, natural mix), averaged over the blocks."""
    from visionlake.fashion.heads import make_classifier

    yy = np.asarray(y)
    scores = []
    for lo in range(VALIDATION[0], VALIDATION[1] + 1, block):
        te = (ids >= lo) & (ids < lo + block)
        tr = ~te
        counts = collections.Counter(yy[tr].tolist())
        known = [k for k, n in counts.items() if n >= min_train]
        trk, tek = tr & np.isin(yy, known), te & np.isin(yy, known)
        clf = make_classifier(c).fit(x[trk], yy[trk])
        scores.append(float((clf.predict(x[tek]) == yy[tek]).mean()))
        print(f"  C={c} block {lo}: {scores[-1]:.4f}", flush=True)
    return float(np.mean(scores))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--data", default="../shared/data/fashion_products")
    ap.add_argument("--out", default="docs/benchmarks/fashion-backbone-selection.json")
    ap.add_argument("--cache", default=None, help="npz to keep/reuse the validation embeddings")
    ap.add_argument("--preprocess-subset", type=int, default=1200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    from visionlake.bench.fashion_backbone import embed_products, load_products
    from visionlake.fashion.backbone import IMAGENET, BackboneModel

    products = [p for p in load_products(Path(args.data)) if VALIDATION[0] <= p.id <= VALIDATION[1]]
    lite = BackboneModel(args.model_dir, threads=args.threads)
    cache = Path(args.cache) if args.cache else None
    if cache and cache.exists():
        with np.load(cache) as z:
            emb = z["emb"]
            assert [int(i) for i in z["ids"]] == [p.id for p in products], "cache is for other photos"
    else:
        t0 = time.perf_counter()
        emb, _ = embed_products(lite, products)
        print(f"embedded {len(products)} in {time.perf_counter() - t0:.0f}s", flush=True)
        if cache:
            np.savez(cache, emb=emb, ids=np.asarray([p.id for p in products]))
    report: dict = {"validation_ids": list(VALIDATION), "photos": len(products)}

    # 1. preprocessing, on an evenly spread subset
    step = max(1, len(products) // args.preprocess_subset)
    sub = list(range(0, len(products), step))[: args.preprocess_subset]
    y_sub = [products[i].row["articleType"] for i in sub]
    imnet = BackboneModel(args.model_dir, threads=args.threads, preprocess=IMAGENET)
    emb_imnet, _ = embed_products(imnet, [products[i] for i in sub])
    report["preprocess_subset"] = len(sub)
    report["preprocess_article_cv"] = {
        "(x-127)/128": round(cv_accuracy(emb[sub], y_sub, 2.0), 4),
        "imagenet_mean_std": round(cv_accuracy(emb_imnet, y_sub, 2.0), 4),
    }
    print(report["preprocess_article_cv"], flush=True)

    # 2. C of the logistic regression, by the benchmark's own protocol (id blocks) on articleType
    ids = np.asarray([p.id for p in products])
    y = [p.row["articleType"] for p in products]
    scores = {str(c): round(blocked_cv_accuracy(emb, y, ids, c), 4) for c in C_GRID}
    report["articleType_blocked_cv_by_C"] = scores
    print("articleType", scores, flush=True)
    best = max(C_GRID, key=lambda c: scores[str(c)])
    report["chosen_C"] = best
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
