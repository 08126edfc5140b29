# SPDX-License-Identifier: GPL-3.0-or-later
"""Where retarget-map presets live: shipped with the add-on, and the user's own.

Shipped presets (``presets/*.json``: VRoid, Rocketbox) are read-only: the extension's own
folder is replaced on every update. The user's presets go to the extension's user folder
(``bpy.utils.extension_path_user``), which updates keep; a user preset of the same name as
a shipped one wins. Used by the Drive panel's Save/Load Preset and the CLI's ``--map NAME``.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from .core import mapping

SHIPPED = Path(__file__).resolve().parent / "presets"


def user_folder(create: bool = False) -> Path | None:
    """The user's preset folder (None when it cannot be made)."""
    try:
        return Path(bpy.utils.extension_path_user(__package__, path="presets", create=create))
    except (ValueError, AttributeError):
        # Not installed as an extension (the source tree run by ``python -m``): Blender's
        # user config folder instead.
        folder = bpy.utils.user_resource("CONFIG", path="facsimile_presets", create=create)
        return Path(folder) if folder else None


def available() -> dict:
    """Preset name -> JSON path, shipped then the user's (theirs win), sorted by name."""
    return mapping.list_presets(SHIPPED, user_folder())


def find(name: str) -> Path:
    """The preset called ``name`` (case-insensitive); MappingError listing the others."""
    presets = available()
    for preset, path in presets.items():
        if preset.lower() == name.strip().lower():
            return path
    raise mapping.MappingError(f"no retarget-map preset named {name!r} (there are: "
                               f"{', '.join(presets) or 'none'})")


def is_shipped(path: Path) -> bool:
    return Path(path).resolve().parent == SHIPPED
