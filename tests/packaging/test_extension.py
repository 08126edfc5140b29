# SPDX-License-Identifier: GPL-3.0-or-later
"""The zip `build.py extension` makes: valid, split per platform, its imports covered by its wheels.

Installing and using it in Blender is the Blender suite's job (tests/blender).
"""

import zipfile

import pytest

from tools import extension

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def linux_zip(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    zips = extension.build(out, ["linux-x64"])  # also runs Blender's own `validate`
    assert len(zips) == 1
    return zips[0]


def test_zip_contents(linux_zip):
    with zipfile.ZipFile(linux_zip) as zf:
        names = zf.namelist()
        manifest = zf.read("blender_manifest.toml").decode()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "core/inference.py" in names
    assert any(n.startswith("models/") for n in names)
    wheels = [n for n in names if n.startswith("wheels/")]
    assert any(n.startswith("wheels/onnxruntime-") and "manylinux" in n for n in wheels)
    assert any(n.startswith("wheels/scipy-") and "manylinux" in n for n in wheels), "the core needs SciPy"
    assert not any("win_amd64" in n or "macosx" in n for n in wheels), "split per platform"
    assert not any(n.startswith("wheels/numpy") for n in wheels), "numpy must never be bundled"
    # Every wheel is one Blender 4.2-5.0's installer takes on Python 3.11: a pure one, or built
    # for CPython 3.11 (cp311-cp311, or the stable ABI from 3.11). A cp310-abi3 wheel is
    # skipped by Blender 4.3's installer.
    for n in wheels:
        assert n.endswith("-none-any.whl") or "-cp311-cp311-" in n or "-cp311-abi3-" in n, n
    assert not any("__pycache__" in n for n in names)
    for key in ('id = "facsimile"', 'type = "add-on"', 'blender_version_min = "4.2.0"',
                '"SPDX:GPL-3.0-or-later"', '"Animation"', '"Rigging"', 'platforms = ["linux-x64"]'):
        assert key in manifest


def test_manifest_names_what_ships(linux_zip):
    """Licences of every kind of file in the zip, their texts inside it, a website only if it
    is an address, and a reason for each permission."""
    import tomllib

    with zipfile.ZipFile(linux_zip) as zf:
        names = set(zf.namelist())
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert manifest["license"][0] == "SPDX:GPL-3.0-or-later"          # the code's, first
    assert {"SPDX:Apache-2.0", "SPDX:MIT"} <= set(manifest["license"])
    assert any(n.startswith("models/mediapipe/") and n.endswith(".onnx") for n in names)   # Apache-2.0
    assert "cli/demo_assets/CREDITS.md" in names                       # MIT text of the demo head
    for text in ("GPL-3.0-or-later.txt", "Apache-2.0.txt", "MIT-ICT-FaceKit.txt", "README.md"):
        assert f"licenses/{text}" in names
    holders = " ".join(manifest["copyright"])
    for holder in ("Facsimile", "Institute for Creative Technologies", "Google", "Microsoft"):
        assert holder in holders
    assert manifest["maintainer"].strip()
    assert "website" not in manifest or manifest["website"].startswith("https://")
    assert set(manifest["permissions"]) == {"files", "network"}
    for reason in manifest["permissions"].values():
        assert 0 < len(reason) <= 64 and reason[-1].isalnum()


def test_models_load_in_every_bundled_onnxruntime(tmp_path):
    """The shipped models run in the oldest ONNX Runtime a zip carries (Windows: 1.18.1).

    The linux build of that release is unpacked beside the tests and run in a separate
    interpreter, on the same inputs as the current ONNX Runtime; outputs must agree.
    """
    import json
    import subprocess
    import sys

    import numpy as np

    from blender_addon.core import features, inference

    oldest = min(version for version, _tag in extension.PLATFORMS.values())
    wheel_dir = extension.CACHE / "compat"
    wheels = sorted(wheel_dir.glob(f"onnxruntime-{oldest}-cp311-*manylinux*.whl"))
    if not wheels:
        extension._pip_download(f"onnxruntime=={oldest}", wheel_dir, "manylinux_2_27_x86_64")
        wheels = sorted(wheel_dir.glob(f"onnxruntime-{oldest}-cp311-*manylinux*.whl"))
    with zipfile.ZipFile(wheels[0]) as zf:
        zf.extractall(tmp_path / "site")
    rng = np.random.default_rng(0)
    n, k = 400, 32
    mesh = {"mass": rng.random(n) + 0.1, "evals": np.sort(rng.random(k) * 50), "evecs": rng.normal(size=(n, k)) * 0.05,
            "grad_evecs": rng.normal(size=(n, k, 3)) * 0.05}
    cases = {"rig.onnx": {"features": rng.normal(size=(n, 6)), **mesh},
             "expression_encoder.onnx": {"features": rng.normal(size=(2, n, 9)),   # 2 frames
                                         **features.encoder_feeds(mesh)},
             "localizer.onnx": {"region_weights": rng.dirichlet(np.ones(24), n)}}
    for name, feeds in cases.items():
        feeds = {key: value.astype(np.float32) for key, value in feeds.items()}
        np.savez(tmp_path / f"{name}.npz", **feeds)
        expected = inference.run(inference.MODELS_DIR / name, feeds, "CPU")
        code = (
            "import sys, json, numpy as np; sys.path.insert(0, sys.argv[1]); import onnxruntime as ort\n"
            "s = ort.InferenceSession(sys.argv[2], providers=['CPUExecutionProvider'])\n"
            "feeds = dict(np.load(sys.argv[3]))\n"
            "out = s.run(None, feeds)\n"
            "print(json.dumps({'version': ort.__version__, 'out': [o.ravel()[:2000].tolist() for o in out]}))")
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site"), str(inference.MODELS_DIR / name),
                               str(tmp_path / f"{name}.npz")], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["version"] == oldest
        for got, want in zip(result["out"], expected.values()):
            np.testing.assert_allclose(np.array(got), want.ravel()[:2000], atol=1e-4)


def test_import_check_refuses_what_neither_blender_nor_the_wheels_provide(tmp_path):
    """The build's import check reads every import, function-level ones included."""
    pkg = tmp_path / "addon"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import bpy\nfrom . import core\n")
    (pkg / "core" / "__init__.py").write_text("import numpy\n\ndef later():\n    import scipy.sparse\n")
    wheels = extension.fetch_wheels(["linux-x64"])
    extension.check_imports(pkg, {"linux-x64": wheels})          # bpy, numpy, scipy: fine
    (pkg / "core" / "train.py").write_text("def fit():\n    from torch import nn\n")
    with pytest.raises(SystemExit, match="'torch' .*core/train.py"):
        extension.check_imports(pkg, {"linux-x64": wheels})
    without_scipy = [w for w in wheels if not w.name.startswith("scipy-")]
    with pytest.raises(SystemExit, match="'scipy'"):
        extension.check_imports(pkg, {"linux-x64": without_scipy})


def test_each_platform_carries_its_gpu_provider():
    """Windows: DirectML (any DirectX 12 GPU); the NVIDIA variants: onnxruntime-gpu."""
    windows = {w.name.split("-")[0] for w in extension.fetch_wheels(["windows-x64"])}
    assert "onnxruntime_directml" in windows and "onnxruntime" not in windows
    linux_cuda = {w.name.split("-")[0] for w in extension.fetch_wheels(["linux-x64"], cuda=True)}
    assert "onnxruntime_gpu" in linux_cuda and "onnxruntime" not in linux_cuda
