# SPDX-License-Identifier: GPL-3.0-or-later
"""Building test meshes in real Blender and reading results back (no mocks)."""

from __future__ import annotations

import os
import subprocess
import sys

import bpy
import numpy as np

# The add-on as installed by the suite's conftest. Development tools that borrow these helpers
# against the source tree (tools/bench_drive.py, tools/video_docs.py) set it to "blender_addon".
ADDON_MODULE = "bl_ext.user_default.facsimile"


def addon_module(name: str):
    """A module of the add-on, e.g. ``addon_module("core.arkit")``."""
    import importlib

    return importlib.import_module(f"{ADDON_MODULE}.{name}")

# The installed extension's command line in a fresh process of this clean Blender
# (`blender --command facsimile …` is the same function): enable it as Blender does, then run.
_CLI = ("import importlib, sys\n"
        "import bpy, addon_utils\n"
        f"if addon_utils.enable({ADDON_MODULE!r}, default_set=True) is None:\n"
        "    sys.exit('facsimile: error: the extension is not installed')\n"
        f"entry = importlib.import_module({ADDON_MODULE!r} + '.__main__')\n"
        "entry.exit_process(entry.main(sys.argv[1:]))\n")


def wheels_ready() -> None:
    """Make sure the extension is enabled, so its wheels (PyAV, SciPy, ONNX Runtime) are on disk.

    Blender keeps an extension's wheels in its site-packages only while it is enabled: the
    ``addon`` fixture's teardown disables it, which removes them. Session fixtures that use
    PyAV outside a test's ``addon`` (the rendered clip, its track) call this first."""
    import addon_utils

    if ADDON_MODULE not in bpy.context.preferences.addons:
        addon_utils.enable(ADDON_MODULE, default_set=True)


def clean_env(**extra) -> dict:
    """This process's environment without the test runner's path: a user's Blender."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(*args, home=None, timeout: int = 900) -> subprocess.CompletedProcess:
    """``facsimile ARGS`` with the installed extension, in a fresh Blender process."""
    env = clean_env(**({"HOME": home} if home else {}))
    return subprocess.run([sys.executable, "-c", _CLI, *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout)


def to_blender_frame(a: np.ndarray) -> np.ndarray:
    """Y-up, +Z-forward data (ICT, glTF) -> Blender's Z-up, face toward -Y."""
    a = np.asarray(a)
    return np.stack([a[..., 0], -a[..., 2], a[..., 1]], axis=-1)


def mesh_object(name: str, verts: np.ndarray, faces, link: bool = True):
    """A mesh object from arrays, made active and selected."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(np.asarray(verts, float).tolist(), [], [list(map(int, f)) for f in faces])
    mesh.validate(clean_customdata=False)
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    if link:
        bpy.context.scene.collection.objects.link(obj)
        bpy.context.view_layer.objects.active = obj
        obj.select_set(True)
    return obj


def facecap_object(npz_path, scale: float = 0.01, with_loose_parts: bool = True):
    """The facecap head (Blender frame, metres by default) with eyes and teeth in the same mesh."""
    with np.load(npz_path) as d:
        parts = [(d["neutral"], d["faces"])]
        if with_loose_parts:
            parts += [(d["eyeL_verts"], d["eyeL_faces"]), (d["eyeR_verts"], d["eyeR_faces"]),
                      (d["teeth_verts"], d["teeth_faces"])]
        names = [str(n) for n in d["names"]]
        gt = to_blender_frame(d["deltas"]) * scale
        n_skin = len(d["neutral"])
    verts, faces, offset = [], [], 0
    for v, f in parts:
        verts.append(to_blender_frame(v) * scale)
        faces.append(np.asarray(f) + offset)
        offset += len(v)
    obj = mesh_object("FacecapHead", np.concatenate(verts), np.concatenate(faces))
    return obj, gt, names, n_skin


def base_coords(obj) -> np.ndarray:
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def key_deltas(obj, name: str) -> np.ndarray:
    """(V,3) object-space delta of a shape key against the Basis."""
    keys = obj.data.shape_keys
    kb = keys.key_blocks[name]
    co = np.empty(len(kb.points) * 3, np.float32)
    base = np.empty_like(co)
    kb.points.foreach_get("co", co)
    keys.reference_key.points.foreach_get("co", base)
    return (co - base).reshape(-1, 3)


def group_weights(obj, prefix: str = "FX_") -> tuple[list[str], np.ndarray]:
    names = [vg.name for vg in obj.vertex_groups if vg.name.startswith(prefix)]
    index = {obj.vertex_groups[n].index: i for i, n in enumerate(names)}
    w = np.zeros((len(obj.data.vertices), len(names)), np.float32)
    for v in obj.data.vertices:
        for g in v.groups:
            if g.group in index:
                w[v.index, index[g.group]] = g.weight
    return names, w


def snapshot(obj) -> dict:
    """Everything a rig operator may touch, for exact before/after comparison."""
    keys = {}
    if obj.data.shape_keys is not None:
        for kb in obj.data.shape_keys.key_blocks:
            co = np.empty(len(kb.points) * 3, np.float32)
            kb.points.foreach_get("co", co)
            keys[kb.name] = (co, kb.value)
    names, w = group_weights(obj, prefix="")
    return {"co": base_coords(obj), "keys": keys, "groups": names, "weights": w}


def assert_same(a: dict, b: dict) -> None:
    np.testing.assert_array_equal(a["co"], b["co"])
    assert list(a["keys"]) == list(b["keys"])
    for name in a["keys"]:
        np.testing.assert_array_equal(a["keys"][name][0], b["keys"][name][0])
        assert a["keys"][name][1] == b["keys"][name][1]
    assert a["groups"] == b["groups"]
    np.testing.assert_array_equal(a["weights"], b["weights"])


def top_vertices(values: np.ndarray, count: int) -> np.ndarray:
    return np.argsort(-values)[:count]


def mirror_vertices(verts: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The vertex nearest to each mirrored (x -> -x) position."""
    from scipy.spatial import cKDTree

    target = verts[idx] * np.array([-1.0, 1.0, 1.0])
    return cKDTree(verts).query(target)[1]


