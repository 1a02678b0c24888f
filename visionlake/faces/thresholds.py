"""Calibrated verification thresholds (cosine similarity of L2-normalised vectors) by false accept rate.

How they were measured (``python -m visionlake.faces.thresholds --data ../shared/data/lfw``): every
image named in LFW View 1 (``pairsDevTrain.txt`` + ``pairsDevTest.txt``) is embedded with the pack;
all pairs of images of *different* people are impostor pairs; the threshold at FAR f is the
(1 - f) quantile of impostor similarities, so at most a fraction f of impostors reach it. View 2
(``pairs.txt``), which reports accuracy, is never used here.

Enrollment embeds with jitters (``gallery.ENROLL_JITTERS``) while probes do not, so identification
compares a jittered template with a plain one, and those impostor pairs score a little higher
(at the plain 1e-3 threshold their FAR was 1.1e-3). With ``--enroll-jitters N`` the measurement also
scores every enrolled-style template against every plain one and keeps, per FAR, the stricter of the
two thresholds: the shipped operating point then holds for verify (plain vs plain), identify
(enrolled vs probe) and clustering alike.
"""

from __future__ import annotations

import numpy as np

from visionlake.errors import BadInput

#: pack name -> {FAR: cosine similarity threshold}. Filled from the measurement described above.
#: dlib-resnet-v1: 4,992 View 1 images (flip-averaged embeddings, the default), 12,454,344 impostor pairs,
#: and the 24,908,688 ordered pairs of a 10-jitter template against a plain one (``--enroll-jitters 10``).
#: arcface-s: the same 4,992 images (SCRFD at native size, all found), 12,454,344 plain impostor pairs and
#: 24,908,688 flip-added (enrolled) vs plain pairs, stricter value per FAR. Impostor pairs at or above each
#: threshold (plain / cross): 1e-2 124,383 / 248,539; 1e-3 12,437 / 24,854; 1e-4 1,242 / 2,489;
#: 1e-5 122 / 248; 1e-6 11 / 23 -- too few: the top impostor scores are LFW label noise (one person under
#: two names, near-duplicate photos), so the 1e-6 value is an estimate, not a measurement.
CALIBRATED: dict[str, dict[float, float]] = {
    "dlib-resnet-v1": {1e-2: 0.9112, 1e-3: 0.9295, 1e-4: 0.9435},
    "arcface-s": {1e-2: 0.1665, 1e-3: 0.2278, 1e-4: 0.283, 1e-5: 0.3365, 1e-6: 0.654},
}


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """Smallest similarity such that at most ``far`` of the impostor scores reach it."""
    s = np.sort(np.asarray(impostor_scores, dtype=np.float64))
    if len(s) == 0:
        raise BadInput("no impostor scores to calibrate on")
    k = int(np.ceil((1.0 - far) * len(s)))
    k = min(max(k, 0), len(s) - 1)
    return float(np.nextafter(s[k], np.inf)) if k < len(s) else float(s[-1])


def calibrated_threshold(pack_name: str, far: float = 1e-3) -> float:
    """Shipped threshold of a pack at a false accept rate; interpolates log-linearly between FARs."""
    table = CALIBRATED.get(pack_name)
    if not table:
        raise BadInput(f"no calibrated thresholds for face pack {pack_name!r}; known packs: "
                       f"{sorted(CALIBRATED)} (calibrate with python -m visionlake.faces.thresholds)")
    if not 0 < far < 1:
        raise BadInput(f"FAR must be between 0 and 1, got {far}")
    fars = sorted(table)
    if far in table:
        return table[far]
    if far <= fars[0]:
        return table[fars[0]] if far == fars[0] else _extrapolate(table, fars[0], fars[1], far)
    if far >= fars[-1]:
        return _extrapolate(table, fars[-2], fars[-1], far)
    for lo, hi in zip(fars, fars[1:], strict=False):
        if lo <= far <= hi:
            return _extrapolate(table, lo, hi, far)
    raise AssertionError("unreachable")


def _extrapolate(table: dict[float, float], a: float, b: float, far: float) -> float:
    la, lb, lf = np.log10(a), np.log10(b), np.log10(far)
    t = (lf - la) / (lb - la)
    return float(table[a] + t * (table[b] - table[a]))


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
    the result names the embedding space, which is the key of :data:`CALIBRATED`.
    """
    from pathlib import Path

    from visionlake.bench.faces_lfw import read_lfw_pairs, run_side

    root = Path(lfw_root)
    paths: list[str] = []
    for name in ("pairsDevTrain.txt", "pairsDevTest.txt"):
        paths += read_lfw_pairs(root / name, root).images()
    paths = list(dict.fromkeys(paths))
    opts = {"pick": "centre", "pack": pack, **pipeline_opts}
    res = run_side("ours", paths, workers, opts)
    out = {"pack": pack, "space": _space_of(pack, pipeline_opts), **impostor_thresholds(res.vectors, fars)}
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
    from pathlib import Path

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
        # how many impostor pairs lie at or above each (rounded) threshold: the evidence behind each FAR
        "impostors_at_or_above": {k: int(np.count_nonzero(scores >= t)) for k, t in thresholds.items()},
        "too_few_pairs": [k for k in thresholds if float(k) * len(scores) < MIN_IMPOSTORS_BEYOND],
    }


def _space_of(pack: str, opts: dict[str, object]) -> str | None:
    from visionlake.faces.packs import pack_info

    return pack_info(pack).space


if __name__ == "__main__":  # pragma: no cover - a measurement tool
    import argparse
    import json

    ap = argparse.ArgumentParser(description="Calibrate verification thresholds on LFW View 1.")
    ap.add_argument("--data", required=True, help="LFW folder (images/, pairsDevTrain.txt, pairsDevTest.txt)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--pack", default="dlib", help="face pack to calibrate (dlib, arcface-s, ...)")
    ap.add_argument("--enroll-jitters", type=int, default=0,
                    help="also hold each FAR for enrolled (jittered) vs plain templates")
    args = ap.parse_args()
    print(json.dumps(calibrate_on_lfw_view1(args.data, workers=args.workers, enroll_jitters=args.enroll_jitters,
                                            pack=args.pack),
                     indent=2))
