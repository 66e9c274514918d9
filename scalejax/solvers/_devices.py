"""Where lanes run: the devices of every process, lanes dealt over them, and how many each steps at once.

The sizes depend on the backend: a CPU core runs a few hundred small lanes
best (the working set stays in cache), a GPU needs tens of thousands in
flight to fill it. They never depend on how many devices there are, so a lane
meets the same compiled shapes, and gives bitwise the same result, on 1 or K
devices and on 1 or K hosts.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["Devices", "lane_sizes"]

# Points (lanes x padded points) stepped together on one device, and the most lanes, by backend.
# CPU: 32k points keep one step's working set in cache (measured: 64 slots of 240 points 3.9 s,
# 128 slots 3.2 s for the Chinchilla grid); accelerators need far more work per kernel launch.
_SLOT_POINTS = {"cpu": 1 << 15}
_SLOT_POINTS_ACCELERATOR = 1 << 22
_MAX_SLOTS = {"cpu": 256}
_MAX_SLOTS_ACCELERATOR = 1 << 16
# Points' worth of lanes queued on one device per call: bounds the per-lane copies of
# per-problem data (weights, targets, inputs) held at once. The queue always has this length
# (it does not depend on the number of lanes), so a new number of resamples compiles nothing.
_QUEUE_POINTS = {"cpu": 1 << 22}
_QUEUE_POINTS_ACCELERATOR = 1 << 26


def lane_sizes(n_lanes: int, n_points: int, lanes_per_call: int | None, backend: str | None = None) -> tuple[int, int]:
    """Slots per device (lanes stepped together) and queue length per device, for this backend.

    Args:
        n_lanes: lanes to solve.
        n_points: points per lane, padded.
        lanes_per_call: slots per device asked for, or None for the backend's default
            (about 32k points' worth on a CPU, between 1 and 256 lanes; 4M points' worth
            on an accelerator, up to 65,536 lanes); fewer lanes than that take a bucket
            size just above their number.
        backend: `jax.default_backend()` when None.

    Returns:
        `(slots, queue)`: the queue is a power of two >= `slots` that depends only on the
        points, the backend and the slots, so every solve of at least `lanes_per_call`
        lanes (a bootstrap of any larger number of resamples) reuses one compiled solver.
    """
    from . import bucket_size

    backend = backend or jax.default_backend()
    if lanes_per_call is None:
        points = _SLOT_POINTS.get(backend, _SLOT_POINTS_ACCELERATOR)
        lanes_per_call = min(_MAX_SLOTS.get(backend, _MAX_SLOTS_ACCELERATOR), max(1, points // n_points))
    slots = bucket_size(min(n_lanes, max(1, int(lanes_per_call))))
    cap = _pow2_floor(max(1, _QUEUE_POINTS.get(backend, _QUEUE_POINTS_ACCELERATOR) // n_points))
    return slots, max(_pow2_ceil(slots), cap)


def _pow2_floor(k: int) -> int:
    return 1 << max(int(k).bit_length() - 1, 0)


def _pow2_ceil(k: int) -> int:
    return 1 << max(int(k - 1).bit_length(), 0)


class Devices:
    """The devices lanes run on: every device of every process, lanes split evenly with `jax.sharding`.

    With one device this is plain `jax.device_put`. With several (GPUs, or CPU
    cores exposed as devices with `XLA_FLAGS=--xla_force_host_platform_device_count=K`,
    or all hosts' devices after `jax.distributed.initialize()`), the lane axis
    is sharded over a 1-D mesh, each device solves its own queue of lanes and
    shared data are replicated; every process builds the same global arrays
    from the same seed and receives every lane's result, so the result does
    not depend on how many devices or hosts there are.
    """

    def __init__(self):
        devices = jax.devices()
        self.n_devices = len(devices)
        self.mesh = Mesh(np.array(devices), ("lanes",)) if self.n_devices > 1 else None

    def put(self, a, sharded: bool = True):
        """A host array on the devices: split along its first axis, or replicated (`sharded=False`)."""
        a = np.asarray(a)
        if self.mesh is None:
            return jax.device_put(a)
        spec = PartitionSpec("lanes", *([None] * (a.ndim - 1))) if sharded else PartitionSpec()
        return jax.make_array_from_callback(a.shape, NamedSharding(self.mesh, spec), lambda index: a[index])

    def get(self, tree):
        """Device arrays (possibly spread over hosts) -> NumPy arrays, complete in every process."""
        if jax.process_count() > 1:
            tree = multihost_utils.process_allgather(tree, tiled=True)
        return jax.tree.map(np.asarray, tree)
