"""Face alignment without scikit-image or OpenCV.

The ArcFace family of embedders expects a 112x112 crop where five points (eye centres, nose tip,
mouth corners) land on a fixed template; the similarity transform that maps the detected points onto
the template is estimated with Umeyama's least-squares method and applied with Pillow's affine warp.

Pixel-centre convention: insightface trained its models on crops made by ``cv2.warpAffine``, where
pixel (i, j) is the point (j, i) (centres on integer coordinates) and ``dst(x, y) = src(M^-1 (x, y))``;
the template points and the detector's landmarks use the same convention. Pillow puts pixel centres
at +0.5 (it maps output point (x + 0.5, y + 0.5) and samples the source at that point minus 0.5), so
handing it M^-1 unchanged moves every crop by 0.5 (L 1 - 1) output pixels against the training crops,
L = sR being M's linear part: almost nothing when the face is already at crop scale (LFW's 250 px
photos, s ~ 0.85: ~0.08 px), approaching half a pixel for faces that are shrunk a lot (phone photos,
s ~ 0.3: ~0.35 px) or enlarged. ``warp_affine`` conjugates the map by the 0.5 shift so that Pillow
computes what cv2 would (``centres="cv2"``, the default); ``centres="pil"`` keeps the old map.
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


CENTRES = ("cv2", "pil")


def pil_affine_coeffs(matrix: np.ndarray, centres: str = "cv2") -> tuple[float, ...]:
    """Pillow AFFINE coefficients (output point -> source point) for the forward 2x3 ``matrix``.

    With ``centres="cv2"`` the inverse map ``A x + c`` (integer-centred coordinates) is conjugated by
    the half-pixel shift: Pillow's map becomes ``A (p - 0.5) + c + 0.5``, i.e. ``c' = c + 0.5 - A 0.5``.
    """
    if centres not in CENTRES:
        raise ValueError(f"centres must be one of {CENTRES}, not {centres!r}")
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    if centres == "cv2":
        inv[:, 2] += 0.5 - inv[:, :2] @ np.array([0.5, 0.5])
    return tuple(float(v) for v in inv.reshape(-1))


def warp_affine(image: Image.Image, matrix: np.ndarray, size: tuple[int, int], centres: str = "cv2") -> Image.Image:
    """Warp ``image`` with the forward 2x3 ``matrix`` (source -> output) into ``size``.

    Pillow's AFFINE transform wants the inverse map (output pixel -> source pixel), so invert first;
    ``centres="cv2"`` (default) gives ``cv2.warpAffine``'s result (bilinear, black outside), which is
    what ArcFace models saw in training; ``"pil"`` is Pillow's own convention (half a pixel off).
    """
    coeffs = pil_affine_coeffs(matrix, centres)
    return image.transform(size, Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)


def arcface_crop(image: Image.Image, points5: np.ndarray, size: int = 112, centres: str = "cv2") -> Image.Image:
    """The standard ArcFace crop: similarity-align 5 points onto the template scaled to ``size``.

    ``centres`` is the pixel-centre convention of the warp (see the module docstring): "cv2" matches
    insightface's ``norm_crop`` (umeyama + ``cv2.warpAffine``).
    """
    pts = np.asarray(points5, dtype=np.float64).reshape(-1, 2)
    template = ARCFACE_112 * (size / 112.0)
    if len(pts) == 3:  # eyes + nose only
        template = template[:3]
    m = umeyama(pts, template)
    return warp_affine(image, m, (size, size), centres)
