# SPDX-License-Identifier: GPL-3.0-or-later
"""A batch manifest (characters × takes) and the tasks it plans, without bpy.

The manifest is JSON; relative paths are relative to the manifest's folder::

    {
      "output": "out",
      "defaults": {"frame_step": 1, "smoothing": 0, "glb": false},
      "characters": [{"file": "heads/alice.obj"},
                     {"name": "bob", "file": "bob.blend", "objects": ["BobHead"], "naming": "ICT53"}],
      "takes": [{"file": "takes/shot1.csv", "map": "maps/soft.json", "smoothing": 1.5},
                {"name": "interview", "file": "takes/interview.mp4", "frame_step": 2}]
    }

Each character is rigged once (task ``rig:I``, into ``OUTPUT/rigs/NAME.blend``); each
(character, take) pair is baked (task ``bake:I,J``) from that rig into
``OUTPUT/<pattern>.blend`` (and ``.glb`` with ``"glb": true``), ``pattern`` being
``{character}/{take}`` unless a take or the defaults say otherwise. Per-take options
(``map``, ``smoothing``, ``frame_step``, ``offset``, ``timecode_fps``, ``glb``,
``pattern``) fall back to ``defaults``, then to the ``bake`` command's own defaults.

Anything wrong with the manifest's structure raises :class:`ManifestError` naming the
entry; a missing or broken input file is the failure of the tasks that read it, so one bad
take does not stop the others.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import FacsimileError
from .takes.files import SCENE_TAKES, TEXT_TAKES
from .video.decode import EXTENSIONS as VIDEO_EXTENSIONS

MESH_EXTENSIONS = (".obj", ".glb", ".gltf", ".fbx", ".blend")
TAKE_EXTENSIONS = tuple(TEXT_TAKES) + tuple(SCENE_TAKES) + tuple(VIDEO_EXTENSIONS)
NAMINGS = ("ARKIT", "ARKIT_LR", "ICT53")
TAKE_OPTIONS = {   # option: (type, the bake command's default)
    "map": (str, None), "smoothing": (float, 0.0), "frame_step": (int, 1), "offset": (float, 0.0),
    "timecode_fps": (int, 0), "glb": (bool, False), "pattern": (str, "{character}/{take}"),
}
RIG_FOLDER = "rigs"
_SAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


class ManifestError(FacsimileError, ValueError):
    """The manifest cannot be planned (one line naming the entry and the problem)."""


@dataclass(frozen=True)
class Character:
    index: int
    name: str
    file: Path
    objects: tuple = ()
    naming: str = "ARKIT"


@dataclass(frozen=True)
class TakeSpec:
    index: int
    name: str
    file: Path
    options: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Manifest:
    path: Path
    output: Path
    characters: list
    takes: list


@dataclass
class Task:
    """One unit of work: a worker process running the ``rig`` or ``bake`` command."""

    id: str                    # "rig:0", "bake:0,1": what --only selects
    kind: str                  # "rig" | "bake"
    key: str                   # file-safe and unique: names its marker and logs
    label: str                 # for people: "alice", "alice × shot1"
    character: Character
    take: Optional[TakeSpec]
    inputs: list               # files whose change means redoing the task
    outputs: list              # files the task writes (atomically)
    depends: Optional[str] = None

    def args(self, written: Optional[dict] = None) -> list:
        """The CLI arguments; ``written`` maps each output to the (temporary) name to write."""
        out = {p: (written or {}).get(p, p) for p in self.outputs}
        c = self.character
        if self.kind == "rig":
            args = ["rig", str(c.file), "--out", str(out[self.outputs[0]]), "--naming", c.naming]
            for name in c.objects:
                args += ["--object", name]
            return args
        o = self.take.options
        args = ["bake", str(self.inputs[0]), "--take", str(self.take.file),
                "--out", str(out[self.outputs[0]]),
                "--frame-step", str(o["frame_step"]), "--smoothing", repr(float(o["smoothing"])),
                "--offset", repr(float(o["offset"])), "--timecode-fps", str(o["timecode_fps"])]
        if o["map"]:
            args += ["--map", str(o["map"])]
        if o["glb"]:
            args += ["--glb", str(out[self.outputs[1]])]
        return args


def safe_name(text: str) -> str:
    """A name usable as a file name on every platform (spaces and slashes become '_')."""
    return _SAFE.sub("_", text).strip("._") or "unnamed"


def _where(kind: str, i: int, entry) -> str:
    name = entry if isinstance(entry, str) else \
        (entry.get("name") or entry.get("file")) if isinstance(entry, dict) else None
    return f"{kind} {i}" + (f" ({name})" if name else "")


def _path(base: Path, value, where: str, what: str, extensions) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{where}: '{what}' must be a file path")
    path = Path(value).expanduser()
    path = (base / path) if not path.is_absolute() else path
    if extensions and path.suffix.lower() not in extensions:
        raise ManifestError(f"{where}: '{path.name}' is not a supported file type "
                            f"({', '.join(extensions)})")
    return path.resolve()


def _option(where: str, key: str, value):
    kind, _default = TAKE_OPTIONS[key]
    if key == "map" and value is None:
        return None
    if kind is bool:
        if not isinstance(value, bool):
            raise ManifestError(f"{where}: '{key}' must be true or false")
        return value
    if kind is str:
        if not isinstance(value, str) or not value:
            raise ManifestError(f"{where}: '{key}' must be a string")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise ManifestError(f"{where}: '{key}' must be {'an integer' if kind is int else 'a number'}")
    value = kind(value)
    if key == "frame_step" and value < 1:
        raise ManifestError(f"{where}: 'frame_step' must be at least 1")
    if key in ("smoothing", "timecode_fps") and value < 0:
        raise ManifestError(f"{where}: '{key}' must be >= 0")
    return value


def _is_map_file(value) -> bool:
    return not isinstance(value, str) or value.lower().endswith(".json") or "/" in value or "\\" in value


def _options(where: str, entry: dict, defaults: dict, base: Path) -> dict:
    out = {}
    for key, (_kind, default) in TAKE_OPTIONS.items():
        value = entry.get(key, defaults.get(key, default))
        out[key] = _option(where, key, value)
    if out["map"] is not None and _is_map_file(out["map"]):
        out["map"] = _path(base, out["map"], where, "map", (".json",))
    # else a preset's name (VRoid, Rocketbox, the user's own), as the CLI's --map takes it
    _check_pattern(where, out["pattern"])
    return out


def _check_pattern(where: str, pattern: str) -> None:
    try:
        sample = pattern.format(character="c", take="t")
    except (KeyError, IndexError, ValueError):
        raise ManifestError(f"{where}: 'pattern' may only use {{character}} and {{take}}") from None
    if "{character}" not in pattern or "{take}" not in pattern:
        raise ManifestError(f"{where}: 'pattern' must contain both {{character}} and {{take}}")
    parts = Path(sample).parts
    if Path(sample).is_absolute() or ".." in parts or parts[0] == RIG_FOLDER or parts[0].startswith("."):
        raise ManifestError(f"{where}: 'pattern' must stay inside the output folder "
                            f"(no '..', no absolute path, not under '{RIG_FOLDER}/')")


def _unique(where_kind: str, names: list) -> None:
    seen = set()
    for name in names:
        if name.lower() in seen:   # case-insensitive file systems would merge them
            raise ManifestError(f"two {where_kind}s are named '{name}': give them distinct 'name's")
        seen.add(name.lower())


def parse_manifest(data, base: Path, output: Optional[Path] = None, path: Optional[Path] = None) -> Manifest:
    """A validated :class:`Manifest` from decoded JSON; ``output`` overrides the manifest's."""
    if not isinstance(data, dict):
        raise ManifestError("the manifest must be a JSON object")
    unknown = set(data) - {"version", "output", "defaults", "characters", "takes", "comment"}
    if unknown:
        raise ManifestError(f"unknown manifest key(s): {', '.join(sorted(unknown))}")
    if data.get("version", 1) != 1:
        raise ManifestError(f"manifest version {data.get('version')!r} is not supported (expected 1)")
    base = Path(base).resolve()
    if output is None:
        if not isinstance(data.get("output"), str):
            raise ManifestError("the manifest has no 'output' folder (or pass --out)")
        output = base / Path(data["output"]).expanduser()
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - set(TAKE_OPTIONS):
        raise ManifestError(f"'defaults' may only set {', '.join(TAKE_OPTIONS)}")
    _options("defaults", {}, defaults, base)   # checked once here, not once per take

    chars_in, takes_in = data.get("characters"), data.get("takes", [])
    if not isinstance(chars_in, list) or not chars_in:
        raise ManifestError("the manifest needs a non-empty 'characters' list")
    if not isinstance(takes_in, list):
        raise ManifestError("'takes' must be a list")
    characters = []
    for i, entry in enumerate(chars_in):
        where = _where("character", i, entry)
        if isinstance(entry, str):
            entry = {"file": entry}
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: must be a file path or an object")
        extra = set(entry) - {"name", "file", "objects", "naming"}
        if extra:
            raise ManifestError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        file = _path(base, entry.get("file"), where, "file", MESH_EXTENSIONS)
        objects = entry.get("objects", [])
        if not isinstance(objects, list) or not all(isinstance(o, str) and o for o in objects):
            raise ManifestError(f"{where}: 'objects' must be a list of object names")
        naming = entry.get("naming", "ARKIT")
        if naming not in NAMINGS:
            raise ManifestError(f"{where}: 'naming' must be one of {', '.join(NAMINGS)}")
        name = safe_name(str(entry.get("name") or file.stem))
        characters.append(Character(i, name, file, tuple(objects), naming))
    takes = []
    for j, entry in enumerate(takes_in):
        where = _where("take", j, entry)
        if isinstance(entry, str):
            entry = {"file": entry}
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: must be a file path or an object")
        extra = set(entry) - {"name", "file"} - set(TAKE_OPTIONS)
        if extra:
            raise ManifestError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        file = _path(base, entry.get("file"), where, "file", TAKE_EXTENSIONS)
        name = safe_name(str(entry.get("name") or file.stem))
        takes.append(TakeSpec(j, name, file, _options(where, entry, defaults, base)))
    _unique("character", [c.name for c in characters])
    _unique("take", [t.name for t in takes])
    return Manifest(Path(path).resolve() if path else base, Path(output).resolve(), characters, takes)


