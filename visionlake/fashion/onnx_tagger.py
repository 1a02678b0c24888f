"""Marqo-FashionSigLIP (or any CLIP-style two-tower export) on ONNX Runtime: embeddings and zero-shot tags.

Why ONNX Runtime: the core install must not need torch, and a batched, graph-optimised ORT session
is faster on a CPU than the plain open_clip loop. The model folder holds what the authors publish::

    <dir>/onnx/vision_model.onnx   (or <dir>/vision_model.onnx; *_int8.onnx when quantized=True)
    <dir>/onnx/text_model.onnx
    <dir>/tokenizer.json
    <dir>/open_clip_config.json    (optional: preprocess_cfg, text context_length)
    <dir>/visionlake.json          (optional: logit_scale, context_length, pad_id overrides)

The same folder-loading code serves the real model and the tiny one the tests build.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from visionlake.errors import BadInput, ModelUnavailable
from visionlake.fashion.taxonomy import Taxonomy
from visionlake.models.registry import check_hub_reachable as _check_hub_reachable

DEFAULT_MODEL_ID = "Marqo/marqo-fashionSigLIP"
MODEL_ENV = "VISIONLAKE_FASHION_MODEL"
#: SigLIP's learned temperature lands near exp(4.7) ~ 110; used when the folder does not say.
DEFAULT_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class Preprocess:
    """How the model's own pipeline turns a photo into a tensor (open_clip ``PreprocessCfg``)."""

    size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "bicubic"
    resize_mode: str = "squash"  # SigLIP: squash to size x size, no crop

    def __call__(self, images: Sequence[PILImage.Image]) -> np.ndarray:
        """Batch of RGB PIL images -> float32 NCHW array, matching open_clip's eval transform."""
        resample = PILImage.Resampling.BICUBIC if self.interpolation != "bilinear" else PILImage.Resampling.BILINEAR
        out = np.empty((len(images), self.size, self.size, 3), dtype=np.uint8)
        for i, im in enumerate(images):
            if not isinstance(im, PILImage.Image):
                raise BadInput(f"expected a PIL image, got {type(im).__name__}")
            im = im if im.mode == "RGB" else im.convert("RGB")
            if self.resize_mode == "squash":
                im = im.resize((self.size, self.size), resample)
            else:  # shortest side to size, then centre crop (CLIP-style)
                scale = self.size / min(im.size)
                w, h = max(self.size, round(im.width * scale)), max(self.size, round(im.height * scale))
                im = im.resize((w, h), resample)
                left, top = int(round((w - self.size) / 2.0)), int(round((h - self.size) / 2.0))
                im = im.crop((left, top, left + self.size, top + self.size))
            out[i] = np.asarray(im, dtype=np.uint8)
        x = out.astype(np.float32) * np.float32(1 / 255)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def resolve_model_dir(model: str | os.PathLike[str] | None = None, quantized: bool = False) -> Path:
    """A local folder for ``model``: an existing path, ``VISIONLAKE_FASHION_MODEL``, or a hub download.

    Raises :class:`ModelUnavailable` with instructions when nothing local exists and the download fails
    (the usual case offline).
    """
    candidate = model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL_ID
    path = Path(str(candidate)).expanduser()
    if path.exists():
        if not path.is_dir():
            raise BadInput(f"model path {path} is not a folder")
        return path
    model_id = str(candidate)
    if model_id.startswith((".", "/", "~")):
        raise ModelUnavailable(f"model folder {model_id} does not exist")
    suffix = "_int8" if quantized else ""
    files = [f"onnx/vision_model{suffix}.onnx", f"onnx/text_model{suffix}.onnx", "tokenizer.json"]
    try:
        from huggingface_hub import hf_hub_download

        try:  # already in the local Hugging Face cache: no network at all
            local = None
            for f in files:
                local = hf_hub_download(model_id, f, local_files_only=True)
            assert local is not None
            return Path(local).parent.parent
        except Exception:  # noqa: BLE001 - not cached: download below
            pass
        _check_hub_reachable()
        local = None
        for f in files:
            local = hf_hub_download(model_id, f)
        for extra in ("open_clip_config.json",):
            try:
                hf_hub_download(model_id, extra)
            except Exception:  # optional file
                pass
        assert local is not None
        return Path(local).parent.parent
    except Exception as exc:  # offline, unknown repo, missing file
        raise ModelUnavailable(
            f"could not download fashion model {model_id!r} ({type(exc).__name__}: {str(exc)[:160]}). "
            f"Download its ONNX export ({', '.join(files)}) on a machine with network and point at the "
            f"folder with --model-dir DIR or {MODEL_ENV}=DIR"
        ) from None


