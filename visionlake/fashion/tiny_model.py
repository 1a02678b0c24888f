"""A tiny two-tower ONNX model + tokenizer, written to a folder laid out like the real Marqo export.

Why: the real model cannot be downloaded offline, yet the folder-loading code, tokenisation, batching,
zero-shot scoring, heads and search must be exercised end to end. The towers are tiny but not
meaningless: the image tower's first 8 dimensions encode the mean colour and the text tower maps the
words ``red``, ``green``, ``blue`` (...) to the same directions, so a red photo really is closest to
"a photo of a red garment". The other 24 dimensions are a fixed random projection of a 4x4 colour
layout, enough for trained heads to separate shapes a little.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

#: word -> mean RGB in [-1, 1] (after SigLIP normalisation) it stands for
COLOUR_WORDS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, -1.0, -1.0),
    "green": (-1.0, 1.0, -1.0),
    "blue": (-1.0, -1.0, 1.0),
    "white": (1.0, 1.0, 1.0),
    "black": (-1.0, -1.0, -1.0),
    "yellow": (1.0, 1.0, -1.0),
}
FILLER_WORDS = ["a", "an", "photo", "of", "garment", "product", "clothing", "person", "wearing", "the",
                "dress", "shirt", "shoe", "bag", "striped", "plain", "with"]
IMAGE_SIZE = 64
COLOUR_DIM = 8
LAYOUT_DIM = 24
DIM = COLOUR_DIM + LAYOUT_DIM
CONTEXT = 16


def build_tiny_model(folder: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write ``onnx/vision_model.onnx``, ``onnx/text_model.onnx``, ``tokenizer.json`` and
    ``visionlake.json`` into ``folder`` (needs the ``onnx`` package) and return the folder."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    out = Path(folder)
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # orthonormal rows: the projection keeps the geometry of colours (red stays far from black)
    q, _ = np.linalg.qr(rng.standard_normal((COLOUR_DIM, 3)))
    w_colour = (q.T * 4.0).astype(np.float32)
    w_layout = (rng.standard_normal((48, LAYOUT_DIM)) * 0.3).astype(np.float32)

    # ---- vision: mean colour -> 8 dims, 4x4 average pool layout -> 24 dims, concatenated
    nodes = [
        helper.make_node("ReduceMean", ["pixel_values", "axes_hw"], ["mean_c"], keepdims=0),
        helper.make_node("MatMul", ["mean_c", "w_colour"], ["colour_part"]),
        helper.make_node("AveragePool", ["pixel_values"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w_layout"], ["layout_part"]),
        helper.make_node("Concat", ["colour_part", "layout_part"], ["image_embeds"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_vision",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", DIM])],
        [numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes_hw"),
         numpy_helper.from_array(w_colour, "w_colour"), numpy_helper.from_array(w_layout, "w_layout")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(out / "onnx" / "vision_model.onnx"))

    # ---- tokenizer: a word-level vocabulary
    vocab = {"<pad>": 0, "<unk>": 1}
    for w in list(COLOUR_WORDS) + FILLER_WORDS:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(out / "tokenizer.json"))

    # ---- text: embedding table, mean over positions; colour words align with the colour directions
    table = np.zeros((len(vocab), DIM), dtype=np.float32)
    for w, rgb in COLOUR_WORDS.items():
        table[vocab[w], :COLOUR_DIM] = np.asarray(rgb, np.float32) @ w_colour
    for w in FILLER_WORDS:  # small noise so that filler words never dominate
        table[vocab[w]] = rng.standard_normal(DIM).astype(np.float32) * 0.01
    tnodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["tok_emb"], axis=0),
        helper.make_node("ReduceMean", ["tok_emb", "axes_t"], ["text_embeds"], keepdims=0),
    ]
    tgraph = helper.make_graph(
        tnodes, "tiny_text",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", CONTEXT])],
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["batch", DIM])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([1], dtype=np.int64), "axes_t")],
    )
    tmodel = helper.make_model(tgraph, opset_imports=[helper.make_opsetid("", 18)])
    tmodel.ir_version = 8
    onnx.checker.check_model(tmodel)
    onnx.save(tmodel, str(out / "onnx" / "text_model.onnx"))
    (out / "visionlake.json").write_text(json.dumps({"name": "tiny-test-model", "context_length": CONTEXT,
                                                      "logit_scale": 50.0, "pad_id": 0}))
    return out
