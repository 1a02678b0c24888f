"""The garment region of a photo of a person: the pose model's person mask, minus everything above the neck.

Why: on catalogue photos of models the flood-filled foreground of :mod:`visionlake.fashion.colour`
fails wherever the studio background is a grey gradient or casts shadows (the whole frame becomes
"garment"), and it keeps hair and face. Measured on the 1,250 photos of people among the
Topwear/Bottomwear/Dress photos of product ids 10000-12999 (``scripts/measure_person_mask.py``,
docs/benchmarks/fashion-person-mask.json): the model-free family 58.3% -> 63.4%, the learned head's
grouped 5-fold CV 70.4% -> 71.8%; the selfie model's mask and the proportional upper-body box did less.

The model is mediapipe's ``pose_landmark_full.tflite`` (Apache-2.0), read out of the PyPI wheel
``mediapipe==0.10.14`` by ``visionlake models fetch mediapipe-pose`` (never imported) and run by
``ai-edge-litert`` (the ``person`` extra). It is given the whole photo stretched to 256x256, as measured
(not the crop mediapipe's own detector would choose), so only its mask, its presence score and the
landmarks it places well on half-body shots (mouth, shoulders) are used. Without the model file or the
runtime, :func:`load_person_masker` returns None and the colour code keeps today's pixels.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from visionlake.errors import ModelUnavailable

log = logging.getLogger(__name__)

MODEL_NAME = "mediapipe-pose"
MODEL_FILE = "pose_landmark_full.tflite"
#: Collection setting naming the person mask that chose the garment pixels of its colours.
PERSON_SETTING = "person_mask"

SIDE = 256  # the model's input and mask side
PRESENT = 0.5  # presence score above which the photo shows a person
MIN_MASK = 0.05  # ... and the mask covers at least this share of the photo
NOSE, MOUTH, SHOULDERS = 0, (9, 10), (11, 12)


class PersonMasker:
    """Runs the pose model on one photo at a time and turns its outputs into a garment region."""

    def __init__(self, path: str | os.PathLike[str] | None = None, threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ModelUnavailable("the person mask needs the ai-edge-litert runtime: "
                                   "pip install 'visionlake[person]'") from None
        if path is None:
            from visionlake.models.registry import model_file

            path = model_file(MODEL_NAME, MODEL_FILE)
        self.path = Path(path)
        try:
            self._it = Interpreter(model_path=str(self.path), num_threads=max(1, int(threads)))
            self._it.allocate_tensors()
        except Exception as exc:  # not a TFLite model, or a damaged one
            raise ModelUnavailable(f"cannot load {self.path}: {exc}") from None
        self._input = self._it.get_input_details()[0]["index"]
        # outputs are found by shape, not by position: landmarks (1, 195), presence (1, 1), mask (1, 256, 256, 1)
        by_shape = {tuple(int(v) for v in o["shape"]): o["index"] for o in self._it.get_output_details()}
        try:
            self._lm, self._presence = by_shape[(1, 195)], by_shape[(1, 1)]
            self._mask = by_shape[(1, SIDE, SIDE, 1)]
        except KeyError:
            raise ModelUnavailable(f"{self.path} is not the pose landmark model (outputs {sorted(by_shape)})"
                                   ) from None

    def region(self, rgb: np.ndarray) -> np.ndarray | None:
        """Garment pixels of ``rgb`` (uint8, h x w x 3) as a boolean mask, or None without a person.

        A person is there when the presence score is high, the mask covers enough of the photo and the
        pixels at the model's nose are skin-toned (a laid-flat T-shirt with a printed face otherwise
        passes). The region is the mask below the neck (half-way from the mouth to the shoulders).
        """
        from visionlake.fashion.colour import skin_mask

        h, w = rgb.shape[:2]
        x = np.asarray(PILImage.fromarray(rgb).resize((SIDE, SIDE), PILImage.Resampling.BILINEAR),
                       np.float32)[None] / 255.0
        self._it.set_tensor(self._input, x)
        self._it.invoke()
        presence = float(np.asarray(self._it.get_tensor(self._presence)).ravel()[0])
        if not presence > PRESENT:
            return None
        logits = np.clip(self._it.get_tensor(self._mask)[0, :, :, 0], -30, 30)
        prob8 = (255 / (1 + np.exp(-logits))).astype(np.uint8)
        mask = np.asarray(PILImage.fromarray(prob8).resize((w, h), PILImage.Resampling.BILINEAR)) > 127
        if mask.mean() < MIN_MASK:
            return None
        lm = np.asarray(self._it.get_tensor(self._lm), np.float32).reshape(39, 5)
        nx, ny = int(lm[NOSE, 0] * w / SIDE), int(lm[NOSE, 1] * h / SIDE)
        win = rgb[max(0, ny - 4):max(0, ny + 5), max(0, nx - 4):max(0, nx + 5)]
        if win.size == 0 or float(skin_mask(win).mean()) < 0.3:
            return None
        y = lm[:, 1] * h / SIDE
        neck = int(np.clip(round((y[list(MOUTH)].max() + y[list(SHOULDERS)].min()) / 2), 0, h))
        mask[:neck] = False
        return mask if mask.sum() >= 10 else None


#: ``VISIONLAKE_PERSON_MASK=off`` keeps today's pixels even where the model is fetched. Why: the model
#: cache outlives a checkout, so once any run fetched the pose model every later ingest used it; the
#: README set-up (``scripts/setup.sh``, documented without the mask) sets this so that its result does
#: not depend on what an earlier run left in the cache (the mask cost it ~24 ms of CPU per photo).
DISABLE_ENV = "VISIONLAKE_PERSON_MASK"


def load_person_masker(threads: int = 1) -> PersonMasker | None:
    """The person masker when its model file and runtime are on this machine and it is not switched off
    (:data:`DISABLE_ENV`), else None (today's pixels)."""
    if os.environ.get(DISABLE_ENV, "").strip().lower() in ("0", "off", "no", "false"):
        log.debug("person mask switched off by %s", DISABLE_ENV)
        return None
    try:
        return PersonMasker(threads=threads)
    except ModelUnavailable as exc:
        log.debug("no person mask, colours use the flood-filled foreground: %s", exc.message)
        return None
