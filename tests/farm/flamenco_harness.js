// SPDX-License-Identifier: GPL-3.0-or-later
//
// Runs a Flamenco job compiler script in node against a recorder of the calls it makes
// (author.Task, author.Command, task.addCommand, task.addDependency, job.addTask), as
// Flamenco's Manager would call it, and prints what was recorded as JSON.
//     node flamenco_harness.js SCRIPT.js SETTINGS_JSON
// Output: {"job_type": JOB_TYPE, "tasks": [{name, type, commands, depends}], "error": null | "…"}

const fs = require("fs");
const vm = require("vm");

const [script, settingsJson] = process.argv.slice(2);
const calls = [];
const author = {
    Task(name, type) {
        calls.push(["author.Task", name, type]);
        const task = { name, type, commands: [], depends: [] };
        return {
            _task: task,
            addCommand(cmd) { calls.push(["task.addCommand", name]); task.commands.push(cmd); },
            addDependency(other) { calls.push(["task.addDependency", name, other._task.name]); task.depends.push(other._task.name); },
        };
    },
    Command(type, params) {
        calls.push(["author.Command", type]);
        return { type, params: JSON.parse(JSON.stringify(params)) };
    },
};
const tasks = [];
const job = {
    settings: JSON.parse(settingsJson),
    addTask(t) {
        calls.push(["job.addTask", t._task.name]);
        if (tasks.some((x) => x.name === t._task.name)) throw `duplicate task name ${t._task.name}`;
        tasks.push(t._task);
    },
};
// Flamenco runs scripts in an isolated interpreter (goja): no require, no process, no fs.
const context = vm.createContext({ author, print: () => {}, console });
vm.runInContext(fs.readFileSync(script, "utf8") + "\n;globalThis.__jt = JOB_TYPE; globalThis.__cj = compileJob;",
                context, { filename: script });
let error = null;
try {
    context.__cj(job);
} catch (err) {
    error = String(err);
}
process.stdout.write(JSON.stringify({ job_type: context.__jt, tasks, calls, error }));
