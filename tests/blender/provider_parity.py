# SPDX-License-Identifier: GPL-3.0-or-later
"""Every execution provider the installed build offers against the CPU, on the shipped models.

    python provider_parity.py ZIP      (BLENDER_USER_RESOURCES: an empty folder)

Installs the zip, then for each GPU provider (CUDA, DirectML, CoreML) runs the three shipped
networks on the same random inputs as on the CPU and prints one JSON line:
``{"CUDA": {"skipped": "reason"} | {"max_abs_diff": x}, …, "label": "<rig report provider>"}``.
A provider is skipped when the build does not offer it or it does not start here.
"""

from __future__ import annotations

import importlib
import json
import sys

import bpy
import numpy as np

ADDON = "bl_ext.user_default.facsimile"


def feeds(features) -> dict:
    rng = np.random.default_rng(0)
    n, k = 400, 32
    mesh = {"mass": rng.random(n) + 0.1, "evals": np.sort(rng.random(k) * 50), "evecs": rng.normal(size=(n, k)) * 0.05,
            "grad_evecs": rng.normal(size=(n, k, 3)) * 0.05}
    return {"rig.onnx": {"features": rng.normal(size=(n, 6)), **mesh},
            "expression_encoder.onnx": {"features": rng.normal(size=(2, n, 9)), **features.encoder_feeds(mesh)},
            "localizer.onnx": {"region_weights": rng.dirichlet(np.ones(24), n)}}


def main(zip_path: str) -> int:
    assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                    enable_on_install=True) == {"FINISHED"}
    inference = importlib.import_module(ADDON + ".core.inference")
    offered = inference.available_providers()
    cases = feeds(importlib.import_module(ADDON + ".core.features"))   # 2 frames for the encoder
    cpu = {name: inference.run(name, f, "CPU") for name, f in cases.items()}
    report = {"offered": offered}
    for choice in inference.GPU_ORDER:
        provider = inference.PROVIDERS[choice]
        if provider not in offered:
            report[choice] = {"skipped": f"{inference.LABELS[provider]} not offered by this ONNX Runtime build"}
            continue
        inference.clear_cache()
        worst = 0.0
        for name, f in cases.items():
            got = inference.run(name, f, choice)
            info = inference.last_session_info()
            if info.provider != provider:
                report[choice] = {"skipped": info.reason or f"{choice} did not start"}
                break
            worst = max(worst, max(float(np.abs(got[k] - cpu[name][k]).max()) for k in got))
        else:
            report[choice] = {"max_abs_diff": worst}
    inference.clear_cache()
    bpy.ops.mesh.primitive_monkey_add(size=1.0)
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    report["label"] = inference.last_session_info().label
    print("PARITY " + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    status = main(sys.argv[1])
    if bpy.app.version < (4, 4, 0):   # 4.2/4.3's bpy exit crash: see smoke_product.py's end
        import os

        sys.stdout.flush()
        os._exit(status)
    sys.exit(status)
