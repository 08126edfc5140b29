# SPDX-License-Identifier: GPL-3.0-or-later
"""The batch manifest, its plan and the resume logic (outputs faked on disk; no Blender)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from blender_addon.core import batch_plan, batch_state
from blender_addon.core.batch_plan import ManifestError, load_manifest, parse_manifest, plan, select


def _manifest(tmp_path, **extra):
    data = {"output": "out", "characters": ["heads/alice.obj", {"name": "bob", "file": "bob.blend",
                                                                 "objects": ["BobHead"], "naming": "ICT53"}],
            "takes": [{"file": "takes/shot1.csv", "glb": True}, {"name": "talk", "file": "talk.mp4",
                                                                  "frame_step": 2, "smoothing": 1.5}]}
    data.update(extra)
    return parse_manifest(data, tmp_path)


def test_manifest_resolves_paths_names_and_options(tmp_path):
    m = _manifest(tmp_path, defaults={"smoothing": 0.5, "map": "soft.json"})
    assert m.output == (tmp_path / "out").resolve()
    alice, bob = m.characters
    assert (alice.name, alice.file, alice.objects, alice.naming) == \
        ("alice", (tmp_path / "heads/alice.obj").resolve(), (), "ARKIT")
    assert (bob.name, bob.objects, bob.naming) == ("bob", ("BobHead",), "ICT53")
    shot, talk = m.takes
    assert shot.options["smoothing"] == 0.5 and talk.options["smoothing"] == 1.5   # take beats defaults
    assert shot.options["map"] == (tmp_path / "soft.json").resolve()
    assert (shot.options["glb"], talk.options["glb"], talk.options["frame_step"]) == (True, False, 2)


def test_map_by_preset_name(tmp_path):
    """A map without .json or a folder is a preset's name, passed to --map as it is and no
    input file of the task."""
    m = _manifest(tmp_path, defaults={"map": "VRoid"})
    assert m.takes[0].options["map"] == "VRoid"
    task = next(t for t in plan(m) if t.kind == "bake")
    assert task.args()[task.args().index("--map") + 1] == "VRoid"
    assert all(Path(p).name != "VRoid" for p in task.inputs)


def test_output_override_and_file_loading(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"characters": ["a.obj"], "takes": ["t.csv"]}))
    with pytest.raises(ManifestError, match="no 'output'"):
        load_manifest(path)
    assert load_manifest(path, output=tmp_path / "x").output == (tmp_path / "x").resolve()
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(path)
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.json")


@pytest.mark.parametrize("change, message", [
    ({"characters": []}, "non-empty 'characters'"),
    ({"characters": ["head.png"]}, "character 0 .*not a supported file type"),
    ({"takes": ["shot.doc"]}, "take 0 .*not a supported file type"),
    ({"takes": [{"file": "a.csv", "frame_step": 0}]}, "'frame_step' must be at least 1"),
    ({"takes": [{"file": "a.csv", "smoothing": "lots"}]}, "'smoothing' must be a number"),
    ({"takes": [{"file": "a.csv", "glb": "yes"}]}, "'glb' must be true or false"),
    ({"takes": [{"file": "a.csv", "fps": 30}]}, "unknown key"),
    ({"takes": [{"file": "a.csv", "pattern": "{take}"}]}, "both {character} and {take}"),
    ({"takes": [{"file": "a.csv", "pattern": "../{character}/{take}"}]}, "inside the output folder"),
    ({"takes": [{"file": "a.csv", "pattern": "{character}/{frame}"}]}, "may only use"),
    ({"characters": ["a/head.obj", "b/head.obj"]}, "two characters are named 'head'"),
    ({"characters": [{"file": "a.obj", "naming": "FACS"}]}, "'naming' must be one of"),
    ({"characters": [{"file": "a.obj", "objects": "Head"}]}, "'objects' must be a list"),
    ({"defaults": {"colour": 1}}, "'defaults' may only set"),
    ({"version": 2}, "version 2 is not supported"),
    ({"extra": 1}, "unknown manifest key"),
])
def test_manifest_errors_name_the_entry(tmp_path, change, message):
    with pytest.raises(ManifestError, match=message):
        _manifest(tmp_path, **change)


def test_plan_rigs_once_and_bakes_every_pair(tmp_path):
    m = _manifest(tmp_path)
    tasks = plan(m)
    assert [t.id for t in tasks] == ["rig:0", "rig:1", "bake:0,0", "bake:0,1", "bake:1,0", "bake:1,1"]
    rig_bob = tasks[1]
    assert rig_bob.outputs == [m.output / "rigs" / "bob.blend"]
    assert rig_bob.args() == ["rig", str(m.characters[1].file), "--out", str(m.output / "rigs" / "bob.blend"),
                              "--naming", "ICT53", "--object", "BobHead"]
    bake = tasks[4]   # bob × shot1, with glTF
    assert bake.depends == "rig:1" and bake.inputs[0] == rig_bob.outputs[0]
    assert bake.outputs == [m.output / "bob" / "shot1.blend", m.output / "bob" / "shot1.glb"]
    temp = {p: p.with_name("x" + p.suffix) for p in bake.outputs}
    args = bake.args(temp)
    assert args[args.index("--out") + 1] == str(m.output / "bob" / "x.blend")
    assert args[args.index("--glb") + 1] == str(m.output / "bob" / "x.glb")
    talk = tasks[5].args()
    assert talk[talk.index("--frame-step") + 1] == "2" and "--glb" not in talk
    assert len({t.key for t in tasks}) == len(tasks)


def test_pattern_collisions_are_refused(tmp_path):
    m = _manifest(tmp_path, takes=[{"file": "a.csv", "name": "a", "pattern": "{character}/x_{take}"},
                                   {"file": "b.csv", "name": "x_a"}])
    with pytest.raises(ManifestError, match="write the same file x_a.blend"):
        plan(m)


def test_select_by_id_and_wildcard(tmp_path):
    tasks = plan(_manifest(tmp_path))
    assert [t.id for t in select(tasks, ["bake:1,0"])] == ["bake:1,0"]
    assert [t.id for t in select(tasks, ["rig:*"])] == ["rig:0", "rig:1"]
    assert [t.id for t in select(tasks, ["bake:0,*", "rig:0"])] == ["rig:0", "bake:0,0", "bake:0,1"]
    assert len(select(tasks, None)) == 6
    with pytest.raises(ManifestError, match="no such task"):
        select(tasks, ["bake:5,0"])


def test_farm_ranges(tmp_path):
    r = batch_plan.farm_ranges(_manifest(tmp_path))
    assert (r["CharacterRange"], r["TakeRange"], r["characters"]) == ("0-1", "0-1", ["alice", "bob"])


# ------------------------------------------------------------------ resume


def _files(tmp_path):
    """A manifest whose inputs exist, and its bake task alice × shot1."""
    for rel in ("heads/alice.obj", "bob.blend", "takes/shot1.csv", "talk.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    m = _manifest(tmp_path)
    return m, plan(m)


def _fake_worker(task, token="1"):
    """What a successful worker leaves: every output under its temporary name."""
    temps = batch_state.temp_names(task, token)
    for final, temp in temps.items():
        temp.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(b"output of " + final.name.encode())
    return temps


def test_done_task_is_up_to_date_until_an_input_or_output_changes(tmp_path):
    m, tasks = _files(tmp_path)
    rig, bake = tasks[0], tasks[2]
    assert batch_state.up_to_date(m.output, rig) == (False, "not done yet")
    batch_state.commit(m.output, rig, _fake_worker(rig), batch_state.fingerprint(rig.inputs), 1.0)
    assert batch_state.up_to_date(m.output, rig) == (True, "up to date")
    assert not list(rig.outputs[0].parent.glob("*.partial-*"))   # renamed into place

    batch_state.commit(m.output, bake, _fake_worker(bake), batch_state.fingerprint(bake.inputs), 1.0)
    assert batch_state.up_to_date(m.output, bake)[0]

    glb = bake.outputs[1]
    glb.write_bytes(b"truncated")                        # an output replaced or damaged
    assert batch_state.up_to_date(m.output, bake) == (False, "output changed: shot1.glb")
    batch_state.commit(m.output, bake, _fake_worker(bake), batch_state.fingerprint(bake.inputs), 1.0)
    glb.unlink()
    assert batch_state.up_to_date(m.output, bake) == (False, "output missing: shot1.glb")
    batch_state.commit(m.output, bake, _fake_worker(bake), batch_state.fingerprint(bake.inputs), 1.0)

    take = m.takes[0].file                               # the take edited: only its bakes redo
    st = os.stat(take)
    os.utime(take, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert batch_state.up_to_date(m.output, bake) == (False, "input changed: shot1.csv")
    assert batch_state.up_to_date(m.output, rig)[0]

    batch_state.commit(m.output, bake, _fake_worker(bake), batch_state.fingerprint(bake.inputs), 1.0)
    batch_state.commit(m.output, rig, _fake_worker(rig), batch_state.fingerprint(rig.inputs), 1.0)
    assert batch_state.up_to_date(m.output, bake) == (False, "input changed: alice.blend")   # re-rigged


def test_changed_options_redo_the_task(tmp_path):
    m, tasks = _files(tmp_path)
    rig = tasks[0]
    batch_state.commit(m.output, rig, _fake_worker(rig), batch_state.fingerprint(rig.inputs), 1.0)
    m2 = parse_manifest({"output": "out", "characters": [{"file": "heads/alice.obj", "naming": "ARKIT_LR"}],
                         "takes": []}, tmp_path)
    assert batch_state.up_to_date(m2.output, plan(m2)[0]) == (False, "options changed")


def test_crashed_worker_leaves_no_marker_and_its_temporaries_go(tmp_path):
    m, tasks = _files(tmp_path)
    bake = tasks[2]
    temps = _fake_worker(bake, token="999")              # the worker died before the rename
    assert batch_state.up_to_date(m.output, bake) == (False, "not done yet")
    assert sorted(batch_state.remove_stale(bake)) == sorted(temps.values())
    assert not any(p.exists() for p in temps.values())
    # a worker that exits 0 without writing is refused, not marked done
    with pytest.raises(OSError, match="did not write"):
        batch_state.commit(m.output, bake, batch_state.temp_names(bake, "2"), {}, 1.0)
    assert not batch_state.marker_path(m.output, bake).exists()


def test_marker_is_forgotten_before_a_rerun(tmp_path):
    m, tasks = _files(tmp_path)
    rig = tasks[0]
    batch_state.commit(m.output, rig, _fake_worker(rig), batch_state.fingerprint(rig.inputs), 1.0)
    batch_state.forget(m.output, rig)
    assert batch_state.up_to_date(m.output, rig) == (False, "not done yet")
    batch_state.marker_path(m.output, rig).write_text("{broken")
    assert batch_state.up_to_date(m.output, rig) == (False, "unreadable marker")


def test_last_line_of_a_log(tmp_path):
    log = tmp_path / "err.txt"
    log.write_text("Traceback...\nfacsimile: error: take x.csv: bad\n\n")
    assert batch_state.last_line(log) == "facsimile: error: take x.csv: bad"
    assert batch_state.last_line(tmp_path / "none.txt", "fallback") == "fallback"
