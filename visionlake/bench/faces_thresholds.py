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


#: the FARs calibrated for every pack (1:N against big galleries needs the small ones)
CALIBRATION_FARS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
#: fewer impostor pairs beyond a threshold than this and its FAR is an estimate, flagged as such
#: (a count of 100 has a Poisson spread of +-20%; at 10 the true FAR may be half or double)
MIN_IMPOSTORS_BEYOND = 100


def calibrate_on_lfw_view1(lfw_root: str, fars: tuple[float, ...] = CALIBRATION_FARS,
                           workers: int = 1, enroll_jitters: int = 0, pack: str = "dlib",
                           **pipeline_opts: object) -> dict[str, object]:
    """Measure thresholds as described in the module docstring (takes minutes: ~5,000 images).

    Works for any pack (``pack`` and its options go to :class:`~visionlake.faces.pipeline.FacePipeline`);
    the result names the embedding space, which is the key of ``CALIBRATED``. For ArcFace packs
    ``enroll_jitters > 0`` means flip-added enrollment templates (what enrollment asks of them).
    """
    from visionlake.faces.packs import pack_info

    root = Path(lfw_root)
    paths: list[str] = []
    for name in ("pairsDevTrain.txt", "pairsDevTest.txt"):
        paths += read_lfw_pairs(root / name, root).images()
    paths = list(dict.fromkeys(paths))
    opts = {"pick": "centre", "pack": pack, **pipeline_opts}
    res = run_side("ours", paths, workers, opts)
    out: dict[str, object] = {"pack": pack, "space": pack_info(pack).space, **impostor_thresholds(res.vectors, fars)}
    if enroll_jitters:
        enrolled = run_side("ours", paths, workers, {**opts, "jitters": enroll_jitters})
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
    # rounded UP to 4 decimals: a shipped threshold never admits more impostors than its FAR allows
    thresholds = {str(f): float(np.ceil(threshold_at_far(scores, f) * 1e4) / 1e4) for f in fars}
    return {
        "images": len(keys),
        "impostor_pairs": int(len(scores)),
        "thresholds": thresholds,
        # how many impostor pairs lie at or above each threshold: the evidence behind each FAR
        "impostors_at_or_above": {k: int(np.count_nonzero(scores >= t)) for k, t in thresholds.items()},
        "too_few_pairs": [k for k in thresholds if float(k) * len(scores) < MIN_IMPOSTORS_BEYOND],
    }
