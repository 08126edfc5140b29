# SPDX-License-Identifier: GPL-3.0-or-later
"""``python build.py demo``: rig the default heads, bake the default performance, show it.

Two heads no network was trained on, side by side: a human head from the MIT Rocketbox
avatar library (``demo_assets/rocketbox_male03.npz``, 20 KB, credit and licence in
``demo_assets/CREDITS.md``), whose predicted shapes move enough to read in a picture, and
Blender's Suzanne, subdivided once, the stylized non-human face with loose eyes that must
stay still. The performance (``core/takes/demo_performance.py``) is written as a Live Link
Face CSV and imported like an artist's take.

Writes ``demo.blend`` (the rigs, the take, the bake, both heads following the take's head
rotation), ``demo.glb`` (morph targets + animation), ``demo_take.csv`` and, unless
``--no-render``, ``demo_contact_sheet.png`` (``render.py``).
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..core.takes import demo_performance, write_llf_csv
from . import pipeline, render

ASSET = Path(__file__).resolve().parent / "demo_assets" / "rocketbox_male03.npz"
SKIN = (0.8, 0.56, 0.45, 1.0)
CELL = 224   # pixels, each head's close-up in the contact sheet
FACE_BOX = (0.12, 0.88, 0.36, 0.86)   # the Rocketbox face in its bounds: brows to chin
MOTION_MM = 8.0   # displacement shown at full heat in the motion column
# Material slots of the asset's ``face_material``: skin, eye white, iris.
HEAD_MATERIALS = (("DemoSkin", SKIN, 0.55), ("DemoEyeWhite", (0.85, 0.85, 0.82, 1.0), 0.25),
                  ("DemoIris", (0.08, 0.05, 0.03, 1.0), 0.2))


def _material(name: str, color, roughness: float):
    material = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    material.diffuse_color = color
    if material.node_tree is None:   # 4.x: materials get a node tree on request
        material.use_nodes = True
    bsdf = material.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = color
        bsdf.inputs["Roughness"].default_value = roughness
    return material


def default_head(name: str = "DemoHead"):
    """The Rocketbox head: Z up, facing -Y, the neck base at the origin, 0.19 m wide."""
    with np.load(ASSET) as data:
        verts = data["verts"].astype(np.float32)
        faces = data["faces"].astype(np.int64)
        slots = data["face_material"].astype(np.int32)
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts.tolist(), [], faces.tolist())
    for slot in HEAD_MATERIALS:
        mesh.materials.append(_material(*slot))
    mesh.polygons.foreach_set("material_index", slots)
    mesh.shade_smooth()
    mesh.validate()
    head = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(head)
    return head


def suzanne(name: str = "DemoSuzanne", location=(0.27, 0.0, 0.2)):
    """Suzanne, subdivided once, smooth, 0.25 m wide, facing -Y."""
    bpy.ops.mesh.primitive_monkey_add(size=0.18, location=location)
    head = bpy.context.object
    head.name = head.data.name = name
    modifier = head.modifiers.new("Subdivision", "SUBSURF")
    modifier.levels = 1
    with bpy.context.temp_override(object=head, active_object=head):
        bpy.ops.object.modifier_apply(modifier=modifier.name)
    head.data.shade_smooth()
    head.data.materials.append(_material(*HEAD_MATERIALS[0]))
    return head


def run(out: Path, render: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pipeline.stage("creating the default heads (Rocketbox male 03, Suzanne)")
    heads = [default_head(), suzanne()]
    for head in heads:
        pipeline.rig(head)
    take_path = (out / "demo_take.csv").resolve()
    write_llf_csv(take_path, demo_performance.demo_take())
    pipeline.stage(f"wrote the default performance {take_path}")
    pipeline.import_take(str(take_path))
    pipeline.bake(heads)
    for head in heads:
        pipeline.activate([head])
        pipeline.call(bpy.ops.facsimile.link_rotation, "head rotation", part="HEAD")
    pipeline.stage(f"wrote {pipeline.save_blend(str(out / 'demo.blend'))}")
    pipeline.stage(f"wrote {pipeline.export_glb(str(out / 'demo.glb'), heads)}")
    if render:
        contact_sheet(heads, (out / "demo_contact_sheet.png").resolve())


def contact_sheet(heads, path: Path) -> None:
    """One cell per labelled pose of the performance: each head in its own close-up, side by
    side. The head rotation is held still while rendering, so only the expression changes
    from cell to cell."""
    scene = bpy.context.scene   # the take starts on the scene's first frame (import_take)
    poses = demo_performance.poses(scene.frame_start, scene.render.fps / scene.render.fps_base)
    frames = [f for f, _ in poses]
    pipeline.stage(f"rendering {len(poses)} poses of {len(heads)} heads (Cycles, CPU)")
    render.setup(scene, size=CELL, samples=8)
    follow = [c for head in heads for c in head.constraints if c.name == "Facsimile Head"]
    columns = []
    try:
        for c in follow:
            c.mute = True
        for head in heads:
            for other in heads:
                other.hide_render = other is not head
            # The human head: its face, brows to chin; Suzanne whole.
            render.frame_front(scene, [head], margin=1.0, box=FACE_BOX if head is heads[0] else None)
            columns.append(render.render_frames(scene, frames))
            if head is heads[0]:
                columns.append(_motion_frames(scene, head, frames))
    finally:
        for c in follow:
            c.mute = False
        for head in heads:
            head.hide_render = False
    images = [np.concatenate(cells, axis=1) for cells in zip(*columns)]
    sheet = render.contact_sheet(images, [f"{label} (frame {f})" for f, label in poses], columns=2)
    pipeline.stage(f"wrote {render.save_png(sheet, path)}")


def _motion_frames(scene, head, frames) -> list:
    """The head coloured by how far each vertex moved from the neutral at each frame (black
    still, yellow at ``MOTION_MM`` mm or more): the expressions whose motion is a few
    millimetres (a blink) show as clearly as a jaw."""
    keys = head.data.shape_keys.key_blocks
    n = len(head.data.vertices)
    basis = np.empty(n * 3, np.float32)
    keys[0].data.foreach_get("co", basis)
    deltas = []
    for kb in keys[1:]:
        co = np.empty(n * 3, np.float32)
        kb.data.foreach_get("co", co)
        deltas.append((co - basis).reshape(n, 3))
    deltas = np.stack(deltas)
    attr = head.data.color_attributes.new("facsimile_motion", "FLOAT_COLOR", "POINT")
    material = _material("DemoMotion", (1.0, 1.0, 1.0, 1.0), 0.8)
    nodes = material.node_tree.nodes
    node = nodes.get("Motion") or nodes.new("ShaderNodeAttribute")
    node.name, node.attribute_name = "Motion", attr.name
    material.node_tree.links.new(node.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    saved = list(head.data.materials)
    for i in range(len(saved)):
        head.data.materials[i] = material
    images = []
    try:
        for frame in frames:
            scene.frame_set(int(frame))
            values = np.array([kb.value for kb in keys[1:]], np.float32)
            heat = np.clip(np.linalg.norm(np.tensordot(values, deltas, 1), axis=1) * 1000.0 / MOTION_MM, 0, 1)
            rgb = np.stack([np.clip(2 * heat, 0, 1), np.clip(2 * heat - 0.6, 0, 1), 0.15 * (1 - heat)], 1)
            attr.data.foreach_set("color", np.c_[0.08 + 0.92 * rgb, np.ones(n)].astype(np.float32).ravel())
            images += render.render_frames(scene, [frame])
    finally:
        for i, mat in enumerate(saved):
            head.data.materials[i] = mat
        head.data.color_attributes.remove(head.data.color_attributes[attr.name])
    return images