def _find(folder: Path, name: str, quantized: bool) -> Path:
    stem, ext = name.rsplit(".", 1)
    names = [f"{stem}_int8.{ext}", name] if quantized else [name]
    for n in names:
        for p in (folder / "onnx" / n, folder / n):
            if p.exists():
                return p
    raise ModelUnavailable(f"{name} not found in model folder {folder} (looked in {folder}/onnx and {folder})")


class OnnxFashionModel:
    """Two towers in ONNX Runtime: ``embed_images`` and ``embed_texts`` return L2-normalised float32 rows."""

    backend = "onnx"

    def __init__(self, model: str | os.PathLike[str] | None = None, *, quantized: bool = False,
                 batch_size: int = 16, threads: int | None = None, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        self.folder = resolve_model_dir(model, quantized=quantized)
        self.batch_size = max(1, int(batch_size))
        cfg = self._read_config()
        self.preprocess = Preprocess(**cfg.get("preprocess", {}))
        self.logit_scale = float(cfg.get("logit_scale", DEFAULT_LOGIT_SCALE))
        self.context_length = int(cfg.get("context_length", 64))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = int(threads or os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        provs = providers or ["CPUExecutionProvider"]
        try:
            self._vision = ort.InferenceSession(str(_find(self.folder, "vision_model.onnx", quantized)), opts,
                                                providers=provs)
        except ModelUnavailable:
            raise
        except Exception as exc:
            raise ModelUnavailable(f"cannot load the vision model in {self.folder}: {exc}") from None
        self._quantized = quantized
        self._text = None  # loaded on first text query: image-only exports (benchmarks) stay usable
        self._tokenizer = None
        self._opts, self._provs = opts, provs
        vin = self._vision.get_inputs()[0]
        self._vision_input = vin.name
        shape = vin.shape
        if len(shape) == 4 and isinstance(shape[2], int) and shape[2] != self.preprocess.size:
            self.preprocess = Preprocess(**{**cfg.get("preprocess", {}), "size": int(shape[2])})
        self.dim = int(self._vision.get_outputs()[0].shape[-1])
        self.name = str(cfg.get("name", self.folder.name))

    def _read_config(self) -> dict[str, Any]:
        """Preprocessing and text settings from ``open_clip_config.json`` / ``visionlake.json`` if present."""
        out: dict[str, Any] = {}
        oc = self.folder / "open_clip_config.json"
        if oc.exists():
            data = json.loads(oc.read_text())
            pp = data.get("preprocess_cfg") or {}
            prep: dict[str, Any] = {}
            if "mean" in pp:
                prep["mean"] = tuple(float(v) for v in pp["mean"])
            if "std" in pp:
                prep["std"] = tuple(float(v) for v in pp["std"])
            for k in ("interpolation", "resize_mode"):
                if k in pp:
                    prep[k] = pp[k]
            size = (data.get("model_cfg") or {}).get("vision_cfg", {}).get("image_size") or pp.get("size")
            if isinstance(size, list | tuple):
                size = size[0]
            if size:
                prep["size"] = int(size)
            out["preprocess"] = prep
            ctx = (data.get("model_cfg") or {}).get("text_cfg", {}).get("context_length")
            if ctx:
                out["context_length"] = int(ctx)
        vl = self.folder / "visionlake.json"
        if vl.exists():
            data = json.loads(vl.read_text())
            if "preprocess" in data:
                out["preprocess"] = {**out.get("preprocess", {}), **data["preprocess"]}
                for k in ("mean", "std"):
                    if k in out["preprocess"]:
                        out["preprocess"][k] = tuple(out["preprocess"][k])
            for k in ("logit_scale", "context_length", "name", "pad_id"):
                if k in data:
                    out[k] = data[k]
        self._pad_id = out.get("pad_id")
        return out

    # ------------------------------------------------------------------ images
    def embed_images(self, images: Sequence[PILImage.Image]) -> np.ndarray:
        """L2-normalised image embeddings, computed in batches of ``batch_size``."""
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(images), self.batch_size):
            x = self.preprocess(images[start : start + self.batch_size])
            out = self._vision.run(None, {self._vision_input: x})[0]
            chunks.append(np.asarray(out, dtype=np.float32).reshape(len(x), -1))
        return _l2(np.concatenate(chunks))

    # ------------------------------------------------------------------ text
    def _text_session(self):
        if self._text is None:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            tok_path = self.folder / "tokenizer.json"
            if not tok_path.exists():
                raise ModelUnavailable(f"tokenizer.json not found in model folder {self.folder}")
            text_path = _find(self.folder, "text_model.onnx", self._quantized)
            self._tokenizer = Tokenizer.from_file(str(tok_path))
            self._text = ort.InferenceSession(str(text_path), self._opts, providers=self._provs)
        return self._text

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Token ids padded/truncated to the context length (SigLIP pools the last position)."""
        sess = self._text_session()
        assert self._tokenizer is not None
        pad = self._pad_id
        if pad is None:
            pad = self._tokenizer.token_to_id("<pad>")
            pad = 0 if pad is None else pad
        n = self.context_length
        ids = np.full((len(texts), n), int(pad), dtype=np.int64)
        mask = np.zeros((len(texts), n), dtype=np.int64)
        for i, enc in enumerate(self._tokenizer.encode_batch([t.lower() for t in texts])):
            toks = enc.ids[:n]
            ids[i, : len(toks)] = toks
            mask[i, : len(toks)] = 1
        feeds = {}
        for inp in sess.get_inputs():
            feeds[inp.name] = mask if "mask" in inp.name else ids
        return feeds

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        sess = self._text_session()
        chunks = []
        for start in range(0, len(texts), 64):
            feeds = self.tokenize(texts[start : start + 64])
            rows = len(texts[start : start + 64])
            chunks.append(np.asarray(sess.run(None, feeds)[0], dtype=np.float32).reshape(rows, -1))
        return _l2(np.concatenate(chunks))


def _l2(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1
    return (x / n).astype(np.float32)


# ---------------------------------------------------------------------------------------------- zero-shot
@dataclass
class Tag:
    """One attribute's answer for one image (or region): value (or "unsure"), probability, runner-up."""

    attribute: str
    value: str
    confidence: float
    source: str = "zero-shot"
    region: str = "whole"
    scores: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"attribute": self.attribute, "value": self.value, "confidence": round(self.confidence, 4),
             "source": self.source, "region": self.region}
        if self.scores is not None:
            d["scores"] = {k: round(v, 4) for k, v in self.scores.items()}
        return d


