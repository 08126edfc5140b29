# SPDX-License-Identifier: GPL-3.0-or-later
"""Render the workflow pictures in docs/images/ headless, with the shipped models.

    .venv/bin/python -m tools.render_docs

Three heads the networks never saw: a held-out ICT identity, stylized and re-meshed
(ICT-FaceKit, MIT), the demo's default head (MIT Rocketbox, ``cli/demo_assets``) and
Blender's Suzanne. Each is rigged with ``facsimile.rig``
exactly as an artist would, then rendered neutral, jawOpen, smile, blink, and with its
predicted region weights as colours.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import bpy
import numpy as np

from blender_addon.cli import render

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
POSES = (("neutral", {}), ("jawOpen", {"jawOpen": 1.0}),
         ("smile", {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0}),
         ("blink", {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}),
         ("brows up", {"browInnerUp": 1.0, "browOuterUpLeft": 1.0, "browOuterUpRight": 1.0}))


def _ict_head():
    from model_export import evaluate
    from model_export.data import dataset
    from model_export.data.ict import load_ict
    from model_export.data.regions import load_region_labels

    ict = load_ict()
    rng = np.random.default_rng(evaluate.HELDOUT_SEED + 7)
    topo = dataset.make_test_topology(ict, load_region_labels(), rng, "face", None, False)
    neutral, _ = dataset.head_geometry(ict, dataset.random_identity(rng), rng, stylize_strength=0.5)
    verts = topo.carry(ict.faces, neutral) * 0.01                     # cm -> m
    mesh = bpy.data.meshes.new("ICTHead")
    mesh.from_pydata(verts.tolist(), [], topo.faces.tolist())
    obj = bpy.data.objects.new("ICTHead", mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _rocketbox():
    from blender_addon.cli import demo

    return demo.default_head("Rocketbox")


def _suzanne():
    bpy.ops.mesh.primitive_monkey_add(size=0.25)
    obj = bpy.context.object
    with bpy.context.temp_override(object=obj, active_object=obj):
        mod = obj.modifiers.new("sub", "SUBSURF")
        mod.levels = 2
        bpy.ops.object.modifier_apply(modifier=mod.name)
    return obj


def _skin_material(obj, color=(0.78, 0.6, 0.52, 1.0)):
    mat = bpy.data.materials.new(f"{obj.name}Skin")
    if mat.node_tree is None:
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = color
    bsdf.inputs["Roughness"].default_value = 0.5
    obj.data.materials.clear()
    obj.data.materials.append(mat)
    obj.data.shade_smooth()


def _region_colour_material(obj):
    """Vertex colours = region weights x a colour per region; a material that shows them."""
    from blender_addon.core.regions import REGION_NAMES, group_name

    n = len(obj.data.vertices)
    palette = np.array([colorsys.hsv_to_rgb((i * 0.61803) % 1.0, 0.65, 0.95) for i in range(len(REGION_NAMES))])
    weights = np.zeros((n, len(REGION_NAMES)))
    index = {obj.vertex_groups[group_name(r)].index: i for i, r in enumerate(REGION_NAMES)}
    for v in obj.data.vertices:
        for g in v.groups:
            if g.group in index:
                weights[v.index, index[g.group]] = g.weight
    rgb = weights @ palette + (1 - weights.sum(1, keepdims=True)) * 0.35
    attr = obj.data.color_attributes.new("FX_regions", "FLOAT_COLOR", "POINT")
    attr.data.foreach_set("color", np.c_[rgb, np.ones(n)].astype(np.float32).ravel())
    mat = bpy.data.materials.new("Regions")
    if mat.node_tree is None:
        mat.use_nodes = True
    nodes = mat.node_tree.nodes
    node = nodes.new("ShaderNodeAttribute")
    node.attribute_name = "FX_regions"
    mat.node_tree.links.new(node.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    obj.data.materials.clear()
    obj.data.materials.append(mat)


def _pose(obj, values: dict) -> None:
    for kb in obj.data.shape_keys.key_blocks[1:]:
        kb.value = values.get(kb.name, 0.0)


def render_head(obj, size: int = 224) -> list:
    scene = bpy.context.scene
    render.setup(scene, size=size, samples=12)
    for o in list(scene.objects):
        if o.type in ("CAMERA", "LIGHT"):
            bpy.data.objects.remove(o)
    render.frame_front(scene, obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    _skin_material(obj)
    images = []
    for _label, values in POSES:
        _pose(obj, values)
        images += render.render_frames(scene, [scene.frame_current])
    _pose(obj, {})
    _region_colour_material(obj)
    images += render.render_frames(scene, [scene.frame_current])
    return images


def main() -> None:
    import addon_utils

    IMAGES.mkdir(parents=True, exist_ok=True)
    labels = [label for label, _ in POSES] + ["regions"]
    rows = []
    for make in (_ict_head, _rocketbox, _suzanne):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        addon_utils.enable("blender_addon", default_set=True)
        rows.append(render_head(make()))
    sheet = render.contact_sheet(sum(rows, []), labels * len(rows), columns=len(labels))
    path = render.save_png(sheet, IMAGES / "workflow_rig.png")
    print(f"[docs] wrote {path}")


if __name__ == "__main__":
    main()
