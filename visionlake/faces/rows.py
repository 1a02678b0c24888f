"""The one builder of face rows: ingestion (the face analyser) and enrollment make them the same way.

A face travels in two forms. :func:`face_record` is the picklable dict a worker process returns
(the template as raw float32 bytes, never written anywhere in that form); :func:`face_row` turns it
into the catalog row, sealing the template with the lake key. Keeping both in one place means a new
column (a pack version, a quality measure) is added once, not once per writer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from visionlake.faces.models import Face
from visionlake.faces.sync import seal


def face_record(face: Any, vector: np.ndarray, crop: str | None) -> dict[str, Any]:
    """Box, landmarks, scores, crop path and template (float32 bytes) of one detected face."""
    return {
        "box": [int(v) for v in face.box],
        "landmarks": [[float(x), float(y)] for x, y in face.landmarks],
        "score": float(face.score),
        "quality": float(face.quality),
        "crop": crop,
        "embedding": np.asarray(vector, dtype=np.float32).reshape(-1).tobytes(),
    }


def record_vector(record: dict[str, Any]) -> np.ndarray:
    """The template of a :func:`face_record` as a float32 vector."""
    return np.frombuffer(record["embedding"], dtype=np.float32)


def face_row(cipher: Any, collection_id: int, image_id: int, record: dict[str, Any], pack: str,
             person_id: int | None = None) -> Face:
    """The catalog row of a face record; the template is encrypted with ``cipher`` (the lake key)."""
    return Face(
        collection_id=collection_id,
        image_id=image_id,
        box=list(record["box"]),
        landmarks=list(record["landmarks"]),
        score=float(record["score"]),
        quality=float(record["quality"]),
        crop=record["crop"],
        embedding=seal(cipher, record_vector(record)),
        pack=pack,
        person_id=person_id,
    )


__all__ = ["face_record", "face_row", "record_vector"]
