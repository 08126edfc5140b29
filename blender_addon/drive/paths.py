# SPDX-License-Identifier: GPL-3.0-or-later
"""Data-path targets of the channel map in Blender: resolve, read, write (preview), key (bake).

A channel sent to a data path (``core/mapping.py``) drives one property of one object: a
bone's rotation (``pose.bones["jaw"].rotation_euler`` index 0), a custom property
(``["mouth_open"]``, on the object or on a pose bone), any number an F-curve can animate.
Everything is checked before anything is written: a missing object, bone or property is a
one-line :class:`TargetError`, and the preview and the bake then change nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import bpy

from ..core import arkit
from ..core.drive_values import path_columns
from ..core.errors import TargetError

# The last step of a data path: an attribute or a ["custom property"], and what it is on.
_LAST = re.compile(r'^(?P<owner>.*?)(?:\.?(?P<attr>[A-Za-z_]\w*)|\["(?P<prop>(?:[^"\\]|\\.)*)"\])$')
_INDEXED = re.compile(r"^(?P<path>.*)\[(?P<index>\d+)\]$")
_NUMBERS = {"FLOAT", "INT", "BOOLEAN"}


@dataclass(frozen=True)
class PathTarget:
    """One resolved data path: ``column`` is its channel's column in ``path_values``."""

    column: int
    channel: str
    obj_name: str
    path: str          # relative to the object, as an F-curve's data_path
    index: int         # the F-curve's array_index
    owner_path: str    # the struct the property is on ('' = the object)
    attr: str          # an RNA property's identifier, or '' for a custom property
    prop: str          # a custom property's name, or ''
    array: bool

    @property
    def key(self) -> tuple:
        return (self.obj_name, self.path, self.index)

    def label(self) -> str:
        return f"'{self.obj_name}' {self.path}[{self.index}]"


def _fail(channel: str, what: str):
    raise TargetError(f"{channel}'s target in the retarget map: {what}; fix the map "
                      "(Drive › Retarget Map) and try again")


def _resolve_one(column: int, channel: str, obj, path: str, index: int) -> PathTarget:
    indexed = _INDEXED.match(path)
    if indexed and index == 0:
        path, index = indexed["path"], int(indexed["index"])   # rotation_euler[2]: the index
    last = _LAST.match(path)
    if last is None:
        _fail(channel, f"{path!r} is not a data path")
    owner = obj
    if last["owner"]:
        try:
            owner = obj.path_resolve(last["owner"])
        except ValueError:
            _fail(channel, f"'{obj.name}' has no {last['owner']}")
    if getattr(owner, "id_data", obj) != obj:
        _fail(channel, f"{path} leads to another data-block ('{owner.id_data.name}'); "
                       "target that data-block's object, or a shape key")
    if last["attr"]:
        rna = owner.bl_rna.properties.get(last["attr"]) if hasattr(owner, "bl_rna") else None
        if rna is None:
            _fail(channel, f"'{obj.name}' has no {path}")
        if rna.type not in _NUMBERS:
            _fail(channel, f"{path} on '{obj.name}' is not a number")
        if rna.is_readonly:
            _fail(channel, f"{path} on '{obj.name}' is read-only")
        length = rna.array_length if getattr(rna, "is_array", False) else 0
        array = length > 0
    else:
        name = bpy.utils.unescape_identifier(last["prop"])
        if not hasattr(owner, "keys") or name not in owner.keys():
            _fail(channel, f"'{obj.name}' has no custom property {path}")
        value = owner[name]
        array = hasattr(value, "__len__")
        length = len(value) if array else 0
        if not array and (isinstance(value, bool) or not isinstance(value, (int, float))):
            _fail(channel, f"custom property {path} on '{obj.name}' is not a number")
    if index >= max(length, 1):
        _fail(channel, f"{path} on '{obj.name}' has no index {index}"
                       + (f" (it has {length})" if length else " (a single value: use 0)"))
    return PathTarget(column, channel, obj.name, path, index, last["owner"], last["attr"] or "",
                      bpy.utils.unescape_identifier(last["prop"]) if last["prop"] else "", array)


def resolve(rmap, cmap, meshes) -> list:
    """Every enabled data-path target of ``cmap``, resolved (TargetError on the first that
    is not there). A target without an object is on each of ``meshes``."""
    found = []
    for column, (channel, target) in enumerate(path_columns(rmap, cmap)):
        name = arkit.ARKIT_52[channel]
        if target.object:
            obj = bpy.data.objects.get(target.object)
            if obj is None:
                _fail(name, f"there is no object '{target.object}'")
            objs = [obj]
        else:
            objs = list(meshes)
        for obj in objs:
            if obj.library is not None:
                _fail(name, f"'{obj.name}' is linked from a library and cannot be edited here")
            found.append(_resolve_one(column, name, obj, target.path, target.index))
    seen = {}
    for target in found:
        if target.key in seen:
            raise TargetError(f"{seen[target.key]} and {target.channel} both drive {target.label()}; "
                              "give each its own target")
        seen[target.key] = target.channel
    return found


def _owner(target: PathTarget):
    obj = bpy.data.objects.get(target.obj_name)
    if obj is None:
        return None
    try:
        return obj.path_resolve(target.owner_path) if target.owner_path else obj
    except ValueError:
        return None


def read(target: PathTarget):
    """The property's value now (None when it is gone)."""
    owner = _owner(target)
    if owner is None:
        return None
    value = getattr(owner, target.attr) if target.attr else owner.get(target.prop)
    return value[target.index] if target.array else value


def write(target: PathTarget, value) -> None:
    """Set the property (the live preview); gone since the preview started: skipped."""
    owner = _owner(target)
    if owner is None:
        return
    current = getattr(owner, target.attr) if target.attr else owner.get(target.prop)
    if current is None:
        return
    old = current[target.index] if target.array else current
    if isinstance(old, bool):
        value = bool(value >= 0.5)
    elif isinstance(old, int):
        value = int(round(float(value)))
    else:
        value = float(value)
    if target.array:
        current[target.index] = value   # RNA arrays and ID-property arrays write through
    elif target.attr:
        setattr(owner, target.attr, value)
    else:
        owner[target.prop] = value
    owner.id_data.update_tag()   # custom properties and drivers reading them re-evaluate


def objects(targets) -> list:
    """The objects ``targets`` are on, each once, in order."""
    names = list(dict.fromkeys(t.obj_name for t in targets))
    return [bpy.data.objects[n] for n in names if n in bpy.data.objects]
