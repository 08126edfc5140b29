# SPDX-License-Identifier: GPL-3.0-or-later
"""Headless command line: ``python -m blender_addon COMMAND …`` (with the bpy module).

The commands (``rig``, ``bake``, ``demo``) live in ``cli/commands.py``, which also registers
them for ``blender --command facsimile …``; see docs/cli.md.
"""

import sys

from .cli.commands import exit_process, main

if __name__ == "__main__":
    exit_process(main(sys.argv[1:]))
