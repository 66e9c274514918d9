"""Batched solvers: every lane (start, resample, group) of a problem in one compiled call.

`solve_lanes` pads lanes and points to a few bucket sizes so that one
compiled function serves many problem sizes, chunks lanes only to bound
memory, and returns per-lane status arrays instead of raising.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._errors import ScalejaxError
from .._progress import Progress
from ..objectives import Loss
from ._lbfgs import lbfgs_advance, lbfgs_init
from ._lm import lm_advance, lm_init
from ._status import CONVERGED, MAX_STEPS, NONFINITE, RUNNING, STALLED, STATUS_NAMES, LaneState

__all__ = [
    "CONVERGED",
    "MAX_STEPS",
    "METHODS",
    "NONFINITE",
    "STALLED",
    "STATUS_NAMES",
    "LaneState",
    "Solution",
    "SolverConfig",
    "bucket_size",
    "solve_lanes",
]

METHODS = ("lm", "lbfgs")
MAX_LANES_PER_CALL = 1024


class SolverConfig(NamedTuple):
    """Stopping rules shared by the solvers.

    A lane converges when an accepted step changes the objective by at most
    `ftol * (|f| + fscale)`, moves the parameters by at most `xtol` relative,
    or the largest gradient entry is at most `gtol * (|f| + fscale)`.

    `curvature` picks the Huber step of the LM solver: `"both"` tries the IRLS
    majoriser and the exact Gauss-Newton curvature and keeps the better step
    (robust from far starts: the grid); `"exact"` takes only the exact one,
    damped along the majoriser's diagonal (one objective evaluation a step
    instead of two: for lanes warm-started near an optimum, as in the bootstrap).
    """

    max_steps: int = 500
    ftol: float = 1e-12
    xtol: float = 1e-12
    gtol: float = 1e-10
    fscale: float = 1e-12
    curvature: str = "both"


class Solution(NamedTuple):
    """Per-lane results, as NumPy arrays with a leading lane axis."""

    u: np.ndarray
    objective: np.ndarray
    status: np.ndarray
    steps: np.ndarray

    @property
    def converged(self) -> np.ndarray:
        return self.status == CONVERGED


def bucket_size(n: int) -> int:
    """The smallest of 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, ... (2^k times 1, 1.25, 1.5, 1.75) >= n."""
    if n <= 8:
        return max(n, 1)
    k = int(np.floor(np.log2(n)))
    for m in (1.0, 1.25, 1.5, 1.75, 2.0):
        size = round(m * 2**k)
        if size >= n:
            return size
    raise AssertionError("unreachable")


_SOLVERS = {"lm": (lm_init, lm_advance), "lbfgs": (lbfgs_init, lbfgs_advance)}


@functools.partial(jax.jit, static_argnames=("law", "loss", "method", "config"))
def _init_compiled(law, loss, method, config, u0, weights, x, target):
    init = functools.partial(_SOLVERS[method][0], law, loss, config)
    return jax.vmap(init, in_axes=(0, 0, _x_axis(x), 0 if target.ndim == 2 else None))(u0, weights, x, target)


@functools.partial(jax.jit, static_argnames=("law", "loss", "method", "config"))
def _advance_compiled(law, loss, method, config, state, weights, x, target, step_limit):
    advance = functools.partial(_SOLVERS[method][1], law, loss, config)
    target_axis = 0 if target.ndim == 2 else None
    return jax.vmap(advance, in_axes=(0, 0, _x_axis(x), target_axis, None))(state, weights, x, target, step_limit)


def _x_axis(x):
    """0 when the inputs are per lane (`(L, n)` arrays), None when all lanes share them."""
    return 0 if any(v.ndim == 2 for v in x.values()) else None


def _take(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


def _put(tree, idx, values):
    def put(a, v):
        a[idx] = v[: len(idx)]
        return a

    return jax.tree.map(put, tree, values)


class _Lanes:
    """Where lanes run: the local devices, lanes split evenly across them with `jax.sharding`.

    With one device this is plain `jnp.asarray`. With several (GPUs, or CPU
    cores exposed as devices with `XLA_FLAGS=--xla_force_host_platform_device_count=K`,
    or all hosts' devices after `jax.distributed.initialize()`), each chunk's
    lane axis is sharded over a 1-D mesh and the data are replicated; every
    process builds the same global arrays from the same seed, so the result
    does not depend on how many devices or hosts there are.
    """

    def __init__(self):
        devices = jax.devices()
        self.n_devices = len(devices)
        self.mesh = Mesh(np.array(devices), ("lanes",)) if self.n_devices > 1 else None

    def put(self, a, sharded: bool = True):
        a = np.asarray(a)
        if self.mesh is None:
            return jnp.asarray(a)
        spec = PartitionSpec("lanes", *([None] * (a.ndim - 1))) if sharded else PartitionSpec()
        return jax.make_array_from_callback(a.shape, NamedSharding(self.mesh, spec), lambda index: a[index])

    def get(self, tree):
        if jax.process_count() > 1:
            tree = multihost_utils.process_allgather(tree, tiled=True)
        return jax.tree.map(np.asarray, tree)


def solve_lanes(
    law,
    loss: Loss,
    u0: np.ndarray,
    weights: np.ndarray,
    x: dict[str, np.ndarray],
    target: np.ndarray,
    *,
    method: str = "lm",
    config: SolverConfig | None = None,
    lanes_per_call: int | None = None,
    steps_per_round: int = 16,
    progress: bool | None = None,
    desc: str = "lanes",
) -> Solution:
    """Solve `L` independent lanes: lane `i` starts at `u0[i]` with point weights `weights[i]`.

    Lanes run in fixed-size chunks (one compiled shape, small enough to stay
    in cache) for `steps_per_round` steps at a time; after each round the
    lanes still running are packed together, so a few slow lanes do not make
    every lane pay for their steps. Each chunk is split across all devices.
    A lane's result is bitwise the same on any number of devices; with another
    `lanes_per_call` it agrees to rounding (sums over points vectorise
    differently), far inside the stopping tolerances.

    Args:
        law: the `Law`.
        loss: the `Loss`.
        u0: `(L, n_params)` unconstrained starts.
        weights: `(L, n)` or `(n,)` non-negative point weights (0 drops a point).
        x: the law's inputs, each `(n,)` (shared by all lanes) or `(L, n)` (one row per lane,
            e.g. many data sets padded to one length with zero weights).
        target: `(n,)` log y (log-scale losses) or y, or `(L, n)` for a target per lane
            (residual resampling).
        method: `"lm"` (Levenberg-Marquardt with IRLS) or `"lbfgs"` (optax).
        config: stopping rules.
        lanes_per_call: lanes per compiled call and device; by default about 64k points' worth,
            at most `MAX_LANES_PER_CALL`.
        steps_per_round: steps between two compactions of the running lanes.
        progress: show a progress bar (None: in a terminal or notebook, after 2 s).
        desc: the progress bar's label.

    Returns:
        A `Solution` with arrays of length `L`.
    """
    config = config or SolverConfig()
    if method not in METHODS:
        raise ScalejaxError(f"unknown solver {method!r}; choose one of {', '.join(METHODS)}")
    u0 = np.atleast_2d(np.asarray(u0, dtype=np.float64))
    n_lanes = u0.shape[0]
    weights = np.asarray(weights, dtype=np.float64)
    n = weights.shape[-1]
    weights = np.broadcast_to(weights, (n_lanes, n))
    lanes = _Lanes()

    # Pad points to a bucket size with zero-weight copies of the first point.
    n_pad = bucket_size(n)
    pad_idx = np.concatenate([np.arange(n), np.zeros(n_pad - n, dtype=int)])
    x = {k: np.asarray(v, dtype=np.float64) for k, v in x.items()}
    per_lane_x = any(v.ndim == 2 for v in x.values())
    if per_lane_x:
        x = {k: np.broadcast_to(v, (n_lanes, n)) for k, v in x.items()}
    x_pad = {k: v[..., pad_idx] for k, v in x.items()}
    if not per_lane_x:
        x_pad = {k: lanes.put(v, sharded=False) for k, v in x_pad.items()}

    def lane_x(padded):
        return {k: lanes.put(v[padded]) for k, v in x_pad.items()} if per_lane_x else x_pad

    target = np.asarray(target, dtype=np.float64)
    per_lane_target = target.ndim == 2
    target_pad = target[..., pad_idx]
    shared_target = None if per_lane_target else lanes.put(target_pad, sharded=False)

    def lane_target(padded):
        return lanes.put(target_pad[padded]) if per_lane_target else shared_target

    weights = np.concatenate([weights, np.zeros((n_lanes, n_pad - n))], axis=1)

    if lanes_per_call is None:
        # About 64k points' worth, and never more than 1,024 lanes: on XLA's CPU backend
        # (jax 0.10.2) a vmapped solve of 2,048 or more lanes can stall without using
        # the CPU (seen with 16 points and the 4,500-start Chinchilla grid).
        lanes_per_call = min(MAX_LANES_PER_CALL, max(8, 65536 // n_pad))
    # The same chunk shape on every device whatever their number: a lane then meets the
    # same compiled code and the same position in its block, so its result is bitwise
    # the same on 1 or K devices.
    per_device = bucket_size(min(n_lanes, lanes_per_call))
    chunk = per_device * lanes.n_devices

    def chunks(active):
        for start in range(0, len(active), chunk):
            idx = active[start : start + chunk]
            yield idx, np.concatenate([idx, np.full(chunk - len(idx), idx[0])])

    state = None
    with Progress(n_lanes, desc, progress) as bar:
        for idx, padded in chunks(np.arange(n_lanes)):
            out = lanes.get(
                _init_compiled(
                    law,
                    loss,
                    method,
                    config,
                    lanes.put(u0[padded]),
                    lanes.put(weights[padded]),
                    lane_x(padded),
                    lane_target(padded),
                )
            )
            if state is None:
                state = jax.tree.map(lambda a: np.empty((n_lanes, *a.shape[1:]), a.dtype), out)
            state = _put(state, idx, out)

        limit = 0
        while limit < config.max_steps:
            limit = min(limit + steps_per_round, config.max_steps)
            active = np.flatnonzero(state.status == RUNNING)
            bar.update(n_lanes - active.size)
            if active.size == 0:
                break
            for idx, padded in chunks(active):
                out = _advance_compiled(
                    law,
                    loss,
                    method,
                    config,
                    jax.tree.map(lanes.put, _take(state, padded)),
                    lanes.put(weights[padded]),
                    lane_x(padded),
                    lane_target(padded),
                    limit,
                )
                state = _put(state, idx, lanes.get(out))
        bar.update(n_lanes)

    status = np.where(state.status == RUNNING, MAX_STEPS, state.status)
    return Solution(u=state.u, objective=state.f, status=status, steps=state.step)
