"""Up-front memory checks: a solve that cannot fit in memory is refused before anything is allocated.

Lanes cost memory in proportion to their number (starts, states, results);
per-point data are shared or made block by block. So the size of a solve is
known before it starts, and one clear error beats a `MemoryError` (or the
kernel's out-of-memory killer) minutes later.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import ScalejaxError

__all__ = ["available_memory", "lane_bytes", "require_memory"]

# Keep this share of the memory available for everything else the process holds.
_USABLE = 0.8


def lane_bytes(n_params: int) -> int:
    """Host bytes one lane holds during and after a solve.

    The start, the lane's state (parameters, objective, status, steps, solver
    state: about 2 p + 4 numbers for LM), the result's copy of the parameters,
    and the caller's per-lane bookkeeping (problem index, picks), in float64.
    """
    return 8 * (4 * n_params + 12)


def available_memory() -> int | None:
    """Bytes this process can still allocate: `MemAvailable`, capped by a cgroup limit; None if unknown."""
    best = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                best = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if best is None:
        try:
            best = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            return None
    # A container's own limit (cgroup v2), when it is tighter than the machine's.
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            best = min(best, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return best


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def require_memory(n_lanes: int, n_params: int, *, what: str = "the solve", unit: str = "lanes", per_unit: int = 1):
    """Raise one clear `ScalejaxError` when `n_lanes` lanes cannot fit in the memory available.

    Args:
        n_lanes: lanes the solve will hold.
        n_params: parameters per lane.
        what: what is being solved, for the message (`"a bootstrap of 100,000,000 resamples"`).
        unit: what the caller counts (`"resamples"`), for the suggested size.
        per_unit: lanes per unit (e.g. warm starts per resample).

    Example:
        >>> require_memory(10**6, 5)  # a million lanes of 5 parameters: about 0.2 GiB, fine
    """
    need = n_lanes * lane_bytes(n_params)
    have = available_memory()
    if have is None or need <= _USABLE * have:
        return
    fits = int(_USABLE * have // (lane_bytes(n_params) * max(per_unit, 1)))
    raise ScalejaxError(
        f"{what} needs about {_gib(need)} of memory for its {n_lanes:,} lanes ({lane_bytes(n_params)} bytes each), "
        f"more than the {_gib(have)} available; use at most about {fits:,} {unit} per call "
        "(several calls with different seeds can be pooled)"
    )
