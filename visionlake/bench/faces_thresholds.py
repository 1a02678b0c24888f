"""``visionlake bench thresholds``: measure the verification thresholds shipped in :mod:`visionlake.faces.thresholds`.

Every image named in LFW View 1 (``pairsDevTrain.txt`` + ``pairsDevTest.txt``) is embedded with the
pack; all pairs of images of *different* people are impostor pairs; the threshold at FAR f is the
(1 - f) quantile of impostor similarities, so at most a fraction f of impostors reach it. View 2
(``pairs.txt``), which reports accuracy, is never used here. With ``enroll_jitters`` the enrolled
(jittered) templates are also scored against plain ones and the stricter threshold per FAR is kept.
The printed ``thresholds`` are what goes into ``CALIBRATED``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visionlake.bench.faces_lfw import read_lfw_pairs, run_side
from visionlake.errors import BadInput


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """Smallest similarity such that at most ``far`` of the impostor scores reach it."""
    s = np.sort(np.asarray(impostor_scores, dtype=np.float64))
    if len(s) == 0:
        raise BadInput("no impostor scores to calibrate on")
    k = int(np.ceil((1.0 - far) * len(s)))
    k = min(max(k, 0), len(s) - 1)
    return float(np.nextafter(s[k], np.inf))


def calibrate_on_lfw_view1(lfw_root: str, fars: tuple[float, ...] = (1e-2, 1e-3, 1e-4),
                           workers: int = 1, enroll_jitters: int = 0, **pipeline_opts: object) -> dict[str, object]:
    """Measure thresholds as described in the module docstring (takes minutes: ~5,000 images)."""
    root = Path(lfw_root)
    paths: list[str] = []
    for name in ("pairsDevTrain.txt", "pairsDevTest.txt"):
        paths += read_lfw_pairs(root / name, root).images()
    paths = list(dict.fromkeys(paths))
    res = run_side("ours", paths, workers, {"pick": "centre", **pipeline_opts})
    out = impostor_thresholds(res.vectors, fars)
    if enroll_jitters:
        enrolled = run_side("ours", paths, workers, {"pick": "centre", **pipeline_opts, "jitters": enroll_jitters})
        cross = impostor_thresholds(enrolled.vectors, fars, against=res.vectors)
        plain = dict(out["thresholds"])  # type: ignore[call-overload]
        out = {**out, "plain_thresholds": plain, "enrolled_vs_plain": cross,
               "thresholds": {f: max(plain[f], cross["thresholds"][f]) for f in plain}}  # type: ignore[index]
    return out


def impostor_thresholds(vectors: dict[str, np.ndarray | None], fars: tuple[float, ...],
                        against: dict[str, np.ndarray | None] | None = None) -> dict[str, object]:
    """Thresholds at each FAR from all different-person pairs among ``vectors`` (path -> unit vector).

    The person is the folder name (LFW layout ``images/<Person>/<file>``). With ``against``, the
    pairs are each of ``vectors`` with each of ``against`` (ordered, e.g. enrolled vs probe).
    """
    keys = [k for k, v in vectors.items() if v is not None]
    mat = np.stack([vectors[k] for k in keys]).astype(np.float32)
    people = np.array([Path(k).parent.name for k in keys])
    if against is None:
        sims = mat @ mat.T
        iu = np.triu_indices(len(keys), k=1)
        impostor = people[iu[0]] != people[iu[1]]
        scores = sims[iu][impostor]
    else:
        other = [k for k, v in against.items() if v is not None]
        omat = np.stack([against[k] for k in other]).astype(np.float32)
        opeople = np.array([Path(k).parent.name for k in other])
        scores = (mat @ omat.T)[people[:, None] != opeople[None, :]]
    return {
        "images": len(keys),
        "impostor_pairs": int(len(scores)),
        "thresholds": {str(f): round(threshold_at_far(scores, f), 4) for f in fars},
    }
