"""Experiment (not shipped): fine-tune EfficientNet-Lite0's last blocks on product labels (needs torch).

Measured by ``select_finetune.py`` and NOT adopted: on the blocked CV of ids 10000-13999 it did not beat
the frozen backbone (docs/benchmarks/fashion-backbone-cv-options.json). Kept so the measurement can be
rerun and extended (more epochs, earlier taps) on a machine with more CPU than the 2 shared cores here.

Why only the last blocks, and why this way: on a CPU the whole network is too slow to train on a
catalogue, but the blocks after a "tap" (block ``TAP_BLOCK``'s input, 7x7 maps) are cheap. The frozen
front is run ONCE by ONNX Runtime (with a horizontally flipped copy as augmentation) and only the tail
is trained, in torch, from the same state dict the converter reads. The trained tensors are written
back into that state dict (BatchNorm statistics stay frozen, only conv weights and BN scale/shift
move), so the project's own converter builds the ONNX graph of the tuned backbone: no torch export,
one graph builder, and the result runs exactly like the stock backbone.

Run with a venv holding torch (CPU wheel), numpy and scikit-learn, PYTHONPATH at the repository root.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from visionlake.errors import BadInput, ModelUnavailable
from visionlake.fashion.backbone_convert import BN_EPS, LITE0, block_layout, same_pads


@dataclass(frozen=True)
class FineTuneSettings:
    """Defaults of the experiment; the variants tried are named in select_finetune.py."""

    tap_block: int = 14
    epochs: int = 8
    lr: float = 3e-4
    head_lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    label_smoothing: float = 0.1
    min_per_class: int = 5
    seed: int = 0


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ModelUnavailable("this experiment needs torch (a CPU wheel is enough) in the venv running it") from None
    return torch


def tap_name(tap_block: int) -> str:
    """The converter's name prefix of the tensor that enters block ``tap_block`` (output of the one before)."""
    if tap_block < 1:
        raise BadInput("the tap must be after block 0")
    return f"_blocks.{tap_block - 1}."


