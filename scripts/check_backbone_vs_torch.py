"""One-off check: our ONNX EfficientNet-Lite0 vs the reference PyTorch implementation, on 20 photos.

Not part of CI (it needs torch). Run from the project venv; the torch side runs in a separate venv:

    python3 -m venv /tmp/torchref
    /tmp/torchref/bin/pip install torch==2.13.0 numpy pillow
    /tmp/torchref/bin/pip install --no-deps efficientnet-lite-pytorch==0.1.0   # lukemelas-style reference
    python scripts/check_backbone_vs_torch.py --torch-python /tmp/torchref/bin/python \
        --model-dir ~/.cache/visionlake/models/efficientnet-lite0 --out docs/benchmarks/backbone_vs_torch.json

Both sides get the SAME input tensors (our preprocessing, done once here), so the comparison is about
the converted graph (weights read without torch, BatchNorm folded, SAME padding) and nothing else.
With ``--write-reference`` it also stores the reference logits of the synthetic images that the
converter checks at every fetch (``visionlake/fashion/backbone_reference.json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TORCH_SIDE = r"""
import sys, numpy as np, torch
from efficientnet_lite_pytorch import EfficientNet
pth, inp, out = sys.argv[1:4]
torch.set_num_threads(1)
model = EfficientNet.from_name("efficientnet-lite0")
state = torch.load(pth, map_location="cpu", weights_only=True)
model.load_state_dict(state)
model.eval()
x = torch.from_numpy(np.load(inp))
with torch.no_grad():
    feats = model.extract_features(x).mean(dim=(2, 3))
    logits = model(x)
np.savez(out, features=feats.numpy(), logits=logits.numpy(), torch=np.array(torch.__version__))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--torch-python", required=True, help="python of a venv with torch + efficientnet-lite-pytorch")
    ap.add_argument("--model-dir", required=True, help="folder with the .pth and the converted .onnx")
    ap.add_argument("--photos", default="../shared/data/fashion_products/images")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--out", default="docs/benchmarks/backbone_vs_torch.json")
    ap.add_argument("--write-reference", action="store_true",
                    help="also store the torch logits of the synthetic images as the converter's reference")
    args = ap.parse_args()

    from PIL import Image

    from visionlake.fashion.backbone import BackbonePreprocess
    from visionlake.fashion.backbone_convert import (
        IMAGE_SIZE,
        ONNX_NAME,
        REFERENCE_FILE,
        WEIGHTS_NAME,
        run_onnx,
        synthetic_images,
        to_input,
    )

    folder = Path(args.model_dir)
    photos = sorted(Path(args.photos).glob("*.jpg"), key=lambda p: p.stem)
    step = max(1, len(photos) // args.n)
    chosen = photos[::step][: args.n]  # spread over the id range
    pics = []
    for p in chosen:
        with Image.open(p) as im:
            pics.append(im.convert("RGB"))
    x = BackbonePreprocess()(pics)
    xs = to_input(synthetic_images(IMAGE_SIZE))
    t0 = time.perf_counter()
    onnx_feats, onnx_logits = run_onnx(folder / ONNX_NAME, x)
    syn_feats, syn_logits = run_onnx(folder / ONNX_NAME, xs)
    t_onnx = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        ref = {}
        for name, arr in (("photos", x), ("synthetic", xs)):
            np.save(Path(tmp) / f"{name}.npy", arr)
            subprocess.run([args.torch_python, "-c", TORCH_SIDE, str(folder / WEIGHTS_NAME),
                            str(Path(tmp) / f"{name}.npy"), str(Path(tmp) / f"{name}_out.npz")], check=True)
            with np.load(Path(tmp) / f"{name}_out.npz") as z:
                ref[name] = {k: z[k] for k in z.files}
    d_logits = np.abs(onnx_logits - ref["photos"]["logits"])
    d_feats = np.abs(onnx_feats - ref["photos"]["features"])
    d_syn = np.abs(syn_logits - ref["synthetic"]["logits"])
    report = {
        "photos": len(chosen),
        "photo_ids": [p.stem for p in chosen],
        "torch": str(ref["photos"]["torch"]),
        "reference": "efficientnet-lite-pytorch 0.1.0 EfficientNet.from_name('efficientnet-lite0'), torch.load "
                     "(weights_only=True), eval mode, same input tensors",
        "logits_max_abs_diff": float(d_logits.max()),
        "logits_mean_abs_diff": float(d_logits.mean()),
        "features_max_abs_diff": float(d_feats.max()),
        "synthetic_logits_max_abs_diff": float(d_syn.max()),
        "top1_agree": int((onnx_logits.argmax(1) == ref["photos"]["logits"].argmax(1)).sum()),
        "logit_range": [float(onnx_logits.min()), float(onnx_logits.max())],
        "within_1e-4": bool(d_logits.max() <= 1e-4),
        "onnx_seconds": round(t_onnx, 3),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if args.write_reference:
        REFERENCE_FILE.write_text(json.dumps({
            "about": "logits of the real EfficientNet-Lite0 weights (torch reference implementation) on "
                     "backbone_convert.synthetic_images(); the converter's output must match them",
            "image_size": IMAGE_SIZE, "torch": str(ref["synthetic"]["torch"]),
            "logits": np.round(ref["synthetic"]["logits"].astype(np.float64), 6).tolist(),
        }) + "\n")
        print(f"wrote {REFERENCE_FILE}", file=sys.stderr)
    if not report["within_1e-4"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
