"""The code stays ruff-clean, including rule A005: no module may shadow the standard library (the
reason platform/ is a plain folder and not a package)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_no_module_shadows_the_standard_library():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "A005",
                           "--preview", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
