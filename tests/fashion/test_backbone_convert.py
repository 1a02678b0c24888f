"""The EfficientNet-Lite0 converter: safe reading of .pth files and a graph equal to the reference maths."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
from pth_writer import evil_pickle, random_state, write_legacy, write_zip

from visionlake.errors import ModelUnavailable
from visionlake.fashion.backbone_convert import (
    BN_EPS,
    LITE0,
    ONNX_NAME,
    REFERENCE_FILE,
    WEIGHTS_NAME,
    Stage,
    block_layout,
    build_model,
    check_reference,
    convert,
    row_bands,
    run_onnx,
    same_pads,
    synthetic_images,
    to_input,
)
from visionlake.fashion.torch_pickle import UnsafePickle, load_state_dict

#: a small network with every feature of Lite0: stride-2 SAME padding, k3 and k5, expand 1 and 6, residuals
TINY = (Stage(1, 3, 1, 1, 8, 8), Stage(2, 3, 2, 6, 8, 12), Stage(2, 5, 2, 6, 12, 16))


# ------------------------------------------------------------------ a reference forward pass, unfolded BN
def _conv(x: np.ndarray, w: np.ndarray, stride: int, groups: int) -> np.ndarray:
    """TensorFlow-SAME convolution, written directly from the definition (no ONNX, no folding)."""
    n, c, h, wd = x.shape
    k = w.shape[-1]
    pt, pb, oh = same_pads(h, k, stride)
    pl, pr, ow = same_pads(wd, k, stride)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    out = np.zeros((n, w.shape[0], oh, ow), np.float64)
    cin = c // groups
    cout = w.shape[0] // groups
    for g in range(groups):
        xs = xp[:, g * cin:(g + 1) * cin]
        for i in range(k):
            for j in range(k):
                patch = xs[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
                wg = w[g * cout:(g + 1) * cout, :, i, j]
                out[:, g * cout:(g + 1) * cout] += np.einsum("nchw,oc->nohw", patch, wg)
    return out


def _bn(x: np.ndarray, s: dict, name: str) -> np.ndarray:
    sh = (1, -1, 1, 1)
    return ((x - s[f"{name}.running_mean"].reshape(sh)) / np.sqrt(s[f"{name}.running_var"].reshape(sh) + BN_EPS)
            * s[f"{name}.weight"].reshape(sh) + s[f"{name}.bias"].reshape(sh))


def reference_forward(s: dict, x: np.ndarray, stages, maps: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features and logits; ``maps`` (if given) receives every block's output and the head's map."""
    def act(v):
        return np.clip(v, 0, 6)

    x = act(_bn(_conv(x.astype(np.float64), s["_conv_stem.weight"], 2, 1), s, "_bn0"))
    for idx, st, residual in block_layout(stages):
        p = f"_blocks.{idx}"
        inp = x
        if st.expand != 1:
            x = act(_bn(_conv(x, s[f"{p}._expand_conv.weight"], 1, 1), s, f"{p}._bn0"))
        x = act(_bn(_conv(x, s[f"{p}._depthwise_conv.weight"], st.stride, x.shape[1]), s, f"{p}._bn1"))
        x = _bn(_conv(x, s[f"{p}._project_conv.weight"], 1, 1), s, f"{p}._bn2")
        if residual:
            x = x + inp
        if maps is not None:
            maps[idx] = x
    x = act(_bn(_conv(x, s["_conv_head.weight"], 1, 1), s, "_bn1"))
    if maps is not None:
        maps["head"] = x
    feats = x.mean(axis=(2, 3))
    return feats, feats @ s["_fc.weight"].T + s["_fc.bias"]


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("writer", [write_legacy, write_zip])
def test_synthetic_pth_converts_to_the_reference_maths(tmp_path, writer):
    state = random_state(TINY, seed=1)
    path = writer(tmp_path / "w.pth", state)
    loaded = load_state_dict(path)
    assert list(loaded) == list(state)
    assert all(np.array_equal(loaded[k], v) for k, v in state.items())

    model = build_model(loaded, image_size=37, stages=TINY)  # odd size: asymmetric SAME padding
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3, 37, 37)).astype(np.float32)
    feats, logits = run_onnx(tmp_path / "m.onnx", x)
    want_f, want_l = reference_forward(loaded, x, TINY)
    assert feats.shape == (2, 48) and logits.shape == (2, 10)
    np.testing.assert_allclose(feats, want_f, atol=1e-4)
    np.testing.assert_allclose(logits, want_l, atol=1e-4)


