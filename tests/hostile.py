"""A session-wide tally of the hostile inputs the reliability tests generated and checked.

A test calls `handled(category)` only after its assertions on one input
passed, so the tally counts inputs that were tried *and* handled as required
(one clear error, exit status 2, no partial file, or a warning). `conftest.py`
prints it in pytest's terminal summary.
"""

from __future__ import annotations

import collections

TALLY: collections.Counter[str] = collections.Counter()


def handled(category: str, n: int = 1) -> None:
    """Count `n` hostile inputs of `category` as tried and handled."""
    TALLY[category] += n