def load_manifest(path, output=None) -> Manifest:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ManifestError(f"cannot read the manifest '{path.name}' ({err.strerror or err})") from None
    except ValueError as err:
        raise ManifestError(f"manifest '{path.name}' is not valid JSON ({err})") from None
    return parse_manifest(data, path.resolve().parent, Path(output) if output else None, path)


def rig_output(manifest: Manifest, c: Character) -> Path:
    return manifest.output / RIG_FOLDER / f"{c.name}.blend"


def plan(manifest: Manifest) -> list:
    """Every rig task, then every bake task (character-major), dependencies set."""
    tasks = []
    for c in manifest.characters:
        tasks.append(Task(f"rig:{c.index}", "rig", f"rig-{c.name}", c.name, c, None,
                          inputs=[c.file], outputs=[rig_output(manifest, c)]))
    seen = {}
    for c in manifest.characters:
        for t in manifest.takes:
            stem = manifest.output / t.options["pattern"].format(character=c.name, take=t.name)
            outputs = [stem.with_name(stem.name + ".blend")]
            if t.options["glb"]:
                outputs.append(stem.with_name(stem.name + ".glb"))
            if str(outputs[0]).lower() in seen:
                raise ManifestError(f"takes '{seen[str(outputs[0]).lower()]}' and '{t.name}' write the "
                                    f"same file {outputs[0].name}: fix their 'pattern'")
            seen[str(outputs[0]).lower()] = t.name
            map_file = isinstance(t.options["map"], Path)   # a preset's name is no input file
            inputs = [rig_output(manifest, c), t.file] + ([t.options["map"]] if map_file else [])
            tasks.append(Task(f"bake:{c.index},{t.index}", "bake", f"bake-{c.name}--{t.name}",
                              f"{c.name} × {t.name}", c, t, inputs=inputs, outputs=outputs,
                              depends=f"rig:{c.index}"))
    return tasks


def select(tasks: list, only: Optional[list]) -> list:
    """The tasks named by ``--only`` (``rig:I``, ``bake:I,J``, ``rig:*``, ``bake:I,*``), in plan order."""
    if not only:
        return list(tasks)
    ids = {t.id for t in tasks}
    wanted = set()
    for spec in only:
        for item in spec.replace(" ", "").split(";"):
            if not item:
                continue
            pattern = re.escape(item).replace(r"\*", r"\d+")
            matched = {i for i in ids if re.fullmatch(pattern, i)}
            if not matched:
                raise ManifestError(f"--only {item}: no such task (tasks are rig:I and bake:I,J; "
                                    f"{len([i for i in ids if i.startswith('rig')])} characters, "
                                    f"{len([i for i in ids if i.startswith('bake')])} pairs)")
            wanted |= matched
    return [t for t in tasks if t.id in wanted]


def farm_ranges(manifest: Manifest) -> dict:
    """The job parameters a farm template needs: index ranges of characters and takes."""
    def span(n):
        return f"0-{n - 1}" if n else ""
    return {"CharacterRange": span(len(manifest.characters)), "TakeRange": span(len(manifest.takes)),
            "characters": [c.name for c in manifest.characters], "takes": [t.name for t in manifest.takes]}
