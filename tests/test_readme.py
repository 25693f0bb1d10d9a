"""The README's Python snippets run as written (in a fresh folder, on the real data)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import REPO

SNIPPETS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_the_readme_has_python_snippets():
    assert SNIPPETS, "README.md has no ```python block"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs_as_written(index, fashion, tmp_path):
    env = {**os.environ, "BNNCTL_DATA": fashion}
    done = subprocess.run(
        [sys.executable, "-c", SNIPPETS[index]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, f"README snippet {index} failed:\n{done.stderr[-3000:]}"
