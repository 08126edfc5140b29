# SPDX-License-Identifier: GPL-3.0-or-later
"""ONNX Runtime sessions: provider choice, fallback, caching and the model registry.

Every network the add-on runs goes through :func:`get_session`. It decides which
execution provider to use from the artist's preference (``AUTO``, ``CUDA``,
``DIRECTML``, ``COREML`` or ``CPU``; :func:`offered_choices` lists what the installed
build can honour), falls back to the CPU when a GPU provider cannot be initialised
(missing CUDA/cuDNN DLLs are the most common failure on artists' machines), caches one
session per (model file, provider choice) so a rig or a live preview never pays the
session-creation cost twice, and remembers the provider that was *actually* used
so the panel can show it.

No bpy here: the CLI, the tests and the training code use this module as is.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FacsimileError

CUDA = "CUDAExecutionProvider"
DIRECTML = "DmlExecutionProvider"
COREML = "CoreMLExecutionProvider"
CPU = "CPUExecutionProvider"
# Preference value -> ONNX Runtime provider. The GPU providers in the order Auto tries them:
# each zip carries at most one of them (CUDA: the -cuda zips for Linux and Windows with
# NVIDIA; DirectML: the Windows zip, any DirectX 12 GPU; CoreML: the macOS zip), so the
# order only matters for a studio's own ONNX Runtime build offering several.
PROVIDERS = {"CUDA": CUDA, "DIRECTML": DIRECTML, "COREML": COREML, "CPU": CPU}
GPU_ORDER = ("CUDA", "DIRECTML", "COREML")
PROVIDER_CHOICES = ("AUTO", *PROVIDERS)
LABELS = {CUDA: "CUDA", DIRECTML: "DirectML", COREML: "CoreML", CPU: "CPU"}
# What to tell the artist when a provider is offered but does not start.
_START_HINTS = {CUDA: "CUDA could not start: NVIDIA driver, CUDA or cuDNN libraries not found",
                DIRECTML: "DirectML could not start: no DirectX 12 GPU or driver",
                COREML: "CoreML could not start"}

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


class InferenceError(FacsimileError, RuntimeError):
    """A model could not be loaded or run; the message is shown to the artist."""


def _ort():
    # Imported lazily: the add-on must register (and show a clear message) even on a
    # platform where the bundled ONNX Runtime wheel failed to install.
    try:
        import onnxruntime
    except ImportError as ex:  # pragma: no cover - depends on the installation
        raise InferenceError(
            "ONNX Runtime is not available in this Blender "
            f"({ex}); reinstall the Facsimile extension for your platform"
        ) from ex
    return onnxruntime


def available_providers() -> list[str]:
    """Execution providers this ONNX Runtime build offers."""
    return list(_ort().get_available_providers())


def offered_choices() -> list[str]:
    """The preference values this installed build can honour: AUTO, its GPU providers, CPU."""
    try:
        offered = set(available_providers())
    except InferenceError:
        offered = set()
    return ["AUTO", *(c for c in GPU_ORDER if PROVIDERS[c] in offered), "CPU"]


def providers_for(choice: str) -> list[str]:
    """The provider list to try, in order, for a preference value.

    AUTO means every GPU provider this ONNX Runtime build offers, then the CPU. A GPU
    provider asked for explicitly but not offered still falls back to the CPU: a rig on
    the CPU is better than no rig, and :class:`SessionInfo` records what happened.
    """
    choice = (choice or "AUTO").upper()
    if choice not in PROVIDER_CHOICES:
        raise ValueError(f"unknown execution provider choice {choice!r}; use one of {PROVIDER_CHOICES}")
    if choice == "CPU":
        return [CPU]
    offered = available_providers()
    wanted = GPU_ORDER if choice == "AUTO" else (choice,)
    return [PROVIDERS[c] for c in wanted if PROVIDERS[c] in offered] + [CPU]


@dataclass(frozen=True)
class SessionInfo:
    """What an opened session really runs on."""

    model: str
    requested: str
    provider: str
    fell_back: bool
    reason: str = ""

    @property
    def label(self) -> str:
        """Short text for the panel, e.g. 'CPU', 'CUDA' or 'CPU (fallback: …)'."""
        name = LABELS.get(self.provider, self.provider.replace("ExecutionProvider", ""))
        return f"{name} (fallback: {self.reason})" if self.fell_back and self.reason else name


_lock = threading.Lock()
_sessions: dict[tuple[str, str, float], tuple[object, SessionInfo]] = {}
_last_info: SessionInfo | None = None


def _threads() -> int:
    # Leave one core to Blender's UI; ONNX Runtime's default takes them all.
    return max(1, (os.cpu_count() or 2) - 1)


def _start(ort, path: Path, options, providers: list[str]):
    """A session on the first of ``providers`` that starts (the list ends with the CPU);
    returns it with the reasons the ones before it did not start."""
    reasons = []
    for provider in providers[:-1]:
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=[provider, CPU])
        except Exception as ex:   # the GPU's libraries or driver are missing: try the next
            reasons.append(f"{LABELS[provider]}: {str(ex).splitlines()[0][:120]}")
            continue
        # ONNX Runtime may accept a provider yet place every node on the CPU (its libraries
        # failed to load): what runs is the session's first provider, not what was asked.
        if session.get_providers()[0] == provider:
            return session, reasons
        reasons.append(_START_HINTS[provider])
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=[CPU]), reasons
    except Exception as ex:
        raise InferenceError(f"cannot load model {path.name}: {ex}") from ex


def _open(path: Path, choice: str):
    ort = _ort()
    wanted = providers_for(choice)
    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT's warnings are noise for an artist
    session, reasons = _start(ort, path, options, wanted)
    used = session.get_providers()[0]
    choice = (choice or "AUTO").upper()
    # A fallback is when the artist's explicit or automatic first choice did not run:
    # a GPU asked for on a CPU-only build counts, AUTO on a CPU-only build does not.
    first_choice = PROVIDERS[choice] if choice in PROVIDERS else wanted[0]
    fell_back = first_choice != used
    reason = "; ".join(reasons)
    if fell_back and not reason:
        reason = f"{LABELS[first_choice]} not offered by this ONNX Runtime"
    info = SessionInfo(path.name, choice, used, fell_back, reason)
    return session, info


def get_session(model: str | os.PathLike, choice: str = "AUTO"):
    """Return ``(session, SessionInfo)`` for a model file, cached.

    ``model`` is a path or the file name of a shipped model in :data:`MODELS_DIR`.
    The cache key includes the file's modification time, so a retrained model is
    picked up without restarting Blender.
    """
    global _last_info
    path = Path(model)
    if not path.is_absolute() and not path.exists():
        path = MODELS_DIR / path
    if not path.exists():
        raise InferenceError(f"model file not found: {path}")
    key = (str(path.resolve()), (choice or "AUTO").upper(), path.stat().st_mtime)
    with _lock:
        hit = _sessions.get(key)
        if hit is None:
            hit = _open(path, choice)
            _sessions[key] = hit
        _last_info = hit[1]
        return hit


def run(model: str | os.PathLike, feeds: dict[str, np.ndarray], choice: str = "AUTO",
        outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run a model and return its outputs by name.

    Inputs are cast to each graph input's declared dtype, so callers can pass
    whatever numpy produced (float64 from scipy, int64 indices, ...).
    """
    session, _info = get_session(model, choice)
    casted = {}
    for spec in session.get_inputs():
        if spec.name not in feeds:
            raise InferenceError(f"model input {spec.name!r} missing (have {sorted(feeds)})")
        dtype = np.float32 if "float" in spec.type else np.int64
        casted[spec.name] = np.ascontiguousarray(feeds[spec.name], dtype=dtype)
    names = outputs or [o.name for o in session.get_outputs()]
    try:
        values = session.run(names, casted)
    except Exception as ex:
        raise InferenceError(f"model {Path(model).name} failed: {ex}") from ex
    return dict(zip(names, values))


def last_session_info() -> SessionInfo | None:
    """The provider actually used by the most recently requested session."""
    return _last_info


def clear_cache() -> None:
    """Drop all sessions (on preference change or add-on unregister)."""
    global _last_info
    with _lock:
        _sessions.clear()
        _last_info = None
