# SPDX-License-Identifier: GPL-3.0-or-later
"""Takes from File ▸ Import and from a file dropped on the 3D viewport (``FileHandler``).

Both run ``facsimile.import_take``: the menu opens its file browser; a drop sets its
``filepath`` and the take is imported at once with the operator's defaults (Blender 4.1+
calls the operator named in ``bl_import_operator`` with the dropped path).
"""

import bpy

from ..core.takes import files as take_files

# Text takes only: .glb/.fbx drops stay with Blender's own importers, which own those formats.
DROP_EXTENSIONS = ";".join(take_files.TEXT_TAKES)


def menu_import(self, _context):
    self.layout.operator("facsimile.import_take", text="Facsimile Take (.csv, .txt)")


class FACSIMILE_FH_take(bpy.types.FileHandler):
    bl_idname = "FACSIMILE_FH_take"
    bl_label = "Facsimile Take"
    bl_import_operator = "facsimile.import_take"
    bl_file_extensions = DROP_EXTENSIONS

    @classmethod
    def poll_drop(cls, context):
        return context.area is not None and context.area.type == "VIEW_3D"


classes = (FACSIMILE_FH_take,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_file_import.append(menu_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
