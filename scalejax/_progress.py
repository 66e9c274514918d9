"""Progress bars for long batched calls: shown in a terminal or a notebook, quiet otherwise."""

from __future__ import annotations

import sys

__all__ = ["Progress"]

DELAY_S = 2.0  # calls shorter than this never show a bar


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and hasattr(shell, "kernel")


def _interactive() -> bool:
    stream = sys.stderr
    return _in_notebook() or bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """A progress bar over `total` lanes that appears only after `DELAY_S` seconds.

    Args:
        total: lanes to finish.
        desc: what is running ("bootstrap", "fit").
        enabled: True or False to force; None (default) shows it in a terminal
            or a notebook and stays quiet when stderr is not a TTY (CI, pipes, logs).
        unit: what is counted ("lane", "chain").
    """

    def __init__(self, total: int, desc: str, enabled: bool | None = None, *, unit: str = "lane"):
        self.bar = None
        if enabled is None:
            enabled = _interactive()
        if not enabled:
            return
        bar_class = None
        if _in_notebook():
            try:
                import ipywidgets  # noqa: F401
                from tqdm.notebook import tqdm as bar_class
            except ImportError:
                bar_class = None
        if bar_class is None:
            from tqdm import tqdm as bar_class
        self.bar = bar_class(total=int(total), desc=desc, unit=unit, delay=DELAY_S, leave=False, file=sys.stderr)

    def update(self, done: int) -> None:
        """Set the number of finished lanes."""
        if self.bar is not None:
            self.bar.update(max(0, int(done) - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
