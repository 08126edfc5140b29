# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole product in one fresh, clean Blender process, as an artist meets it.

    python smoke_product.py ZIP WORKDIR [FACECAP_NPZ|-] [VIDEO|-]

Run by ``test_smoke.py`` with this Blender environment's python, without the test runner on
the path and with an empty ``BLENDER_USER_RESOURCES``: install the zip with Blender's
installer, rig Suzanne (and the facecap head when given), import a Live Link Face CSV, preview
on and off, bake, encode an animated mesh, import a short video, export glTF, uninstall.

Prints ``STEP <name>: <RESULT> <message>`` per step, RESULT being the operator's return
(FINISHED, CANCELLED), REPORT (the operator refused with a one-line report) or TRACEBACK.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import bpy
import numpy as np

ADDON = "bl_ext.user_default.facsimile"


def step(name: str, action) -> str:
    try:
        result = action()
    except RuntimeError as err:           # an operator's error report, as the UI shows it
        text = str(err).strip()
        outcome = "TRACEBACK" if "\n" in text or "Traceback" in text else "REPORT"
        print(f"STEP {name}: {outcome} {text}", flush=True)
        return outcome
    except Exception:                     # noqa: BLE001 - anything else is a bug to show
        print(f"STEP {name}: TRACEBACK", flush=True)
        traceback.print_exc()
        return "TRACEBACK"
    outcome = sorted(result)[0] if isinstance(result, set) else "FINISHED"
    print(f"STEP {name}: {outcome} {'' if isinstance(result, set) else result}".rstrip(), flush=True)
    return outcome


def select_only(obj) -> None:
    for other in bpy.context.view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj


def install(zip_path: str):
    done = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                    enable_on_install=True)
    assert ADDON in bpy.context.preferences.addons, "installed but not enabled"
    return done


def rig_suzanne():
    bpy.ops.mesh.primitive_monkey_add(size=1.0)
    obj = bpy.context.object
    obj.name = "Suzanne"
    return bpy.ops.facsimile.rig()


def rig_facecap(npz: str):
    with np.load(npz) as d:
        verts = np.asarray(d["neutral"], np.float64) * 0.01
        faces = np.asarray(d["faces"])
    verts = np.stack([verts[:, 0], -verts[:, 2], verts[:, 1]], axis=1)   # Y-up -> Blender
    mesh = bpy.data.meshes.new("Facecap")
    mesh.from_pydata(verts.tolist(), [], faces.tolist())
    obj = bpy.data.objects.new("Facecap", mesh)
    obj.location.x = 1.5
    bpy.context.scene.collection.objects.link(obj)
    select_only(obj)
    return bpy.ops.facsimile.rig()


def write_take(path: Path) -> Path:
    import importlib

    takes = importlib.import_module(ADDON + ".core.takes")
    arkit = importlib.import_module(ADDON + ".core.arkit")
    t = np.arange(48) / 24.0
    weights = np.zeros((48, 52), np.float32)
    weights[:, arkit.ARKIT_52.index("jawOpen")] = 0.5 - 0.5 * np.cos(t * 2 * np.pi / 2.0)
    weights[:, arkit.ARKIT_52.index("eyeBlinkLeft")] = (np.sin(t * 5) > 0.8).astype(np.float32)
    takes.write_llf_csv(path, takes.Take(times=t, names=list(arkit.ARKIT_52), weights=weights, fps=24.0))
    return path


def animated_performer():
    """A second rigged Suzanne whose jawOpen key is animated: a mesh performance to encode."""
    bpy.ops.mesh.primitive_monkey_add(size=1.0, location=(-1.5, 0, 0))
    obj = bpy.context.object
    obj.name = "Performer"
    bpy.ops.facsimile.rig()
    key = obj.data.shape_keys.key_blocks["jawOpen"]
    for frame, value in ((1, 0.0), (6, 1.0), (12, 0.0)):
        key.value = value
        key.keyframe_insert("value", frame=frame)
    select_only(obj)
    return bpy.ops.facsimile.encode_mesh(frame_start=1, frame_end=12)


def grey_video(path: Path) -> Path:
    """A short clip with no face in it, made with the PyAV the extension ships."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 128, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def uninstall():
    repos = bpy.context.preferences.extensions.repos
    index = next(i for i, repo in enumerate(repos) if repo.module == "user_default")
    done = bpy.ops.extensions.package_uninstall(repo_index=index, pkg_id="facsimile")
    assert ADDON not in bpy.context.preferences.addons and not hasattr(bpy.types, "FACSIMILE_PT_rig")
    return done


def main(argv: list[str]) -> int:
    zip_path, work = argv[0], Path(argv[1])
    facecap = argv[2] if len(argv) > 2 and argv[2] != "-" else None
    video = argv[3] if len(argv) > 3 and argv[3] != "-" else None
    work.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    results = [step("install", lambda: install(zip_path)),
               step("rig Suzanne", rig_suzanne)]
    suzanne = bpy.data.objects["Suzanne"]
    if facecap:
        results.append(step("rig facecap", lambda: rig_facecap(facecap)))
    results.append(step("import take", lambda: bpy.ops.facsimile.import_take(
        filepath=str(write_take(work / "take.csv")), start_frame=1)))
    select_only(suzanne)
    results.append(step("preview on", lambda: bpy.ops.facsimile.preview(enable=True)))
    for frame in (1, 12, 24):
        scene.frame_set(frame)
    results.append(step("preview off", lambda: bpy.ops.facsimile.preview(enable=False)))
    select_only(suzanne)
    results.append(step("bake", bpy.ops.facsimile.bake))
    results.append(step("encode mesh", animated_performer))
    clip = video or str(grey_video(work / "grey.mp4"))
    results.append(step("import video", lambda: bpy.ops.facsimile.import_video(filepath=clip)))
    results.append(step("export glTF", lambda: bpy.ops.export_scene.gltf(
        filepath=str(work / "smoke.glb"), export_format="GLB")))
    results.append(step("uninstall", uninstall))
    return 1 if "TRACEBACK" in results else 0


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # The bpy module of 4.2 and 4.3 crashes at process exit (SIGSEGV in bpy_class_free, after
    # Python is finalized) once an add-on whose properties have Python callbacks (update=,
    # poll=) was unregistered earlier in the process: reproduced with a six-line add-on, gone
    # in 4.4. 4.2's also does after a glTF export. The steps above are all done and reported;
    # leave without the module's exit handlers there.
    if bpy.app.version < (4, 4, 0):
        import os

        os._exit(status)
    sys.exit(status)
