"""Print the project's declared lower bounds as exact pins (`name==version`), one a line, for `pip -c`.

CI installs these in a second environment and runs part of the suite there,
so a lower bound in pyproject.toml is a version the code is known to run with.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def pins() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out = []
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][^,;\s]*)\s*", requirement)
        if match is None:
            sys.exit(f"dependency {requirement!r} has no plain lower bound (name>=version)")
        name = match.group(1).split("[")[0]
        out.append(f"{name}=={match.group(2)}")
    return out


if __name__ == "__main__":
    print("\n".join(pins()))
