"""MkDocs hook: the site's front page is the README (one guide, kept in one place)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# A Markdown link to a relative path: [text](path) with no scheme and no fragment-only target.
LINK = re.compile(r"\[([^\]]+)\]\((?![a-z][a-z0-9+.-]*:|#)([^)\s]+)\)")


def on_page_read_source(page, config):
    """The README's text stands in for `docs/index.md`.

    Its links to the repository's own files (benchmarks, scripts) are for a
    reader of the repository; the site does not carry those files, so there
    each such link becomes its text followed by the path. A link to a file
    that does not exist in the repository stays a link, and the strict build
    reports it.
    """
    if page.file.src_uri != "index.md":
        return None

    def unlink(match: re.Match) -> str:
        text, target = match.groups()
        path = target.split("#")[0]
        if (ROOT / path).is_file() and not path.startswith("docs/"):
            return text if f"`{path}`" in text or path in text else f"{text} (`{path}`)"
        return match.group(0)

    return LINK.sub(unlink, README.read_text(encoding="utf-8"))
