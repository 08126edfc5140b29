# SPDX-License-Identifier: GPL-3.0-or-later
"""Where each ARKit channel goes: a shape key of any name, or any animatable data path.

The retarget map (``retarget.py``) shapes a channel's weight (gain, offset, smoothing); the
channel map says what that weight drives. Per channel, one :class:`Target`:

* ``AUTO``: the target mesh's key whose name is the channel in any spelling
  (``arkit.normalize_name``, the one name normalisation of the add-on), as before there
  was a map;
* ``KEY``: the shape key named ``key`` (``jawOpen`` -> ``MouthOpen``, ``Fcl_MTH_A``), on
  every mesh driven; several channels may share one key (their values add up);
* ``PATH``: the data path ``path`` (index ``index``) on the object ``object``, or on every
  driven mesh when ``object`` is empty: a bone's rotation (``pose.bones["jaw"].rotation_euler``,
  index 0), a custom property (``["mouth_open"]``). Its value is ``gain * weight + offset``
  in the property's own units (radians for a rotation) and never clamped to 0-1: the clamp is
  for shape-key sliders.

A channel routed to a key or a path no longer drives its same-named key: one channel, one
target. Presets (:func:`preset_to_dict`, :func:`preset_from_dict`) hold the retarget map
and the channel map together in one JSON file; version 1 files (the retarget map alone)
still load. Every problem in a preset is one line (:class:`MappingError`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import arkit
from .errors import FacsimileError
from .retarget import RetargetMap

KINDS = ("AUTO", "KEY", "PATH")
FORMAT = "facsimile-retarget-map"
VERSION = 2
N_CHANNELS = len(arkit.ARKIT_52)
# A data path Blender can animate: attributes and ["quoted"] / [number] subscripts.
_PATH = re.compile(r'^(?:\[(?:"(?:[^"\\]|\\.)*"|\d+)\]|[A-Za-z_]\w*)'
                   r'(?:\.[A-Za-z_]\w*|\[(?:"(?:[^"\\]|\\.)*"|\d+)\])*$')
_PRESET_NAME = re.compile(r"^[\w][\w .()+-]{0,62}$")


class MappingError(FacsimileError, ValueError):
    """A channel map or a preset that cannot be used (one line)."""


@dataclass(frozen=True)
class Target:
    """What one channel drives (module doc)."""

    kind: str = "AUTO"
    key: str = ""
    object: str = ""
    path: str = ""
    index: int = 0

    def check(self, channel: str) -> "Target":
        """Itself when usable; MappingError naming ``channel`` otherwise."""
        if self.kind not in KINDS:
            raise MappingError(f"{channel}: unknown target kind {self.kind!r} (one of {', '.join(KINDS)})")
        if self.kind == "KEY" and not self.key.strip():
            raise MappingError(f"{channel}: a key target needs the key's name")
        if self.kind == "PATH":
            if not _PATH.match(self.path.strip()):
                raise MappingError(f"{channel}: {self.path!r} is not a data path (e.g. "
                                   f"pose.bones[\"jaw\"].rotation_euler or [\"mouth_open\"])")
            if not 0 <= self.index < 64:
                raise MappingError(f"{channel}: index {self.index} must be between 0 and 63")
        return self

    def describe(self) -> str:
        if self.kind == "KEY":
            return f"key '{self.key}'"
        if self.kind == "PATH":
            where = f"'{self.object}' " if self.object else ""
            return f"{where}{self.path}[{self.index}]"
        return "same-named key"

    def to_dict(self) -> dict:
        if self.kind == "KEY":
            return {"key": self.key}
        out = {"path": self.path, "index": self.index}
        if self.object:
            out["object"] = self.object
        return out

    @classmethod
    def from_dict(cls, channel: str, data) -> "Target":
        if not isinstance(data, dict):
            raise MappingError(f"{channel}: 'target' must be an object with 'key' or 'path'")
        unknown = set(data) - {"key", "path", "index", "object"}
        if unknown:
            raise MappingError(f"{channel}: unknown target field(s) {', '.join(sorted(map(repr, unknown)))}")
        if ("key" in data) == ("path" in data):
            raise MappingError(f"{channel}: a target has either 'key' or 'path'")
        for name in ("key", "path", "object"):
            if name in data and not isinstance(data[name], str):
                raise MappingError(f"{channel}: target '{name}' must be text")
        index = data.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            raise MappingError(f"{channel}: target 'index' must be a whole number")
        if "key" in data:
            return cls("KEY", key=data["key"]).check(channel)
        return cls("PATH", path=data["path"].strip(), object=data.get("object", ""),
                   index=index).check(channel)


@dataclass
class ChannelMap:
    """One :class:`Target` per ARKit channel, in ARKit order."""

    targets: list = field(default_factory=lambda: [Target()] * N_CHANNELS)

    def __post_init__(self):
        if len(self.targets) != N_CHANNELS:
            raise ValueError(f"a channel map needs {N_CHANNELS} targets, got {len(self.targets)}")
        self.targets = [t.check(name) for t, name in zip(self.targets, arkit.ARKIT_52)]

    @property
    def is_default(self) -> bool:
        return all(t.kind == "AUTO" for t in self.targets)

    def mask(self, *kinds) -> np.ndarray:
        """(52,) bool: channels whose target is one of ``kinds``."""
        return np.array([t.kind in kinds for t in self.targets])

    def key_targets(self) -> list:
        """[(channel index, key name)] of the KEY targets."""
        return [(i, t.key) for i, t in enumerate(self.targets) if t.kind == "KEY"]

    def path_targets(self) -> list:
        """[(channel index, Target)] of the PATH targets."""
        return [(i, t) for i, t in enumerate(self.targets) if t.kind == "PATH"]

    def missing_keys(self, key_names) -> list:
        """['jawOpen -> MouthOpen', …]: KEY targets ``key_names`` does not have."""
        present = set(key_names)
        return [f"{arkit.ARKIT_52[i]} -> {key}" for i, key in self.key_targets() if key not in present]

    def apply_to_rows(self, key_names, positions, rows) -> tuple[list, np.ndarray]:
        """Direct rows (from names: ``target_plan.direct_rows``) rerouted by this map.

        Channels with a KEY or PATH target leave their same-named keys; a KEY target adds its
        channel to the named key's row. Keys left with an empty row are not driven at all
        (not held at 0: a key nobody maps is the artist's)."""
        if self.is_default:
            return list(positions), rows
        table = {p: r.copy() for p, r in zip(positions, rows)}
        explicit = self.mask("KEY", "PATH")
        for row in table.values():
            row[explicit] = 0
        index = {}
        for i, name in enumerate(key_names):
            index.setdefault(name, i)
        for channel, key in self.key_targets():
            if key in index:
                table.setdefault(index[key], np.zeros(N_CHANNELS, np.float32))[channel] += 1
        kept = sorted(p for p, r in table.items() if r.any())
        return kept, np.array([table[p] for p in kept], np.float32).reshape(-1, N_CHANNELS)

    def to_dict(self) -> dict:
        return {name: t.to_dict() for name, t in zip(arkit.ARKIT_52, self.targets) if t.kind != "AUTO"}


def auto_map(key_names) -> dict:
    """ARKit channel -> the key of ``key_names`` it drives by name.

    One normalisation (``arkit.normalize_name``: any case, separators, prefixes such as
    ``blendShape1.``, ``AK_01_``, ``ARKit_``, and exporter suffixes such as ``.001``); a key
    spelled exactly like the channel wins over other spellings of it.
    """
    found: dict = {}
    for name in key_names:
        channel = arkit.normalize_name(name)
        if channel is None:
            continue
        if channel not in found or name == channel:
            found[channel] = name
    return found


# ------------------------------------------------------------------ presets (JSON)

def preset_to_dict(rmap: RetargetMap, cmap: ChannelMap, description: str = "") -> dict:
    """One JSON object: per channel only what differs from the identity map."""
    data = rmap.to_dict()
    data["version"] = VERSION
    if description:
        data["description"] = description
    channels = data["channels"]
    for name, target in cmap.to_dict().items():
        channels.setdefault(name, {})["target"] = target
    data["channels"] = {n: channels[n] for n in arkit.ARKIT_52 if n in channels}
    return data


def preset_from_dict(data) -> tuple[RetargetMap, ChannelMap]:
    """Inverse of :func:`preset_to_dict`; anything unusable is a one-line MappingError."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MappingError("not a Facsimile retarget map (its 'format' must be "
                           f"'{FORMAT}')")
    version = data.get("version", 1)
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise MappingError(f"retarget map version {version!r} is not one this Facsimile reads "
                           f"(1 to {VERSION})")
    channels = data.get("channels") or {}
    if not isinstance(channels, dict):
        raise MappingError("retarget map: 'channels' must be an object keyed by ARKit name")
    plain, targets = {}, [Target()] * N_CHANNELS
    for name, entry in channels.items():
        if name not in arkit.ARKIT_INDEX:
            hint = arkit.normalize_name(name)
            raise MappingError(f"retarget map: unknown channel {name!r}"
                               + (f" (did you mean {hint!r}?)" if hint else ""))
        if not isinstance(entry, dict):
            raise MappingError(f"{name}: its entry must be an object")
        unknown = set(entry) - {"gain", "offset", "smoothing", "enabled", "target"}
        if unknown:
            raise MappingError(f"{name}: unknown field(s) {', '.join(sorted(map(repr, unknown)))}")
        for number in ("gain", "offset", "smoothing"):
            value = entry.get(number, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise MappingError(f"{name}: '{number}' must be a number")
        if "enabled" in entry and not isinstance(entry["enabled"], bool):
            raise MappingError(f"{name}: 'enabled' must be true or false")
        if "target" in entry:
            targets[arkit.ARKIT_INDEX[name]] = Target.from_dict(name, entry["target"])
        plain[name] = {k: v for k, v in entry.items() if k != "target"}
    try:
        rmap = RetargetMap.from_dict({"format": FORMAT, "clamp": bool(data.get("clamp", True)),
                                      "channels": plain})
    except ValueError as err:   # non-finite or negative values
        raise MappingError(str(err)) from None
    return rmap, ChannelMap(targets)


def read_preset(path) -> tuple[RetargetMap, ChannelMap]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise MappingError(f"map {path.name}: {err.strerror or err}") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise MappingError(f"map {path.name}: not JSON ({err})") from None
    try:
        return preset_from_dict(data)
    except MappingError as err:
        raise MappingError(f"map {path.name}: {err}") from None


def write_preset(path, rmap: RetargetMap, cmap: ChannelMap, description: str = "") -> None:
    """Written whole or not at all (a scratch file renamed into place)."""
    path = Path(path)
    scratch = path.with_name(path.name + ".part")
    try:
        scratch.write_text(json.dumps(preset_to_dict(rmap, cmap, description), indent=1) + "\n",
                           encoding="utf-8")
        scratch.replace(path)
    except OSError as err:
        scratch.unlink(missing_ok=True)
        raise MappingError(f"cannot write the map {path.name} ({err.strerror or err})") from None


def check_preset_name(name: str) -> str:
    name = name.strip()
    if not _PRESET_NAME.match(name):
        raise MappingError(f"preset name {name!r}: use letters, digits, spaces, . ( ) + - _ "
                           "(at most 63 characters)")
    return name


def list_presets(*folders) -> dict:
    """Preset name (file stem) -> path over ``folders``; a later folder's preset of the same
    name wins (the user's own over the shipped ones)."""
    found: dict = {}
    for folder in folders:
        if folder and Path(folder).is_dir():
            for path in sorted(Path(folder).glob("*.json")):
                found[path.stem] = path
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def with_auto_map(cmap: ChannelMap, key_names) -> tuple[ChannelMap, list]:
    """``cmap`` with every channel that is not sent to a data path re-mapped by name onto
    ``key_names`` (matched: KEY, unmatched: AUTO); and the unmatched channels."""
    matched = auto_map(key_names)
    targets, unmatched = [], []
    for name, target in zip(arkit.ARKIT_52, cmap.targets):
        if target.kind == "PATH":
            targets.append(target)
        elif name in matched:
            targets.append(replace(Target(), kind="KEY", key=matched[name]))
        else:
            targets.append(Target())
            unmatched.append(name)
    return ChannelMap(targets), unmatched
