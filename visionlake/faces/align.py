"""Face alignment without scikit-image or OpenCV.

The ArcFace family of embedders expects a 112x112 crop where five points (eye centres, nose tip,
mouth corners) land on a fixed template; the similarity transform that maps the detected points onto
the template is estimated with Umeyama's least-squares method and applied with Pillow's affine warp.
dlib's embedder uses dlib's own chip extractor (``dlib.get_face_chip``), see ``embed.py``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: insightface's reference points for a 112x112 ArcFace crop (left eye, right eye, nose, mouth L, R).
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping src to dst.

    Returns a 2x3 matrix ``M`` with ``dst ~= M @ [x, y, 1]``. Umeyama (1991), the same estimator that
    ``skimage.transform.SimilarityTransform`` uses, so crops match what ArcFace models were trained on.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError("umeyama needs two arrays of at least 2 matching points")
    n = len(src)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / n
    u, sig, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0
    rot = u @ d @ vt
    var_s = (s_c**2).sum() / n
    scale = float(np.trace(np.diag(sig) @ d) / var_s) if var_s > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = t
    return m


def warp_affine(image: Image.Image, matrix: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """Warp ``image`` with the forward 2x3 ``matrix`` (source -> output) into ``size``.

    Pillow's AFFINE transform wants the inverse map (output pixel -> source pixel), so invert first.
    """
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)
    coeffs = tuple(float(v) for v in inv[:2].reshape(-1))
    return image.transform(size, Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)


def arcface_crop(image: Image.Image, points5: np.ndarray, size: int = 112) -> Image.Image:
    """The standard ArcFace crop: similarity-align 5 points onto the template scaled to ``size``."""
    pts = np.asarray(points5, dtype=np.float64).reshape(-1, 2)
    template = ARCFACE_112 * (size / 112.0)
    if len(pts) == 3:  # eyes + nose only
        template = template[:3]
    m = umeyama(pts, template)
    return warp_affine(image, m, (size, size))