# ------------------------------------------------------------------ drive (performances)

def facecap_performer(npz_path, prefix: str = "blendShape1.", scale: float = 0.01, fps: int = 30,
                      numbered: bool = False):
    """The facecap head with its 52 morphs as shape keys named like a glTF import
    (``blendShape1.eyeBlink_L``), or ``Key 00``… with ``numbered`` (names that mean nothing),
    keyed with its recorded performance on frames 1..335.

    Returns (object, weights (335, 52) in ARKit order). The scene rate is set to ``fps``.
    """
    arkit = addon_module("core.arkit")

    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = fps, 1.0
    obj, gt, names, _n = facecap_object(npz_path, scale=scale, with_loose_parts=False)
    obj.name = "Performer"
    with np.load(npz_path) as d:
        anim = d["anim_weights"].astype(np.float32)
    base = base_coords(obj)
    obj.shape_key_add(name="Basis", from_mix=False)
    for i, name in enumerate(names):
        kb = obj.shape_key_add(name=f"Key {i:02d}" if numbered else prefix + name, from_mix=False)
        kb.points.foreach_set("co", (base + gt[i]).ravel())
        kb.value = 0.0
        for f, w in enumerate(anim[:, i]):
            kb.value = float(w)
            kb.keyframe_insert("value", frame=f + 1)
    order = [names.index(n) for n in (arkit.to_style(a, "ARKIT_LR")[0] for a in arkit.ARKIT_52)]
    return obj, anim[:, order]


def monkey_head(name: str = "Monkey", location=(0.0, 0.0, 0.0)):
    """Suzanne at 1 unit size, scale applied, active and selected."""
    bpy.ops.mesh.primitive_monkey_add(size=1.0, location=location)
    obj = bpy.context.object
    obj.name = name
    return obj


def evaluated_coords(obj, frame: int) -> np.ndarray:
    """(V,3) object-space positions of ``obj`` as evaluated on ``frame``."""
    bpy.context.scene.frame_set(frame)
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    co = np.empty(len(evaluated.data.vertices) * 3, np.float32)
    evaluated.data.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def select_only(*objs) -> None:
    for obj in bpy.context.view_layer.objects:
        obj.select_set(False)
    for obj in objs:
        obj.select_set(True)
    bpy.context.view_layer.objects.active = objs[0]


def scene_state() -> dict:
    """What importing or baking may touch, for 'nothing changed' checks."""
    scene = bpy.context.scene
    return {"objects": sorted(o.name for o in bpy.data.objects),
            "actions": sorted(a.name for a in bpy.data.actions),
            "range": (scene.frame_start, scene.frame_end),
            "source": scene.facsimile_drive.source.name if scene.facsimile_drive.source else None}


def run_then_undo(operator, label: str) -> None:
    """Run ``operator()`` (it must finish) as the UI would, then undo it once.

    Background Blender keeps no undo history unless asked; the two pushes are what the
    UI does around an operator with UNDO in its options.
    """
    window = bpy.context.window_manager.windows[0]
    with bpy.context.temp_override(window=window):
        bpy.ops.ed.undo_push(message=f"before {label}")
        assert operator() == {"FINISHED"}
        bpy.ops.ed.undo_push(message=label)
        assert bpy.ops.ed.undo() == {"FINISHED"}
