"""The fast examples run as they are (the MVSA learning curve and encoder tour are long)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name, expected", [
    ("pipeline_text_cleaning.py", "embeddings + logistic regression, held-out accuracy"),
    ("quickstart.py", "reloaded:"),
])
def test_example_runs(name, expected, tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout
