"""A 0..1 face quality score from size, sharpness and pose.

Why: galleries at scale fill up with faces that hurt recognition (tiny faces in crowds, motion
blur, profiles). A cheap score lets enrollment refuse or warn, and lets search and clustering skip
the worst faces, without running another network. Each factor is in 0..1 and the score is their
geometric mean, so one very bad factor pulls the whole score down.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: A face this wide (pixels, in the original image) or wider counts as full size.
FULL_SIZE_PX = 100.0
#: Variance of the Laplacian (on a 64x64 grey patch) at which a face counts as half sharp.
SHARPNESS_HALF = 60.0


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: low on blurred patches, high on sharp ones."""
    g = gray.astype(np.float32)
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def size_score(width: float, height: float) -> float:
    """1 for faces of FULL_SIZE_PX and more, falling linearly to 0 at zero width."""
    return float(np.clip(min(width, height) / FULL_SIZE_PX, 0.0, 1.0))


def sharpness_score(gray_patch: np.ndarray) -> float:
    """Map Laplacian variance to 0..1 (SHARPNESS_HALF gives 0.5)."""
    v = laplacian_variance(gray_patch)
    return v / (v + SHARPNESS_HALF)


def eye_nose_points(landmarks: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two eye centres and the nose point from dlib 5-point or SCRFD-style 5-point landmarks.

    dlib's 5 points are (eye corner, eye corner, eye corner, eye corner, nose base); SCRFD/ArcFace
    style points are (left eye, right eye, nose tip, left mouth, right mouth). They are told apart by
    geometry, not by a flag: in dlib order the fourth point lies on the line through the first two
    (all four are eye corners), in SCRFD order it is a mouth corner about one eye distance below it.
    """
    p = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(p) != 5:
        raise ValueError(f"expected 5 landmarks, got {len(p)}")
    if is_scrfd_order(p):
        return p[0], p[1], p[2]
    return (p[0] + p[1]) / 2.0, (p[2] + p[3]) / 2.0, p[4]


def is_scrfd_order(points: np.ndarray) -> bool:
    """True when 5 points are (eye, eye, nose, mouth, mouth) rather than dlib's 4 eye corners + nose."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    base = p[1] - p[0]
    length = float(np.linalg.norm(base))
    if length < 1e-6:
        return False
    off = p[3] - p[0]
    dist_to_line = abs(float(base[0] * off[1] - base[1] * off[0])) / length
    return dist_to_line > 0.7 * length


def pose_score(landmarks: Sequence[tuple[float, float]]) -> float:
    """1 for a frontal face, towards 0 as the nose moves towards one eye (yaw) or the eyes tilt.

    Uses the asymmetry of the nose-to-eye distances relative to the distance between the eyes,
    which grows roughly with the sine of the yaw angle.
    """
    e1, e2, nose = eye_nose_points(landmarks)
    inter = float(np.linalg.norm(e1 - e2))
    if inter < 1e-6:
        return 0.0
    d1, d2 = float(np.linalg.norm(nose - e1)), float(np.linalg.norm(nose - e2))
    asym = abs(d1 - d2) / inter
    return float(np.clip(1.0 - asym, 0.0, 1.0))


def face_quality(width: float, height: float, gray_patch: np.ndarray,
                 landmarks: Sequence[tuple[float, float]]) -> float:
    """Geometric mean of size, sharpness and pose scores, rounded to 4 digits."""
    s = size_score(width, height)
    b = sharpness_score(gray_patch)
    p = pose_score(landmarks)
    return round(float((s * b * p) ** (1.0 / 3.0)), 4)
