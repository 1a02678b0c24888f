"""Write a tiny TFLite model shaped like mediapipe's pose landmark model, for tests (no TensorFlow).

Its outputs have the real model's shapes: landmarks ``(1, 195)`` (39 x (x, y, z, visibility, presence) in
256-px input units) and presence ``(1, 1)`` are constants chosen by the test; the person mask
``(1, 256, 256, 1)`` is computed from the photo: logits ``gain * (threshold - mean(RGB))``, so dark
pixels are "person". Built with the flatbuffers schema that ships in ``ai-edge-litert``.
"""

from __future__ import annotations

import numpy as np


def pose_like_tflite(landmarks: np.ndarray, presence: float, threshold: float = 0.5, gain: float = 20.0) -> bytes:
    """The bytes of the tiny model (``landmarks``: (39, 5) array)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S

    buffers = [S.BufferT()]  # buffer 0: no data (activations)
    tensors: list = []

    def tensor(name: str, shape: tuple[int, ...], data: np.ndarray | None = None, dtype=np.float32) -> int:
        t = S.TensorT()
        t.name, t.shape = name, list(shape)
        t.type = S.TensorType.FLOAT32 if dtype == np.float32 else S.TensorType.INT32
        t.buffer = 0
        if data is not None:
            b = S.BufferT()
            b.data = np.asarray(data, dtype).tobytes()
            buffers.append(b)
            t.buffer = len(buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    codes: list = []

    def code(op: int) -> int:
        c = S.OperatorCodeT()
        c.builtinCode = c.deprecatedBuiltinCode = op
        c.version = 1
        codes.append(c)
        return len(codes) - 1

    mean, sub, mul, add = (code(o) for o in (S.BuiltinOperator.MEAN, S.BuiltinOperator.SUB, S.BuiltinOperator.MUL,
                                             S.BuiltinOperator.ADD))
    x = tensor("input_1", (1, 256, 256, 3))
    axis = tensor("axis", (1,), np.array([3]), np.int32)
    grey = tensor("grey", (1, 256, 256, 1))
    thr = tensor("threshold", (1,), np.array([threshold]))
    diff = tensor("diff", (1, 256, 256, 1))
    g = tensor("gain", (1,), np.array([gain]))
    seg = tensor("segmentation", (1, 256, 256, 1))
    lm_c = tensor("lm_const", (1, 195), np.asarray(landmarks, np.float32).reshape(1, 195))
    z195 = tensor("zeros195", (1, 195), np.zeros((1, 195)))
    lm = tensor("landmarks", (1, 195))
    p_c = tensor("presence_const", (1, 1), np.array([[presence]]))
    z1 = tensor("zero", (1, 1), np.zeros((1, 1)))
    pres = tensor("presence", (1, 1))
    ops = []

    def op(c: int, ins: list[int], outs: list[int], opt_type: int, opt: object) -> None:
        o = S.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = c, ins, outs
        o.builtinOptionsType, o.builtinOptions = opt_type, opt
        ops.append(o)

    r = S.ReducerOptionsT()
    r.keepDims = True
    op(mean, [x, axis], [grey], S.BuiltinOptions.ReducerOptions, r)
    op(sub, [thr, grey], [diff], S.BuiltinOptions.SubOptions, S.SubOptionsT())
    op(mul, [diff, g], [seg], S.BuiltinOptions.MulOptions, S.MulOptionsT())
    op(add, [lm_c, z195], [lm], S.BuiltinOptions.AddOptions, S.AddOptionsT())
    op(add, [p_c, z1], [pres], S.BuiltinOptions.AddOptions, S.AddOptionsT())
    sg = S.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators, sg.name = tensors, [x], [lm, pres, seg], ops, "main"
    m = S.ModelT()
    m.version, m.subgraphs, m.buffers, m.operatorCodes = 3, [sg], buffers, codes
    m.description = "tiny pose-like test model"
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
