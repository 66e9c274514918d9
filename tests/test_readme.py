"""Every Python block of the README runs, top to bottom, in one fresh namespace (as a reader would paste them).

Blocks may use names from earlier blocks and the embedded or generated
example data, never names the README does not define.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import pytest

markdown_it = pytest.importorskip("markdown_it")
matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"
# A block that starts a multi-host job (the SLURM example) runs on a cluster, not in a test process.
CLUSTER_ONLY = "jax.distributed.initialize()"


def _blocks() -> list[tuple[int, str]]:
    tokens = markdown_it.MarkdownIt().parse(README.read_text(encoding="utf-8"))
    return [
        (token.map[0] + 1, token.content)
        for token in tokens
        if token.type == "fence"
        and token.info.strip().split(" ")[0] in ("python", "py")
        and CLUSTER_ONLY not in token.content
    ]


def test_the_readme_has_python_blocks():
    assert len(_blocks()) >= 8


@pytest.mark.slow
def test_every_python_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that write reports or figures write them here
    namespace: dict = {"__name__": "readme"}
    for line, source in _blocks():
        code = compile(source, f"README.md, block at line {line}", "exec")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the README's fits may warn (a high Pareto k...); running is what counts
            exec(code, namespace)
    import matplotlib.pyplot as plt

    plt.close("all")
