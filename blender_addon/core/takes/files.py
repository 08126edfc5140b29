# SPDX-License-Identifier: GPL-3.0-or-later
"""Take files by type: which reader opens which file, and files too large to be takes.

No bpy: the import operator and the headless CLI both come through here. glTF/FBX takes
(morph animation) need Blender's importers and are read by ``drive/sources.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from .errors import TakeError
from .facecap_txt import read_facecap_txt
from .llf_csv import read_llf_csv
from .take import Take

# A 2-hour Live Link Face take at 60 Hz is ~540 MB of CSV. Anything larger is not a take
# (a video or a dump picked by mistake), and reading it would freeze Blender for minutes.
MAX_TAKE_BYTES = 1 << 30

TEXT_TAKES = {".csv": "Live Link Face CSV", ".txt": "Face Cap TXT"}
SCENE_TAKES = {".glb": "glTF", ".gltf": "glTF", ".fbx": "FBX"}
FILE_FILTER = "*.csv;*.txt;*.glb;*.gltf;*.fbx"


def take_kind(path) -> str:
    """'text' for CSV/TXT, 'scene' for glTF/FBX; TakeError for anything else."""
    ext = Path(path).suffix.lower()
    if ext in TEXT_TAKES:
        return "text"
    if ext in SCENE_TAKES:
        return "scene"
    raise TakeError(f"'{Path(path).name}': unsupported take file type "
                    f"'{ext or '(none)'}' (expected .csv Live Link Face, .txt Face Cap, "
                    ".glb/.gltf/.fbx with ARKit morph animation)")


def check_file(path, limit: Optional[int] = None) -> None:
    """TakeError unless ``path`` is an existing file of at most ``limit`` bytes."""
    name = Path(path).name
    if not os.path.isfile(path):
        raise TakeError(f"'{name}': no such file")
    size, limit = os.path.getsize(path), MAX_TAKE_BYTES if limit is None else limit
    if size > limit:
        raise TakeError(f"'{name}': the file is too large for a take ({size / 2**20:.0f} MB; "
                        f"at most {limit / 2**20:.0f} MB)")


def read_text_take(path, timecode_fps: Optional[float] = None) -> Take:
    """A Live Link Face CSV or Face Cap TXT take (by extension)."""
    check_file(path)
    if take_kind(path) != "text":
        raise TakeError(f"'{Path(path).name}': not a CSV or TXT take")
    if Path(path).suffix.lower() == ".csv":
        return read_llf_csv(path, fps=timecode_fps or None)
    return read_facecap_txt(path)
