# SPDX-License-Identifier: GPL-3.0-or-later
"""Every Python file of the repository carries the project's licence identifier."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINE = "# SPDX-License-Identifier: GPL-3.0-or-later"


def _python_files() -> list:
    """Tracked and untracked-but-not-ignored .py files (what a commit would hold)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip():
        return [ROOT / name for name in out.stdout.split() if (ROOT / name).is_file()]
    # Not a git checkout (an unpacked archive): every .py outside virtual environments.
    return [p for p in ROOT.rglob("*.py") if not any(part.startswith(".") or part == "venv"
                                                      for part in p.relative_to(ROOT).parts)]


def test_every_python_file_has_the_spdx_line():
    missing = []
    for path in _python_files():
        head = path.read_text(encoding="utf-8").splitlines()[:2]   # line 2 after a shebang
        if LINE not in head:
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"add '{LINE}' as the first line of:\n" + "\n".join(sorted(missing))
