"""Per-lane status codes and state shared by every solver (arrays, never exceptions)."""

from typing import Any, NamedTuple

RUNNING = -1
CONVERGED = 0
MAX_STEPS = 1
STALLED = 2
NONFINITE = 3

STATUS_NAMES = {CONVERGED: "converged", MAX_STEPS: "max_steps", STALLED: "stalled", NONFINITE: "nonfinite"}


class LaneState(NamedTuple):
    """One lane's iterate: parameters, objective, status code, steps taken, solver-specific state."""

    u: Any
    f: Any
    status: Any
    step: Any
    inner: Any