def tail_module(state: dict[str, np.ndarray], tap_block: int, in_size: int, stop_block: int | None = None) -> Any:
    """A torch module: activations entering ``tap_block`` (N, C, in_size, in_size) -> pooled 1280-d features.

    It mirrors the converter's graph for those blocks (SAME padding, ReLU6, skip on repeated blocks,
    BatchNorm with frozen running statistics) and holds its trainable tensors under the state dict's keys.
    With ``stop_block`` it ends there and returns the activations entering that block (no head, no pooling).
    """
    torch = _torch()
    nn = torch.nn
    f = torch.nn.functional

    class ConvBN(nn.Module):
        def __init__(self, conv: str, bn: str, size: int, stride: int = 1, groups: int = 1, relu6: bool = True):
            super().__init__()
            w = state[f"{conv}.weight"]
            self.keys = {"w": f"{conv}.weight", "g": f"{bn}.weight", "b": f"{bn}.bias"}
            self.w = nn.Parameter(torch.from_numpy(np.array(w, np.float32)))
            self.g = nn.Parameter(torch.from_numpy(np.array(state[f"{bn}.weight"], np.float32)))
            self.b = nn.Parameter(torch.from_numpy(np.array(state[f"{bn}.bias"], np.float32)))
            self.register_buffer("mean", torch.from_numpy(np.array(state[f"{bn}.running_mean"], np.float32)))
            self.register_buffer("var", torch.from_numpy(np.array(state[f"{bn}.running_var"], np.float32)))
            k = int(w.shape[-1])
            before, after, self.out_size = same_pads(size, k, stride)
            self.pad = (before, after, before, after)
            self.stride, self.groups, self.relu6 = stride, groups, relu6

        def forward(self, x: Any) -> Any:
            if any(self.pad):
                x = f.pad(x, self.pad)
            y = f.conv2d(x, self.w, None, self.stride, 0, 1, self.groups)
            scale = self.g / torch.sqrt(self.var + BN_EPS)
            y = y * scale[None, :, None, None] + (self.b - self.mean * scale)[None, :, None, None]
            return f.hardtanh(y, 0.0, 6.0) if self.relu6 else y

    class Block(nn.Module):
        def __init__(self, idx: int, expand: int, stride: int, residual: bool, size: int):
            super().__init__()
            p = f"_blocks.{idx}"
            self.expand = ConvBN(f"{p}._expand_conv", f"{p}._bn0", size) if expand != 1 else None
            ch = int(state[f"{p}._depthwise_conv.weight"].shape[0])
            self.dw = ConvBN(f"{p}._depthwise_conv", f"{p}._bn1", size, stride=stride, groups=ch)
            self.project = ConvBN(f"{p}._project_conv", f"{p}._bn2", self.dw.out_size, relu6=False)
            self.residual = residual
            self.out_size = self.dw.out_size

        def forward(self, x: Any) -> Any:
            y = self.expand(x) if self.expand is not None else x
            y = self.project(self.dw(y))
            return y + x if self.residual else y

    class Tail(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            blocks = []
            size = in_size
            for idx, st, residual in block_layout(LITE0):
                if idx < tap_block or (stop_block is not None and idx >= stop_block):
                    continue
                b = Block(idx, st.expand, st.stride, residual, size)
                size = b.out_size
                blocks.append(b)
            if not blocks:
                raise BadInput(f"tap block {tap_block} is past the last block")
            self.blocks = nn.ModuleList(blocks)
            self.head = ConvBN("_conv_head", "_bn1", size) if stop_block is None else None

        def forward(self, x: Any) -> Any:
            for b in self.blocks:
                x = b(x)
            return self.head(x).mean(dim=(2, 3)) if self.head is not None else x

        def write_back(self, out: dict[str, np.ndarray]) -> None:
            """Put the trained tensors into ``out`` (a copy of the state dict) under their original keys."""
            for m in self.modules():
                if isinstance(m, ConvBN):
                    for attr, key in m.keys.items():
                        out[key] = getattr(m, attr).detach().cpu().numpy().astype(np.float32)

    return Tail()


def fine_tune(state: dict[str, np.ndarray], acts: np.ndarray, acts_flip: np.ndarray | None, labels: Sequence[str],
              settings: FineTuneSettings | None = None,
              progress: Callable[[int, int, float], None] | None = None) -> dict[str, np.ndarray]:
    """A copy of ``state`` whose tail (from ``settings.tap_block``) is trained to tell ``labels`` apart.

    ``acts``: the activations entering the tap block for each labelled photo (float16 or float32,
    N x C x S x S); ``acts_flip`` the same for the horizontally flipped photos (used as augmentation).
    Classes with fewer than ``min_per_class`` photos are left out of the training loss.
    """
    torch = _torch()
    s = settings or FineTuneSettings()
    y_all = np.asarray([str(v) for v in labels])
    if len(y_all) != len(acts):
        raise BadInput(f"{len(acts)} activations for {len(y_all)} labels")
    classes, counts = np.unique(y_all, return_counts=True)
    keep_classes = classes[counts >= s.min_per_class]
    if len(keep_classes) < 2:
        raise BadInput(f"fine-tuning needs at least two labels with >= {s.min_per_class} photos each")
    keep = np.isin(y_all, keep_classes)
    index = {c: i for i, c in enumerate(keep_classes)}
    y = torch.tensor([index[v] for v in y_all[keep]], dtype=torch.long)
    xa = torch.from_numpy(np.asarray(acts)[keep])
    xf = torch.from_numpy(np.asarray(acts_flip)[keep]) if acts_flip is not None else None

    torch.manual_seed(s.seed)
    gen = np.random.default_rng(s.seed)
    tail = tail_module(state, s.tap_block, int(xa.shape[-1]))
    classifier = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(1280, len(keep_classes)))
    opt = torch.optim.AdamW([{"params": tail.parameters(), "lr": s.lr},
                             {"params": classifier.parameters(), "lr": s.head_lr}], weight_decay=s.weight_decay)
    n = len(y)
    steps = s.epochs * ((n + s.batch_size - 1) // s.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[s.lr, s.head_lr], total_steps=steps, pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=s.label_smoothing)
    tail.train()
    classifier.train()
    for epoch in range(s.epochs):
        order = gen.permutation(n)
        total = 0.0
        for start in range(0, n, s.batch_size):
            idx = order[start:start + s.batch_size]
            xb = xa[idx].float()
            if xf is not None:
                flip = torch.from_numpy(gen.random(len(idx)) < 0.5)
                xb = torch.where(flip[:, None, None, None], xf[idx].float(), xb)
            loss = loss_fn(classifier(tail(xb)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if progress is not None:
            progress(epoch + 1, s.epochs, total / n)
    out = {k: np.array(v) for k, v in state.items()}
    tail.write_back(out)
    return out


def tail_features(state: dict[str, np.ndarray], acts: np.ndarray, tap_block: int, batch: int = 256) -> np.ndarray:
    """Pooled features of the tail for given tap activations (the experiments' shortcut for the full graph)."""
    torch = _torch()
    tail = tail_module(state, tap_block, int(acts.shape[-1]))
    tail.eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(acts), batch):
            rows.append(tail(torch.from_numpy(np.asarray(acts[start:start + batch])).float()).numpy())
    return np.concatenate(rows) if rows else np.zeros((0, 1280), np.float32)


def advance(state: dict[str, np.ndarray], acts: np.ndarray, from_block: int, to_block: int, batch: int = 256
            ) -> np.ndarray:
    """Activations entering ``to_block`` from those entering ``from_block`` (frozen blocks, float16 out)."""
    torch = _torch()
    part = tail_module(state, from_block, int(acts.shape[-1]), stop_block=to_block)
    part.eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(acts), batch):
            rows.append(part(torch.from_numpy(np.asarray(acts[start:start + batch])).float()).numpy()
                        .astype(np.float16))
    return np.concatenate(rows)
