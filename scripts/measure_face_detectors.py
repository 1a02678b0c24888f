"""Found-rate and CPU per image of dlib HOG vs YuNet (and dlib's CNN fallback on HOG's misses), LFW View 1.

Usage: python scripts/measure_face_detectors.py [STEP]  (every STEP-th View 1 image; default all).
Why a script and not a bench command: it decides one option (YuNet in the dlib pack) and is run
once; its output is kept in docs/benchmarks/detectors-view1.json.
"""

from __future__ import annotations

import json
import sys
import time

from visionlake.bench.faces_lfw import read_lfw_pairs
from visionlake.config import shared_data_dir
from visionlake.faces.detect import DlibDetector, load_image, to_rgb_array
from visionlake.faces.packs.dlib_pack import _yunet


def main() -> None:
    root = shared_data_dir() / "lfw"
    paths: list[str] = []
    for name in ("pairsDevTrain.txt", "pairsDevTest.txt"):
        paths += read_lfw_pairs(root / name, root).images()
    paths = list(dict.fromkeys(paths))
    step = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    paths = paths[::step]
    arrs = [to_rgb_array(load_image(p)) for p in paths]
    hog = DlibDetector(cnn_fallback=False, upsample_fallback=False)
    hog_up = DlibDetector(cnn_fallback=False, upsample_fallback=True)
    yunet = _yunet(1)
    res: dict[str, object] = {"images": len(paths), "step": step}
    missed: dict[str, set[str]] = {}
    for label, fn in (("hog", hog.find), ("hog+upsample", hog_up.find), ("yunet", yunet.find)):
        t = time.process_time()
        found = [len(fn(a)) > 0 for a in arrs]
        cpu = time.process_time() - t
        missed[label] = {p for p, f in zip(paths, found, strict=True) if not f}
        res[label] = {"found": int(sum(found)), "missed": len(paths) - int(sum(found)),
                      "cpu_ms_per_image": round(1000 * cpu / len(paths), 2)}
    misses = [i for i, p in enumerate(paths) if p in missed["hog+upsample"]]
    t = time.process_time()
    by_yunet = sum(len(yunet.find(arrs[i])) > 0 for i in misses)
    cpu_y = time.process_time() - t
    t = time.process_time()
    by_cnn = sum(len(hog_up._cnn_run(arrs[i], "cnn", 500)) > 0 for i in misses)
    cpu_c = time.process_time() - t
    res["on_hog_misses"] = {"images": len(misses), "yunet_found": int(by_yunet), "cnn_found": int(by_cnn),
                            "yunet_cpu_ms_per_image": round(1000 * cpu_y / max(1, len(misses)), 1),
                            "cnn_cpu_ms_per_image": round(1000 * cpu_c / max(1, len(misses)), 1)}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
