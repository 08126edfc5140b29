# SPDX-License-Identifier: GPL-3.0-or-later
"""Live capture settings on the scene: which app, which port, which network.

Only settings are kept in the .blend; whether a capture runs, its socket, its counters and
its calibration are Python state (``session.py``), so a saved file never opens "running".
"""

import bpy

from ..core.live import PROTOCOLS

PROTOCOL_ITEMS = tuple((p.name, p.label, f"{p.label} over UDP (the app's default port is "
                        f"{p.default_port})") for p in PROTOCOLS.values())
ADDRESS_ITEMS = (
    ("ALL", "Network", "Listen on every network interface, so a phone on the same network reaches "
                       "Blender"),
    ("LOCAL", "This computer", "Listen on 127.0.0.1 only (a sender running on this computer)"),
)
HOSTS = {"ALL": "0.0.0.0", "LOCAL": "127.0.0.1"}


def _protocol_changed(self, _context):
    # Each app has its own default port; a custom port is rarely wanted across apps.
    self.port = PROTOCOLS[self.protocol].default_port


class FACSIMILE_PG_live(bpy.types.PropertyGroup):
    protocol: bpy.props.EnumProperty(name="App", items=PROTOCOL_ITEMS, default="livelinkface",
                                     update=_protocol_changed,
                                     description="The phone app that streams the face")
    port: bpy.props.IntProperty(name="Port", default=PROTOCOLS["livelinkface"].default_port,
                                min=1, max=65535,
                                description="UDP port Blender listens on: type the same in the app")
    address: bpy.props.EnumProperty(name="Listen on", items=ADDRESS_ITEMS, default="ALL")
    phone: bpy.props.StringProperty(
        name="Phone IP", default="",
        description="iFacialMocap only: the phone's IP address (shown in the app), which Blender "
                    "must greet before the app streams")


classes = (FACSIMILE_PG_live,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.facsimile_live = bpy.props.PointerProperty(type=FACSIMILE_PG_live)


def unregister():
    del bpy.types.Scene.facsimile_live
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
