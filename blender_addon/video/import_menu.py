# SPDX-License-Identifier: GPL-3.0-or-later
"""Videos from File ▸ Import and from a video dropped on the 3D viewport (``FileHandler``).

Both run ``facsimile.import_video``: the menu opens its file browser; a drop sets its
``filepath`` and the operator asks for its options in a dialog before tracking.
"""

import bpy

from ..core.video.decode import EXTENSIONS


def menu_import(self, _context):
    self.layout.operator("facsimile.import_video", text="Facsimile Video (.mp4, .mov, …)")


class FACSIMILE_FH_video(bpy.types.FileHandler):
    bl_idname = "FACSIMILE_FH_video"
    bl_label = "Facsimile Video"
    bl_import_operator = "facsimile.import_video"
    bl_file_extensions = ";".join(EXTENSIONS)

    @classmethod
    def poll_drop(cls, context):
        # The viewport only: a video dropped on the sequencer or a movie clip editor is theirs.
        return context.area is not None and context.area.type == "VIEW_3D"


classes = (FACSIMILE_FH_video,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_file_import.append(menu_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