UNSURE = "unsure"


class ZeroShotTagger:
    """Prompt-ensemble zero-shot classification over a taxonomy, for any model with the two embed calls.

    Each value's text embedding is the normalised mean of its prompts' embeddings; probabilities are a
    softmax of ``logit_scale * cosine`` over the attribute's values (the model's own temperature), and
    the answer is ``unsure`` when the best probability is below ``threshold``.
    """

    def __init__(self, model: Any, taxonomy: Taxonomy, threshold: float = 0.4,
                 attributes: Sequence[str] | None = None, logit_scale: float | None = None) -> None:
        if not 0 <= threshold <= 1:
            raise BadInput(f"threshold must be between 0 and 1, got {threshold}")
        self.model = model
        self.taxonomy = taxonomy
        self.threshold = threshold
        self.logit_scale = float(logit_scale or getattr(model, "logit_scale", DEFAULT_LOGIT_SCALE))
        names = list(attributes) if attributes else list(taxonomy.attributes)
        for n in names:
            taxonomy.attribute(n)
        self.attributes = names
        self._classifiers: dict[str, tuple[list[str], np.ndarray]] = {}

    def classifier(self, attribute: str) -> tuple[list[str], np.ndarray]:
        """(value names, matrix of value text embeddings) for one attribute, computed once."""
        if attribute not in self._classifiers:
            attr = self.taxonomy.attribute(attribute)
            values = list(attr.values)
            prompts: list[str] = []
            owners: list[int] = []
            for j, v in enumerate(values):
                ps = attr.prompts_for(v)
                prompts.extend(ps)
                owners.extend([j] * len(ps))
            emb = self.model.embed_texts(prompts)
            owner = np.asarray(owners)
            mat = np.stack([emb[owner == j].mean(0) for j in range(len(values))])
            self._classifiers[attribute] = (values, _l2(mat))
        return self._classifiers[attribute]

    def probabilities(self, embeddings: np.ndarray, attribute: str) -> tuple[list[str], np.ndarray]:
        """Softmax probabilities (n_images, n_values) for one attribute."""
        values, mat = self.classifier(attribute)
        logits = self.logit_scale * (np.asarray(embeddings, np.float32) @ mat.T)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return values, p / p.sum(axis=1, keepdims=True)

    def tag_embeddings(self, embeddings: np.ndarray, region: str = "whole", with_scores: bool = False
                       ) -> list[list[Tag]]:
        """Tags for each embedding row (one list per image)."""
        out: list[list[Tag]] = [[] for _ in range(len(embeddings))]
        for attribute in self.attributes:
            attr = self.taxonomy.attribute(attribute)
            if region == "upper" and attr.region == "lower" or region == "lower" and attr.region == "upper":
                continue
            values, probs = self.probabilities(embeddings, attribute)
            best = probs.argmax(axis=1)
            for i in range(len(embeddings)):
                p = float(probs[i, best[i]])
                value = values[best[i]] if p >= self.threshold else UNSURE
                scores = {v: float(probs[i, j]) for j, v in enumerate(values)} if with_scores else None
                out[i].append(Tag(attribute, value, p, "zero-shot", region, scores))
        return out
