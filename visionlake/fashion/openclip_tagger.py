"""Optional backend: any open_clip model with torch (the ``clip`` extra), plus ONNX export of one.

Why optional: torch is gigabytes and the core install must work without it; users who want a model
that has no ONNX export (or want to compare) install ``visionlake[clip]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from visionlake.errors import ModelUnavailable


def _import_open_clip() -> tuple[Any, Any]:
    try:
        import open_clip
        import torch
    except ImportError as exc:
        raise ModelUnavailable(
            f"the open_clip backend needs the 'clip' extra ({exc}); install it with "
            "pip install 'visionlake[clip]' (torch==2.14.1 torchvision==0.29.1 open_clip_torch), "
            "or use the default ONNX backend"
        ) from None
    return open_clip, torch


class OpenClipFashionModel:
    """open_clip model with ``embed_images``/``embed_texts`` (L2-normalised numpy rows).

    ``pretrained=None`` gives random weights: fine for timing, useless for tagging.
    """

    backend = "open_clip"

    def __init__(self, model_name: str = "hf-hub:Marqo/marqo-fashionSigLIP", pretrained: str | None = None,
                 batch_size: int = 16, threads: int | None = None) -> None:
        open_clip, torch = _import_open_clip()
        self._torch = torch
        if threads:
            torch.set_num_threads(int(threads))
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
        except Exception as exc:
            raise ModelUnavailable(f"cannot create open_clip model {model_name!r}: {str(exc)[:200]}") from None
        model.eval()
        self.model = model
        self.transform = preprocess
        self.batch_size = max(1, int(batch_size))
        self.name = model_name
        try:
            self.tokenizer = open_clip.get_tokenizer(model_name)
        except Exception:  # tokenizer files not reachable offline: images still work
            self.tokenizer = None
        with torch.no_grad():
            self.logit_scale = float(model.logit_scale.exp().item()) if hasattr(model, "logit_scale") else 100.0
            probe = self.transform(PILImage.new("RGB", (32, 32))).unsqueeze(0)
            self.dim = int(model.encode_image(probe).shape[-1])

    def embed_images(self, images: Sequence[PILImage.Image]) -> np.ndarray:
        torch = self._torch
        out = []
        with torch.no_grad():
            for start in range(0, len(images), self.batch_size):
                x = torch.stack([self.transform(im.convert("RGB")) for im in images[start : start + self.batch_size]])
                out.append(self.model.encode_image(x, normalize=True).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if self.tokenizer is None:
            raise ModelUnavailable(f"no tokenizer available for {self.name} (offline?)")
        torch = self._torch
        with torch.no_grad():
            return self.model.encode_text(self.tokenizer(list(texts)), normalize=True).float().numpy()


def export_onnx(model: Any, out_dir: str | Path, image_size: int = 224, opset: int = 17,
                text: bool = False, logit_scale: float | None = None) -> Path:
    """Export an open_clip model's image tower (and optionally text tower) to ``out_dir/onnx``.

    The folder then loads with :class:`visionlake.fashion.onnx_tagger.OnnxFashionModel`. Used by the
    benchmark to time the same architecture on both backends.
    """
    _open_clip, torch = _import_open_clip()
    out = Path(out_dir)
    (out / "onnx").mkdir(parents=True, exist_ok=True)

    class _Vision(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, pixel_values):  # noqa: ANN001
            return self.m.encode_image(pixel_values)

    dummy = torch.randn(2, 3, image_size, image_size)
    with torch.no_grad():
        torch.onnx.export(_Vision(model).eval(), (dummy,), str(out / "onnx" / "vision_model.onnx"),
                          input_names=["pixel_values"], output_names=["image_embeds"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
                          opset_version=opset, dynamo=False)
    if text:
        class _Text(torch.nn.Module):
            def __init__(self, m: Any) -> None:
                super().__init__()
                self.m = m

            def forward(self, input_ids):  # noqa: ANN001
                return self.m.encode_text(input_ids)

        ctx = int(getattr(model, "context_length", 64) or 64)
        ids = torch.zeros(2, ctx, dtype=torch.long)
        with torch.no_grad():
            torch.onnx.export(_Text(model).eval(), (ids,), str(out / "onnx" / "text_model.onnx"),
                              input_names=["input_ids"], output_names=["text_embeds"],
                              dynamic_axes={"input_ids": {0: "batch"}, "text_embeds": {0: "batch"}},
                              opset_version=opset, dynamo=False)
    cfg: dict[str, Any] = {"preprocess": {"size": image_size}}
    if logit_scale:
        cfg["logit_scale"] = logit_scale
    (out / "visionlake.json").write_text(json.dumps(cfg))
    return out
