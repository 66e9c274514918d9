"""The registry of laws by name: what `scalejax.laws.get` and the command line look names up in.

Apart from the law modules, so that machinery built on laws (`joint`) can resolve a name
without importing the whole library of laws, some of which are built with that machinery.
"""

from __future__ import annotations

import difflib

from .._errors import LawError
from .._law import Law

_REGISTRY: dict[str, Law] = {}


def register(law: Law, *, replace: bool = False) -> Law:
    """Make `law` available by name to `get` and the command line."""
    if law.name in _REGISTRY and not replace:
        raise LawError(f"a law named {law.name!r} is already registered; pass replace=True to override it")
    _REGISTRY[law.name] = law
    return law


def available() -> list[str]:
    """Names of the registered laws, sorted."""
    return sorted(_REGISTRY)


def get(name: str | Law) -> Law:
    """The registered law called `name` (a `Law` passes through unchanged)."""
    if isinstance(name, Law):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name).lower(), _REGISTRY, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}" if close else ""
    raise LawError(f"unknown law {name!r}{hint}; available: {', '.join(available())}")
