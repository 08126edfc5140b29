# SPDX-License-Identifier: GPL-3.0-or-later
"""Where Facsimile's panels live: View3D > Sidebar (N) > Facsimile."""


class SidebarPanel:
    """Mixin for every Facsimile panel (put it before ``bpy.types.Panel``)."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Facsimile"
