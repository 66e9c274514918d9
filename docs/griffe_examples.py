"""Griffe extension for the API site: the project's `Example:` sections are read as Google-style `Examples:`.

The docstrings say `Example:` (one example each, as STYLE.md asks); Griffe
knows `Examples:` as the section whose `>>>` lines are code, and would
otherwise render them as an admonition of quoted text.
"""

from __future__ import annotations

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", flags=re.MULTILINE)


class ExamplesSection(griffe.Extension):
    def on_instance(self, *, node, obj, agent, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
