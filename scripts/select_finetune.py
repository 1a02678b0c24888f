"""Choose between the frozen backbone (+ flip averaging) and fine-tuning its last blocks, by blocked CV
on product ids 10000-13999 only (nothing here reads ids 14000-15999).

Protocol = the benchmark's, inside the validation ids: for each block of 1,000 ids, everything is trained
on the other three blocks (fine-tuning AND the logistic-regression head, C=16 as shipped), and the
block is scored on articleType (classes with >= 20 training photos, natural mix).

Variants: ``frozen`` (what ships), ``frozen+flip`` (features of the photo and its mirror averaged),
``sqrt`` / ``sqrt+flip`` (power-normalised features), ``288`` / ``224+288`` (the fully convolutional
network fed 288 px, alone or averaged with 224 px), ``ft<TAP>e<EPOCHS>[lr<N>]`` (fine-tune the blocks
from TAP on and the head conv, EPOCHS epochs, learning rate N x 1e-4; ``finetune_tail.py``).

Step 1 (project venv, ONNX Runtime): tap activations of every validation photo and its mirror image
    python scripts/select_finetune.py extract --model-dir ~/.cache/visionlake/models/efficientnet-lite0 \
        --cache /tmp/bb/val_act.npz
Step 2 (a venv with torch, numpy, scikit-learn; PYTHONPATH=. for the visionlake modules it uses):
    python scripts/select_finetune.py cv --model-dir ... --cache /tmp/bb/val_act.npz \
        --out docs/benchmarks/fashion-finetune-selection.json
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np

VALIDATION = (10000, 13999)
TAPS = (11, 14)


def _tap_session(onnx_path: Path, taps: tuple[int, ...], threads: int) -> tuple[object, list[str]]:
    """ONNX Runtime session of the stock graph with the tensors ENTERING blocks ``taps`` as extra outputs.

    The converter names nodes after their block (``_blocks.<i>.``), so the tensor entering block ``t``
    is the last one block ``t - 1`` produces (its skip ``Add`` or its projection).
    """
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m = onnx.load(str(onnx_path))
    names = []
    for t in taps:
        outs = [n.output[0] for n in m.graph.node if n.output[0].startswith(f"_blocks.{t - 1}.")]
        names.append(outs[-1])
        m.graph.output.append(helper.make_tensor_value_info(outs[-1], TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"]), names


def extract(args: argparse.Namespace) -> None:
    """224 px features and tap activations of each validation photo and its mirror; 288 px features."""
    import onnxruntime as ort

    from visionlake.bench.fashion_backbone import load_products, photo_batches
    from visionlake.fashion.backbone import BackbonePreprocess
    from visionlake.fashion.backbone_convert import build_model
    from visionlake.fashion.torch_pickle import load_state_dict

    products = [p for p in load_products(Path(args.data)) if VALIDATION[0] <= p.id <= VALIDATION[1]]
    products = products[: args.limit] if args.limit else products
    sess, tap_names = _tap_session(Path(args.model_dir) / "efficientnet_lite0.onnx", TAPS, args.threads)
    state = load_state_dict(Path(args.model_dir) / "efficientnet-lite0-57934424.pth")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess288 = ort.InferenceSession(build_model(state, image_size=288).SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    pre, pre288 = BackbonePreprocess(), BackbonePreprocess(size=288)
    out: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    t0 = time.perf_counter()
    for start, pics in zip(range(0, len(products), 32), photo_batches(products, 32), strict=True):
        x = pre(pics)
        for suffix, xx in (("", x), ("_flip", np.ascontiguousarray(x[:, :, :, ::-1]))):
            res = sess.run(["features", *tap_names], {"image": xx})
            out["feat" + suffix].append(res[0])
            for t, r in zip(TAPS, res[1:], strict=True):
                out[f"tap{t}{suffix}"].append(r.astype(np.float16))
        out["feat288"].append(sess288.run(["features"], {"image": pre288(pics)})[0])
        print(f"{start + len(pics)} photos {time.perf_counter() - t0:.0f}s", flush=True)
    np.savez(args.cache, ids=np.asarray([p.id for p in products]),
             **{k: np.concatenate(v) for k, v in out.items()})


def _sqrt(x: np.ndarray) -> np.ndarray:
    """Power normalisation: the pooled ReLU6 features are non-negative; sqrt damps the dominant ones."""
    return _l2(np.sqrt(np.maximum(x, 0)))


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _head_score(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray) -> tuple[float, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=3000, C=16.0).fit(_l2(xtr), ytr)
    pred = clf.predict(_l2(xte))
    return float((pred == yte).mean()), pred


def cv(args: argparse.Namespace) -> None:
    from visionlake.fashion.torch_pickle import load_state_dict

    z = dict(np.load(args.cache))
    ids = z["ids"]
    if any(v.strip().startswith("ft") for v in args.variants.split(",")):
        import torch

        torch.set_num_threads(args.torch_threads)
    from finetune_tail import FineTuneSettings, advance, fine_tune, tail_features

    state = load_state_dict(Path(args.model_dir) / "efficientnet-lite0-57934424.pth")
    wanted_taps = {int(v[2:4]) for v in args.variants.split(",") if v.strip().startswith("ft")}
    for t in sorted(wanted_taps):
        if f"tap{t}" not in z:  # e.g. tap15 from tap14 through the frozen block 14
            src = max(k for k in (11, 14) if k < t and f"tap{k}" in z)
            for suffix in ("", "_flip"):
                z[f"tap{t}{suffix}"] = advance(state, z[f"tap{src}{suffix}"], src, t)
            print(f"tap{t} computed from tap{src}", flush=True)
    from visionlake.bench.fashion import read_styles

    styles = read_styles(Path(args.data) / "styles.csv")
    y = np.asarray([styles[int(i)]["articleType"] for i in ids])
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    folds = [lo for lo in range(VALIDATION[0], VALIDATION[1] + 1, 1000)]
    if args.fold_order:
        folds = [int(f) for f in args.fold_order.split(",")]
    folds = folds[: args.folds]
    table: dict[str, dict[str, float]] = {v: {} for v in variants}
    confusions: dict[str, collections.Counter] = {v: collections.Counter() for v in variants}
    seconds: dict[str, float] = collections.defaultdict(float)
    for lo in folds:
        te = (ids >= lo) & (ids < lo + 1000)
        tr = ~te
        counts = collections.Counter(y[tr].tolist())
        known = [k for k, n in counts.items() if n >= 20]
        tek = te & np.isin(y, known)
        trk = tr & np.isin(y, known)
        for v in variants:
            t0 = time.perf_counter()
            if v == "frozen":
                xtr, xte = z["feat"][trk], z["feat"][tek]
            elif v == "frozen+flip":
                xtr = _l2(z["feat"][trk]) + _l2(z["feat_flip"][trk])
                xte = _l2(z["feat"][tek]) + _l2(z["feat_flip"][tek])
            elif v == "sqrt":
                xtr, xte = _sqrt(z["feat"][trk]), _sqrt(z["feat"][tek])
            elif v == "sqrt+flip":
                xtr = _sqrt(z["feat"][trk]) + _sqrt(z["feat_flip"][trk])
                xte = _sqrt(z["feat"][tek]) + _sqrt(z["feat_flip"][tek])
            elif v == "288":
                xtr, xte = z["feat288"][trk], z["feat288"][tek]
            elif v == "224+288":
                xtr = _l2(z["feat"][trk]) + _l2(z["feat288"][trk])
                xte = _l2(z["feat"][tek]) + _l2(z["feat288"][tek])
            elif v.startswith("ft"):
                # e.g. ft14e8 = tap 14, 8 epochs; ft14e8lr1 = lr 1e-4
                tap = int(v[2:4])
                rest = v[4:]
                epochs = int(rest[1:].split("lr")[0])
                lr = float(rest.split("lr")[1]) * 1e-4 if "lr" in rest else FineTuneSettings.lr
                s = FineTuneSettings(tap_block=tap, epochs=epochs, lr=lr)
                key = f"tap{tap}"

                def log(e: int, n: int, loss: float, v: str = v, lo: int = lo, t0: float = t0) -> None:
                    print(f"  {v} fold {lo} epoch {e}/{n} loss {loss:.3f} {time.perf_counter() - t0:.0f}s",
                          flush=True)

                tuned = fine_tune(state, z[key][tr], z[key + "_flip"][tr], y[tr].tolist(), s, progress=log)
                xtr, xte = tail_features(tuned, z[key][trk], tap), tail_features(tuned, z[key][tek], tap)
                if args.flip_tta:
                    xtr = _l2(xtr) + _l2(tail_features(tuned, z[key + "_flip"][trk], tap))
                    xte = _l2(xte) + _l2(tail_features(tuned, z[key + "_flip"][tek], tap))
            else:
                raise SystemExit(f"unknown variant {v}")
            acc, pred = _head_score(xtr, y[trk], xte, y[tek])
            seconds[v] += time.perf_counter() - t0
            table[v][str(lo)] = round(acc, 4)
            confusions[v].update((a, b) for a, b in zip(y[tek].tolist(), pred.tolist(), strict=True) if a != b)
            print(f"fold {lo} {v}: {acc:.4f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    report = {"validation_ids": list(VALIDATION), "protocol": "train on 3 blocks of 1,000 ids, score the 4th; "
              "articleType, classes with >= 20 training photos; LR head C=16 on L2-normalised features",
              "folds": folds, "flip_tta_for_finetuned": bool(args.flip_tta),
              "blocked_cv": {v: {**table[v], "mean": round(float(np.mean(list(table[v].values()))), 4)}
                             for v in variants},
              "seconds": {v: round(s, 1) for v, s in seconds.items()},
              "top_confusions": {v: [f"{a} -> {b}: {n}" for (a, b), n in confusions[v].most_common(8)]
                                 for v in variants}}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["extract", "cv"])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--data", default="../shared/data/fashion_products")
    ap.add_argument("--cache", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="frozen,frozen+flip,ft14e8")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--flip-tta", action="store_true")
    ap.add_argument("--fold-order", default=None, help="e.g. 13000,11000 to run the hard folds first")
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="extract: only the first N photos (a smoke run)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    extract(args) if args.step == "extract" else cv(args)


if __name__ == "__main__":
    main()
