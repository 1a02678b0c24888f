"""The ONNX pack: ArcFace alignment maths and loading real ONNX graphs built here with ``onnx``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionlake.errors import BadInput, ModelUnavailable
from visionlake.faces.align import ARCFACE_112, arcface_crop, umeyama, warp_affine
from visionlake.faces.onnx_pack import OnnxArcFaceEmbedder
from visionlake.faces.pipeline import FacePipeline, load_image


def build_embedder(path: Path, dim: int = 512, batch: int | str = "n", size: int = 112) -> Path:
    """A tiny ArcFace-shaped graph: Nx3xSxS -> conv 8x8/8 -> flatten -> matmul -> NxD."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    cells = (size // 8) ** 2
    w = rng.normal(size=(4, 3, 8, 8)).astype(np.float32)
    fc = rng.normal(size=(4 * cells, dim)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["c"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "fc"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_arcface",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, dim])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(fc, "fc")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_umeyama_recovers_a_known_similarity_transform():
    angle, scale, t = np.deg2rad(17.0), 1.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.random.default_rng(3).uniform(0, 100, size=(5, 2))
    dst = (scale * (rot @ src.T)).T + t
    m = umeyama(src, dst)
    assert np.allclose(m[:, :2], scale * rot, atol=1e-9)
    assert np.allclose(m[:, 2], t, atol=1e-9)


def test_arcface_crop_puts_landmarks_on_the_template():
    """Draw dots at 5 'landmarks' in a rotated, scaled frame; the crop must put them on the template."""
    angle, scale = np.deg2rad(-20.0), 2.5
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = (scale * (rot @ ARCFACE_112.T)).T + np.array([150.0, 120.0])
    img = Image.new("RGB", (400, 400), (0, 0, 0))
    arr = np.asarray(img).copy()
    for x, y in pts:
        arr[int(round(y)) - 3:int(round(y)) + 4, int(round(x)) - 3:int(round(x)) + 4] = 255
    crop = np.asarray(arcface_crop(Image.fromarray(arr), pts, 112))[:, :, 0].astype(float)
    for tx, ty in ARCFACE_112:
        ys, xs = np.mgrid[int(ty) - 5:int(ty) + 6, int(tx) - 5:int(tx) + 6]
        wts = crop[ys, xs]
        assert wts.sum() > 0, "dot not found near its template position"
        cx, cy = (xs * wts).sum() / wts.sum(), (ys * wts).sum() / wts.sum()
        assert abs(cx - tx) < 1.5 and abs(cy - ty) < 1.5


def test_warp_affine_identity_keeps_pixels():
    arr = np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    out = np.asarray(warp_affine(Image.fromarray(arr), np.array([[1.0, 0, 0], [0, 1.0, 0]]), (30, 20)))
    assert np.abs(out.astype(int) - arr.astype(int)).max() <= 1


def _cv2_warp_reference(src: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """cv2.warpAffine's definition in NumPy: dst(x, y) = bilinear src at M^-1 (x, y), pixel centres on
    integer coordinates. Returns the float result and where all four source taps are inside."""
    w, h = size
    inv = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    rows, cols = src.shape[:2]
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < cols) & (y0 + 1 < rows)
    x0, y0 = np.clip(x0, 0, cols - 2), np.clip(y0, 0, rows - 2)
    s = src.astype(float)
    out = (s[y0, x0] * (1 - fx) * (1 - fy) + s[y0, x0 + 1] * fx * (1 - fy)
           + s[y0 + 1, x0] * (1 - fx) * fy + s[y0 + 1, x0 + 1] * fx * fy)
    return out, inside


def test_warp_affine_matches_cv2_pixel_centres():
    """ArcFace models were trained on cv2.warpAffine crops; ours must equal them, not be 0.5 px off."""
    src = np.random.default_rng(1).integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    a, s = np.deg2rad(23.0), 1.7
    m = np.array([[s * np.cos(a), -s * np.sin(a), 3.3], [s * np.sin(a), s * np.cos(a), -20.1]])
    ref, inside = _cv2_warp_reference(src, m, (60, 45))
    assert inside.sum() > 1000
    ours = np.asarray(warp_affine(Image.fromarray(src), m, (60, 45))).astype(float)
    assert np.abs(ours - ref)[inside].max() <= 1.0  # 8-bit rounding only
    old = np.asarray(warp_affine(Image.fromarray(src), m, (60, 45), centres="pil")).astype(float)
    assert np.abs(old - ref)[inside].mean() > 5.0  # Pillow's own convention is visibly off


def test_warp_affine_puts_a_known_point_where_cv2_does():
    """A single bright source pixel at (10, 7) under a 2x scale lands at output (20, 14) in cv2's
    convention (Pillow's own would put it at (20.5, 14.5))."""
    src = np.zeros((20, 20), dtype=np.uint8)
    src[7, 10] = 255
    out = np.asarray(warp_affine(Image.fromarray(src), np.array([[2.0, 0, 0], [0, 2.0, 0]]), (40, 40))).astype(float)
    assert out[14, 20] == 255
    ys, xs = np.mgrid[0:40, 0:40]
    assert abs((xs * out).sum() / out.sum() - 20) < 1e-6 and abs((ys * out).sum() / out.sum() - 14) < 1e-6


def test_warp_affine_rejects_an_unknown_convention():
    with pytest.raises(ValueError, match="centres"):
        warp_affine(Image.new("RGB", (4, 4)), np.array([[1.0, 0, 0], [0, 1.0, 0]]), (4, 4), centres="opencv")


def _skimage_umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """skimage.transform._geometric._umeyama (estimate_scale=True), transcribed, as insightface calls it
    through SimilarityTransform.estimate in norm_crop."""
    num, dim = src.shape
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_demean, dst_demean = src - src_mean, dst - dst_mean
    a = dst_demean.T @ src_demean / num
    d = np.ones((dim,))
    if np.linalg.det(a) < 0:
        d[dim - 1] = -1
    t = np.eye(dim + 1)
    u, s, v = np.linalg.svd(a)
    t[:dim, :dim] = u @ np.diag(d) @ v
    scale = 1.0 / src_demean.var(axis=0).sum() * (s @ d)
    t[:dim, dim] = dst_mean - scale * (t[:dim, :dim] @ src_mean.T)
    t[:dim, :dim] *= scale
    return t[:2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_umeyama_equals_skimage_on_noisy_landmarks(seed):
    """Noisy, even mirrored, 5-point sets: the same matrix as insightface's estimator."""
    rng = np.random.default_rng(seed)
    pts = ARCFACE_112 * rng.uniform(0.5, 3) + rng.uniform(0, 200, 2) + rng.normal(0, 4, (5, 2))
    if seed == 2:
        pts[:, 0] = -pts[:, 0]  # a reflection: both must still return a proper rotation
    assert np.allclose(umeyama(pts, ARCFACE_112), _skimage_umeyama(pts, ARCFACE_112), atol=1e-9)


@pytest.mark.parametrize("batch", ["n", 1])
def test_onnx_embedder_gives_unit_vectors_of_the_model_dimension(tmp_path, batch):
    emb = OnnxArcFaceEmbedder(build_embedder(tmp_path / "tiny.onnx", dim=512, batch=batch))
    assert emb.dim == 512 and emb.size == 112
    rng = np.random.default_rng(1)
    crops = [Image.fromarray(rng.integers(0, 256, size=(112, 112, 3), dtype=np.uint8)) for _ in range(3)]
    out = emb.embed_crops(crops)
    assert out.shape == (3, 512) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(out[0], out[1])  # different crops, different vectors
    assert np.allclose(emb.embed_crops(crops[:1])[0], out[0], atol=1e-5)  # batching does not matter


def test_onnx_pack_on_a_real_face(tmp_path, lfw_image_paths):
    model = build_embedder(tmp_path / "tiny.onnx", dim=512)
    pipe = FacePipeline(pack="onnx", embedder_path=str(model))
    assert pipe.dim == 512 and pipe.name == "onnx-tiny-512"
    img = load_image(lfw_image_paths["George_W_Bush"][0])
    found = pipe.analyse(img)
    assert len(found) >= 1
    face, vec = found[0]
    # SCRFD-style points: eyes above the nose, nose above the mouth corners
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    assert lx < rx and max(ly, ry) < ny < min(mly, mry) and mlx < mrx
    vecs = pipe.embed(img, [f for f, _ in found])
    assert vecs.shape == (len(found), 512)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vecs[0], vec, atol=1e-5)
    assert pipe.crop(img, face, 96).size == (96, 96)


def test_onnx_model_problems_are_clear_errors(tmp_path):
    with pytest.raises(ModelUnavailable, match="not found"):
        OnnxArcFaceEmbedder(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelUnavailable, match="cannot load"):
        OnnxArcFaceEmbedder(bad)
    with pytest.raises(BadInput, match="square"):
        import onnx
        from onnx import TensorProto, helper

        g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 112, 96])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 112, 96])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.save(m, str(tmp_path / "rect.onnx"))
        OnnxArcFaceEmbedder(tmp_path / "rect.onnx")
    with pytest.raises(BadInput, match="pack='onnx'"):
        FacePipeline(pack="dlib", detector_path=str(tmp_path / "det.onnx"))
    with pytest.raises(ModelUnavailable, match="not found"):
        FacePipeline(pack="onnx", embedder_path=str(build_embedder(tmp_path / "e.onnx")),
                     detector_path=str(tmp_path / "det.onnx"))


