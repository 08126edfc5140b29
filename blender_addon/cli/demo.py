# SPDX-License-Identifier: GPL-3.0-or-later
"""``python build.py demo``: rig the default head, bake the default performance, show it.

The default head is Blender's own Suzanne, subdivided once (about 2k vertices). It is
built into every Blender, so the demo needs no file and no licence, and it is exactly the
kind of input Facsimile promises to handle: a stylized, non-human face of a topology no
network was trained on, with loose parts (its eyes) that must stay still. The performance
(``core/takes/demo_performance.py``) is written as a Live Link Face CSV and imported like an artist's take.

Writes ``demo.blend`` (the rig, the take, the bake, the head following the take's head
rotation), ``demo.glb`` (morph targets + animation), ``demo_take.csv`` and, unless
``--no-render``, ``demo_contact_sheet.png`` (``render.py``).
"""

from __future__ import annotations

from pathlib import Path

import bpy

from ..core.takes import demo_performance, write_llf_csv
from . import pipeline, render


def default_head():
    """Suzanne, subdivided once, smooth, 0.3 m wide, facing -Y at the origin."""
    bpy.ops.mesh.primitive_monkey_add(size=0.22, location=(0.0, 0.0, 0.0))
    head = bpy.context.object
    head.name = head.data.name = "DemoHead"
    modifier = head.modifiers.new("Subdivision", "SUBSURF")
    modifier.levels = 1
    with bpy.context.temp_override(object=head, active_object=head):
        bpy.ops.object.modifier_apply(modifier=modifier.name)
    head.data.shade_smooth()
    material = bpy.data.materials.new("DemoSkin")
    material.diffuse_color = (0.8, 0.55, 0.45, 1.0)
    if material.node_tree is None:   # 4.x: materials get a node tree on request
        material.use_nodes = True
    bsdf = material.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = (0.8, 0.55, 0.45, 1.0)
        bsdf.inputs["Roughness"].default_value = 0.55
    head.data.materials.append(material)
    return head


def run(out: Path, render: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pipeline.stage("creating the default head (Suzanne, subdivided)")
    head = default_head()
    pipeline.rig(head)
    take_path = (out / "demo_take.csv").resolve()
    write_llf_csv(take_path, demo_performance.demo_take())
    pipeline.stage(f"wrote the default performance {take_path}")
    pipeline.import_take(str(take_path))
    pipeline.bake([head])
    pipeline.activate([head])
    pipeline.call(bpy.ops.facsimile.link_rotation, "head rotation", part="HEAD")
    pipeline.stage(f"wrote {pipeline.save_blend(str(out / 'demo.blend'))}")
    pipeline.stage(f"wrote {pipeline.export_glb(str(out / 'demo.glb'), [head])}")
    if render:
        contact_sheet(head, (out / "demo_contact_sheet.png").resolve())


def contact_sheet(head, path: Path) -> None:
    scene = bpy.context.scene   # the take starts on the scene's first frame (import_take)
    poses = demo_performance.poses(scene.frame_start, scene.render.fps / scene.render.fps_base)
    pipeline.stage(f"rendering {len(poses)} frames (Cycles, CPU)")
    render.setup(scene)
    render.frame_front(scene, head)
    images = render.render_frames(scene, [f for f, _ in poses])
    sheet = render.contact_sheet(images, [f"{f} {label}" for f, label in poses])
    pipeline.stage(f"wrote {render.save_png(sheet, path)}")
