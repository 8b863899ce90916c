"""scripts/bootstrap.sh says "Python >= 3.11 needed" before anything else fails on an older one."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Answers as Debian 12's predecessor's python3 would: version 3.10, so the version check fails.
OLD_PYTHON = """#!/bin/sh
case "$1" in
  -V) echo "Python 3.10.12" ;;
  -c) exit 1 ;;
  *) echo "pip: no matching distribution for a test-only package" >&2; exit 1 ;;
esac
"""


def test_an_old_python_is_named_with_the_version_needed(tmp_path):
    project = tmp_path / "volspike-oi"
    (project / "scripts").mkdir(parents=True)
    for name in ("bootstrap.sh", "lib.sh"):
        shutil.copy(ROOT / "scripts" / name, project / "scripts" / name)
    old_python = tmp_path / "python3.10"
    old_python.write_text(OLD_PYTHON)
    old_python.chmod(0o755)
    result = subprocess.run(
        ["bash", "scripts/bootstrap.sh"],
        cwd=project,
        env={**os.environ, "PYTHON": str(old_python)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"Python >= 3.11 needed; {old_python} is Python 3.10.12" in result.stderr
    assert "PYTHON=python3.12 bash" in result.stderr
    assert not (project / ".venv").exists()