KPS = np.array([(-0.5, -0.3), (0.5, -0.3), (0.0, 0.1), (-0.4, 0.6), (0.4, 0.6)], dtype=np.float32)


def build_yunet(path: Path, size: int = 64) -> Path:
    """A YuNet-shaped graph with constant outputs: one strong face at stride 16 (row 1, col 2), a weaker
    duplicate next to it (removed by NMS) and a low-score anchor at stride 8 (below the threshold)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    outs, inits, nodes = [], [], []
    for s in (8, 16, 32):
        n = (size // s) ** 2
        cls, obj = np.zeros((1, n, 1), np.float32), np.zeros((1, n, 1), np.float32)
        bbox, kps = np.zeros((1, n, 4), np.float32), np.zeros((1, n, 10), np.float32)
        if s == 16:
            cls[0, 6, 0], obj[0, 6, 0] = 0.9, 0.9
            bbox[0, 6] = [0.5, 0.5, np.log(2.0), np.log(2.0)]
            kps[0, 6] = KPS.reshape(-1)
            cls[0, 7, 0], obj[0, 7, 0] = 0.8, 0.8
            bbox[0, 7] = [-0.4, 0.5, np.log(2.0), np.log(2.0)]
        if s == 8:
            cls[0, 0, 0], obj[0, 0, 0] = 0.3, 0.3
        for name, arr in (("cls", cls), ("obj", obj), ("bbox", bbox), ("kps", kps)):
            out = f"{name}_{s}"
            inits.append(numpy_helper.from_array(arr, f"c_{out}"))
            nodes.append(helper.make_node("Identity", [f"c_{out}"], [out]))
            outs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, list(arr.shape)))
    graph = helper.make_graph(nodes, "tiny_yunet",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
                              outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_yunet_outputs_are_decoded_to_original_pixels(tmp_path):
    from visionlake.faces.onnx_pack import YuNetDetector

    det = YuNetDetector(build_yunet(tmp_path / "yunet.onnx"))
    found = det.detect(np.zeros((128, 128, 3), dtype=np.uint8))  # model input is 64x64: scale 0.5
    assert len(found) == 1  # the duplicate is suppressed, the weak anchor is under the threshold
    box, score, pts = found[0]
    assert score == pytest.approx(0.9, abs=1e-5)
    assert np.allclose(box, (48, 16, 112, 80), atol=1e-3)  # centre (40,24), 32x32 at 64 px -> x2
    expected = (KPS + np.array([2, 1])) * 16 / 0.5
    assert np.allclose(pts, expected, atol=1e-3)


def test_onnx_pack_with_yunet_detector_and_arcface_embedder(tmp_path):
    pipe = FacePipeline(pack="onnx", embedder_path=str(build_embedder(tmp_path / "e.onnx")),
                        detector_path=str(build_yunet(tmp_path / "yunet.onnx")))
    img = Image.new("RGB", (128, 128), (90, 120, 150))
    found = pipe.analyse(img)
    assert len(found) == 1
    face, vec = found[0]
    assert face.box == (48, 16, 112, 80) and face.stage == "yunet" and len(face.landmarks) == 5
    assert vec.shape == (512,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-5
    with pytest.raises(BadInput, match="not a YuNet"):
        from visionlake.faces.onnx_pack import YuNetDetector

        YuNetDetector(build_embedder(tmp_path / "e2.onnx"))
