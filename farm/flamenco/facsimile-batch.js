// SPDX-License-Identifier: GPL-3.0-or-later
//
// Facsimile batch as a Flamenco 3 job type: copy this file into the Manager's `scripts/`
// folder (next to flamenco-manager) and restart the Manager. A job rigs every character of a
// Facsimile manifest once (task rig-I), then bakes every (character, take) pair (task bake-I-J,
// depending on its character's rig only). Each task runs
//     <exe> <exe_args> batch MANIFEST [--out DIR] --only rig:I | bake:I,J
// i.e. the same worker, atomic outputs and done-markers as a local `batch --jobs N`: a requeued
// task redoes only what is missing or out of date.
//
// A job compiler cannot read files, so the submitter gives the counts: `batch MANIFEST --plan`
// prints them (the lengths of "characters" and "takes"). Not run on a real Flamenco Manager:
// see docs/farm.md.

const JOB_TYPE = {
    label: "Facsimile Batch",
    description: "Rig the characters of a Facsimile manifest, then bake every (character, take) pair",
    settings: [
        { key: "manifest", type: "string", subtype: "file_path", required: true,
          description: "The batch manifest (JSON), on storage every Worker sees" },
        { key: "output_dir", type: "string", subtype: "dir_path", default: "",
          description: "Output folder; empty: the manifest's own 'output'" },
        { key: "characters", type: "int32", required: true, default: 1,
          description: "Number of characters in the manifest (batch --plan)" },
        { key: "takes", type: "int32", required: true, default: 1,
          description: "Number of takes in the manifest (batch --plan)" },
        { key: "exe", type: "string", default: "{blender}",
          description: "Executable on the Workers: Blender with the Facsimile extension installed" },
        { key: "exe_args", type: "string", default: "--background --command facsimile",
          description: "Arguments before Facsimile's command ('-m blender_addon' for a Python with bpy)" },
    ],
};

function facsimileArgs(settings, only) {
    const args = String(settings.exe_args || "").split(" ").filter((a) => a.length > 0);
    args.push("batch", settings.manifest);
    if (settings.output_dir) {
        args.push("--out", settings.output_dir);
    }
    args.push("--only", only);
    return args;
}

function count(settings, key, least) {
    const n = Number(settings[key]);
    if (!Number.isInteger(n) || n < least) {
        throw `Facsimile Batch: '${key}' must be a whole number >= ${least}, got ${settings[key]}`;
    }
    return n;
}

function compileJob(job) {
    const settings = job.settings;
    if (!settings.manifest) {
        throw "Facsimile Batch: no manifest given";
    }
    const characters = count(settings, "characters", 1);
    const takes = count(settings, "takes", 0);

    const rigs = [];
    for (let i = 0; i < characters; i++) {
        const task = author.Task(`rig-${i}`, "blender");
        task.addCommand(author.Command("exec", { exe: settings.exe, args: facsimileArgs(settings, `rig:${i}`) }));
        job.addTask(task);
        rigs.push(task);
    }
    for (let i = 0; i < characters; i++) {
        for (let j = 0; j < takes; j++) {
            const task = author.Task(`bake-${i}-${j}`, "blender");
            task.addCommand(author.Command("exec", { exe: settings.exe, args: facsimileArgs(settings, `bake:${i},${j}`) }));
            task.addDependency(rigs[i]);   // its own character's rig, not every rig: bakes start early
            job.addTask(task);
        }
    }
}
