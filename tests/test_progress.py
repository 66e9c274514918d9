"""Progress bars: quiet when stderr is not a terminal, shown when asked."""

from __future__ import annotations

import io

import scalejax._progress as progress


def test_quiet_when_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with progress.Progress(10, "lanes") as bar:
        assert bar.bar is None
        bar.update(5)


def test_shown_when_enabled_and_counts_lanes(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    with progress.Progress(10, "bootstrap lanes", enabled=True) as bar:
        bar.update(4)
        bar.update(10)
        assert bar.bar.n == 10
    assert "bootstrap lanes" in stream.getvalue()
