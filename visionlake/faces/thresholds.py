"""Calibrated verification thresholds (cosine similarity of L2-normalised vectors) by false accept rate.

This module holds the shipped table and its lookup only; the measurement that fills the table is
:mod:`visionlake.bench.faces_thresholds` (``visionlake bench thresholds --data DIR --enroll-jitters 10``),
which runs the face pipeline over LFW View 1: every image named in ``pairsDevTrain.txt`` +
``pairsDevTest.txt`` is embedded with the pack; all pairs of images of *different* people are
impostor pairs; the threshold at FAR f is the (1 - f) quantile of impostor similarities, so at most a
fraction f of impostors reach it. View 2 (``pairs.txt``), which reports accuracy, is never used.
Keeping the two apart means the pipeline (which reads this table) never imports the benchmark.

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
#: arcface-s: the same 4,992 images (SCRFD at native size, all found, crops warped with cv2's pixel
#: centres), 12,454,344 plain impostor pairs and 24,908,688 flip-added (enrolled) vs plain pairs, stricter
#: value per FAR (docs/benchmarks/thresholds-view1-arcface-s.json). Impostor pairs at or above each
#: threshold (plain / cross): 1e-2 124,395 / 248,790; 1e-3 12,437 / 24,874; 1e-4 1,238 / 2,476;
#: 1e-5 122 / 248; 1e-6 11 / 22 -- too few: the top impostor scores are LFW label noise (one person under
#: two names, near-duplicate photos), so the 1e-6 value is an estimate, not a measurement. The half-pixel
#: crop correction moved each value by at most 0.0008 (1e-6: 0.654 -> 0.6495).
CALIBRATED: dict[str, dict[float, float]] = {
    "dlib-resnet-v1": {1e-2: 0.9112, 1e-3: 0.9295, 1e-4: 0.9435},
    "arcface-s": {1e-2: 0.1662, 1e-3: 0.2272, 1e-4: 0.2828, 1e-5: 0.3357, 1e-6: 0.6495},
}


def calibrated_threshold(pack_name: str, far: float = 1e-3) -> float:
    """Shipped threshold of a pack at a false accept rate; interpolates log-linearly between FARs.

    Outside the calibrated range the nearest two FARs are extended along the same line.
    """
    table = CALIBRATED.get(pack_name)
    if not table:
        raise BadInput(f"no calibrated thresholds for face pack {pack_name!r}; known packs: "
                       f"{sorted(CALIBRATED)} (calibrate with visionlake bench thresholds)")
    if not 0 < far < 1:
        raise BadInput(f"FAR must be between 0 and 1, got {far}")
    if far in table:
        return table[far]
    fars = sorted(table)
    if len(fars) < 2:
        raise BadInput(f"face pack {pack_name!r} is calibrated only at FAR {fars[0]}; cannot derive FAR {far}")
    # fars[i-1] < far < fars[i] inside the range; the end pair outside it
    i = min(max(int(np.searchsorted(fars, far)), 1), len(fars) - 1)
    return _extrapolate(table, fars[i - 1], fars[i], far)


def _extrapolate(table: dict[float, float], a: float, b: float, far: float) -> float:
    la, lb, lf = np.log10(a), np.log10(b), np.log10(far)
    t = (lf - la) / (lb - la)
    return float(table[a] + t * (table[b] - table[a]))