def test_spatial_outputs_are_the_band_and_row_means_of_the_reference_maps(tmp_path):
    """The ``rows`` embedding's parts: head map over 3 overlapping bands, row means of the last 2 blocks."""
    import onnxruntime as ort

    state = random_state(TINY, seed=5)
    model = build_model(state, image_size=37, stages=TINY)
    x = np.random.default_rng(6).uniform(-1, 1, (2, 3, 37, 37)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    head_rows, last_rows, prev_rows = sess.run(["head_rows", "last_block_rows", "prev_block_rows"], {"image": x})
    maps: dict = {}
    reference_forward(state, x, TINY, maps)
    head = maps["head"]  # 37 px -> 5 x 5 after three stride-2 steps
    assert head.shape[2] == 5 and row_bands(5) == [(0, 2), (1, 4), (3, 5)]
    want = np.stack([head[:, :, lo:hi].mean((2, 3)) for lo, hi in row_bands(5)], 1)
    np.testing.assert_allclose(head_rows, want, atol=1e-4)
    n_blocks = len(block_layout(TINY))
    np.testing.assert_allclose(last_rows, maps[n_blocks - 1].mean(3).transpose(0, 2, 1), atol=1e-4)
    np.testing.assert_allclose(prev_rows, maps[n_blocks - 2].mean(3).transpose(0, 2, 1), atol=1e-4)
    assert row_bands(7) == [(0, 3), (2, 5), (4, 7)]  # Lite0 at 224 px: top, middle, bottom thirds, overlapping


def test_convert_hook_writes_the_lite0_graph(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_legacy(src / WEIGHTS_NAME, random_state(LITE0, seed=3))
    convert(src, tmp_path / "out", check=False)
    feats, logits = run_onnx(tmp_path / "out" / ONNX_NAME, to_input(synthetic_images()[:1]))
    assert feats.shape == (1, 48) and logits.shape == (1, 10) and np.isfinite(logits).all()
    # random weights are not the real ones: the fetch-time check against stored reference logits refuses them
    with pytest.raises(ModelUnavailable, match="reference"):
        convert(src, tmp_path / "checked")
    assert not (tmp_path / "checked" / ONNX_NAME).exists()


def test_a_pickle_calling_os_system_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = evil_pickle(f"touch {marker}")
    # the payload is real: plain pickle would run it (in a throwaway check we do NOT perform here)
    assert b"system" in payload
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2)
                       + pickle.dumps({"little_endian": True}, 2) + payload)
    with pytest.raises(UnsafePickle, match="os.system"):
        load_state_dict(legacy)
    import zipfile

    with zipfile.ZipFile(tmp_path / "zipped.pth", "w") as z:
        z.writestr("archive/data.pkl", payload)
    with pytest.raises(UnsafePickle, match="os.system"):
        load_state_dict(tmp_path / "zipped.pth")
    src = tmp_path / "src"
    src.mkdir()
    (src / WEIGHTS_NAME).write_bytes(legacy.read_bytes())
    with pytest.raises(ModelUnavailable, match="refusing"):
        convert(src, tmp_path / "out")
    assert not marker.exists()


@pytest.mark.parametrize("blob", [b"", b"not a pickle", pickle.dumps({"a": 1}, 2)])
def test_garbage_files_are_refused_with_a_reason(tmp_path, blob):
    p = tmp_path / "x.pth"
    p.write_bytes(blob)
    with pytest.raises(UnsafePickle):
        load_state_dict(p)


def test_a_tampered_pth_is_refused_by_hash(tmp_path, monkeypatch):
    from visionlake.models import fetch, registry

    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(registry.MODELS_ENV, raising=False)
    folder = tmp_path / "brought"
    folder.mkdir()
    # right name, right size, wrong bytes: a well-formed weights file that is not the one we measured
    path = write_legacy(folder / WEIGHTS_NAME, random_state(LITE0, seed=4))
    with open(path, "ab") as fh:
        fh.write(b"\0" * (18826032 - path.stat().st_size))
    with pytest.raises(ModelUnavailable) as err:
        fetch("efficientnet-lite0", from_dir=folder, network=False, progress=False)
    assert "sha" in err.value.message.lower() or "hash" in err.value.message.lower(), err.value.message
    assert not (tmp_path / "cache" / "efficientnet-lite0").exists()


def test_stored_reference_is_the_real_models_and_the_fetched_graph_matches_it(real_model):
    ref = json.loads(REFERENCE_FILE.read_text())
    logits = np.asarray(ref["logits"])
    assert logits.shape == (len(synthetic_images()), 1000)
    folder = real_model("efficientnet-lite0")
    assert hashlib.sha256((folder / WEIGHTS_NAME).read_bytes()).hexdigest().startswith("579344248a93")
    assert check_reference(folder / ONNX_NAME, tolerance=1e-4) <= 1e-4
    # and the real weights read without torch give the same graph again (the converter is deterministic)
    state = load_state_dict(folder / WEIGHTS_NAME)
    assert state["_fc.weight"].shape == (1000, 1280) and len(state) == 296
