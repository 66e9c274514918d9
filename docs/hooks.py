"""MkDocs hook: the site's front page is the README (one guide, kept in one place)."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def on_page_read_source(page, config):
    """The README's text stands in for `docs/index.md`."""
    if page.file.src_uri == "index.md":
        return README.read_text(encoding="utf-8")
    return None
