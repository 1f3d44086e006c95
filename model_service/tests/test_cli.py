"""Start-up errors are clear and exit with status 2."""

from __future__ import annotations

import subprocess
import sys

from model_service.tests.helpers import ROOT, free_port


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "model_service", "--port", str(free_port()), *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_bad_start_options_are_clear_errors(tmp_path):
    # Both start at once (each pays the torch import); neither may get as far as serving.
    eight_bit = _start("--load-in-8bit")
    missing = _start("--model", str(tmp_path / "nope"))
    _, err = eight_bit.communicate(timeout=180)
    assert eight_bit.returncode == 2
    assert "--load-in-8bit needs a CUDA GPU" in err
    _, err = missing.communicate(timeout=180)
    assert missing.returncode == 2
    assert "no such file or folder" in err
