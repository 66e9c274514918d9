"""The JSON Schema of what `scalejax fit --json` writes, shipped with the package.

`fit_schema()` returns it as a dict, ready for any JSON Schema validator
(`jsonschema.validate(payload, fit_schema())`). Its `schema_version` rises
when a key is removed or changes meaning; keys may be added under the same
version, so the schema allows keys it does not list.
"""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["SCHEMA_VERSION", "fit_schema"]

SCHEMA_VERSION = 1


def fit_schema() -> dict:
    """The JSON Schema (draft 2020-12) of `scalejax fit --json` output.

    Returns:
        The schema as a dict.

    Example:
        >>> import contextlib, io, jsonschema
        >>> import scalejax as sj
        >>> from scalejax.cli import main
        >>> sj.datasets.load_example("chinchilla").to_csv("runs.csv", index=False)
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     code = main(["fit", "runs.csv", "--law", "chinchilla", "--x", "N=N", "--x", "D=D", "--y", "loss", "--json", "fit.json"])
        >>> code
        0
        >>> jsonschema.validate(json.load(open("fit.json")), fit_schema())
    """
    return json.loads(resources.files(__name__).joinpath("fit.schema.json").read_text(encoding="utf-8"))
