"""Batched solvers: every lane (start, resample, group) of a problem in one compiled call.

`solve_lanes` pads lanes and points to a few bucket sizes so that one
compiled function serves many problem sizes, chunks lanes only to bound
memory, and returns per-lane status arrays instead of raising.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._errors import ScalejaxError
from .._objectives import Loss
from .._progress import Progress
from ._lbfgs import lbfgs_init, lbfgs_step
from ._lm import lm_init, lm_step
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


class SolverConfig(eqx.Module):
    """Stopping rules shared by the solvers.

    A lane converges when an accepted step changes the objective by at most
    `ftol * (|f| + fscale)`, moves the parameters by at most `xtol` relative,
    or the largest gradient entry is at most `gtol * (|f| + fscale)`.

    `curvature` picks the Huber step of the LM solver: `"both"` tries the IRLS
    majoriser and the exact Gauss-Newton curvature and keeps the better step
    (robust from far starts: the grid); `"exact"` takes only the exact one,
    damped along the majoriser's diagonal (one objective evaluation a step
    instead of two: for lanes warm-started near an optimum, as in the bootstrap).
    `damping` is the LM solver's initial damping, relative to the curvature's
    diagonal: warm lanes trust the Gauss-Newton model from the first step and
    start lower (1e-5 takes a median of 9 steps per Chinchilla resample where
    1e-3 takes 11; far starts gain nothing from it).

    An `equinox.Module` compared by value: pass one as `solver=` to `fit`,
    `bootstrap` and the analyses that refit, e.g.
    `sj.fit(..., solver=sj.SolverConfig(max_steps=2000, ftol=1e-14))`.
    """

    max_steps: int = eqx.field(static=True, default=500)
    ftol: float = eqx.field(static=True, default=1e-12)
    xtol: float = eqx.field(static=True, default=1e-12)
    gtol: float = eqx.field(static=True, default=1e-10)
    fscale: float = eqx.field(static=True, default=1e-12)
    curvature: str = eqx.field(static=True, default="both")
    damping: float = eqx.field(static=True, default=1e-3)

    def __check_init__(self):
        if not (isinstance(self.max_steps, int | np.integer) and not isinstance(self.max_steps, bool)) or not (
            1 <= self.max_steps <= 1_000_000
        ):
            raise ScalejaxError(f"max_steps must be an integer from 1 to 1000000, got {self.max_steps!r}")
        for name in ("ftol", "xtol", "gtol", "fscale", "damping"):
            value = getattr(self, name)
            if not (isinstance(value, int | float | np.floating) and np.isfinite(value) and value >= 0):
                raise ScalejaxError(f"solver setting {name} must be a finite number >= 0, got {value!r}")
        if self.curvature not in ("both", "exact"):
            raise ScalejaxError(f"curvature must be 'both' or 'exact', got {self.curvature!r}")

    def replace(self, **changes) -> SolverConfig:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


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


_SOLVERS = {"lm": (lm_init, lm_step), "lbfgs": (lbfgs_init, lbfgs_step)}


@functools.partial(jax.jit, static_argnames=("law", "loss", "method", "config"))
def _init_compiled(law, loss, method, config, u0, weights, x, target):
    init = functools.partial(_SOLVERS[method][0], law, loss, config)
    return jax.vmap(init, in_axes=(0, 0, _x_axis(x), 0 if target.ndim == 2 else None))(u0, weights, x, target)


def _x_axis(x):
    """0 when the inputs are per lane (`(L, n)` arrays), None when all lanes share them."""
    return 0 if any(v.ndim == 2 for v in x.values()) else None


class _Queue(NamedTuple):
    """One device's work: its lanes' states, the lanes in its slots, and the next lane to load."""

    lanes: LaneState  # (Q, ...) every lane of this device's queue
    slot: jax.Array  # (K,) queue index of the lane in each slot, -1 when the slot is empty
    slots: LaneState  # (K, ...) the states of the lanes in the slots
    head: jax.Array  # () the next queue index to load
    n_queued: jax.Array  # () lanes 0..n_queued-1 of the queue are to be solved


def _queue_run(law, loss, method, config, queue: _Queue, weights, x, target, budget) -> _Queue:
    """Step the lanes in the slots; refill a slot from the queue as soon as its lane stops.

    One iteration takes one solver step in every slot, so a slot never waits for
    slower lanes: the cost is the steps the lanes need, not the slowest lane's
    steps times the lanes. Stops after `budget` iterations (to report progress)
    or when the queue is empty and every slot has stopped.
    """
    step = jax.vmap(
        functools.partial(_SOLVERS[method][1], law, loss, config),
        in_axes=(0, 0, _x_axis(x), 0 if target.ndim == 2 else None),
    )
    n_queue = weights.shape[0]

    def running(st):
        return (st.status == RUNNING) & (st.step < config.max_steps)

    def cond(carry):
        q, it = carry
        return ((q.head < q.n_queued) | jnp.any(q.slot >= 0)) & (it < budget)

    def body(carry):
        q, it = carry
        # Load the next lanes into the empty slots, in queue order.
        empty = q.slot < 0
        load_at = q.head + jnp.cumsum(empty, dtype=jnp.int32) - 1
        load = empty & (load_at < q.n_queued)
        slot = jnp.where(load, load_at, q.slot)
        loaded = _take(q.lanes, jnp.clip(load_at, 0, n_queue - 1))
        slots = jax.tree.map(lambda new, old: _where_lanes(load, new, old), loaded, q.slots)
        head = q.head + jnp.sum(load, dtype=jnp.int32)

        # One step in every occupied slot whose lane still runs.
        idx = jnp.maximum(slot, 0)
        xs = {k: v[idx] for k, v in x.items()} if _x_axis(x) == 0 else x
        stepped = step(slots, weights[idx], xs, target[idx] if target.ndim == 2 else target)
        live = (slot >= 0) & running(slots)
        slots = jax.tree.map(lambda new, old: _where_lanes(live, new, old), stepped, slots)

        # Write stopped lanes back to the queue and free their slots.
        done = (slot >= 0) & ~running(slots)
        back = jnp.where(done, slot, n_queue)  # out of range: dropped
        lanes = jax.tree.map(lambda a, v: a.at[back].set(v, mode="drop"), q.lanes, slots)
        slot = jnp.where(done, -1, slot)
        return _Queue(lanes, slot, slots, head, q.n_queued), it + 1

    queue, _ = jax.lax.while_loop(cond, body, (queue, jnp.asarray(0, jnp.int32)))
    return queue


def _where_lanes(mask, new, old):
    return jnp.where(mask.reshape(mask.shape + (1,) * (new.ndim - 1)), new, old)


@functools.lru_cache(maxsize=64)
def _queue_compiled(law, loss, method, config, mesh, x_axis, target_axis):
    """`_queue_run` compiled; with several devices each runs its own queue under `shard_map`."""
    run = functools.partial(_queue_run, law, loss, method, config)
    if mesh is None:
        return jax.jit(run, donate_argnums=(0,))
    lanes = PartitionSpec("lanes")
    spec_x = lanes if x_axis == 0 else PartitionSpec()
    spec_t = lanes if target_axis == 0 else PartitionSpec()

    def per_device(queue, weights, x, target, budget):
        # Each device's head and count arrive as length-1 blocks.
        q = queue._replace(head=queue.head[0], n_queued=queue.n_queued[0])
        out = run(q, weights, x, target, budget)
        return out._replace(head=out.head[None], n_queued=out.n_queued[None])

    return jax.jit(
        jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(lanes, lanes, spec_x, spec_t, PartitionSpec()),
            out_specs=lanes,
            check_vma=False,
        ),
        donate_argnums=(0,),
    )


def _take(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


def _put(tree, idx, values):
    def put(a, v):
        a[idx] = v[: len(idx)]
        return a

    return jax.tree.map(put, tree, values)


class _Lanes:
    """Where lanes run: the local devices, lanes split evenly across them with `jax.sharding`.

    With one device this is plain `jax.device_put`. With several (GPUs, or CPU
    cores exposed as devices with `XLA_FLAGS=--xla_force_host_platform_device_count=K`,
    or all hosts' devices after `jax.distributed.initialize()`), the lane axis
    is sharded over a 1-D mesh, each device solves its own queue of lanes and
    the data are replicated; every process builds the same global arrays from
    the same seed, so the result does not depend on how many devices or hosts
    there are.
    """

    def __init__(self):
        devices = jax.devices()
        self.n_devices = len(devices)
        self.mesh = Mesh(np.array(devices), ("lanes",)) if self.n_devices > 1 else None

    def put(self, a, sharded: bool = True):
        a = np.asarray(a)
        if self.mesh is None:
            return jax.device_put(a)
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
    progress: bool | None = None,
    desc: str = "lanes",
) -> Solution:
    """Solve `L` independent lanes: lane `i` starts at `u0[i]` with point weights `weights[i]`.

    Each device keeps a fixed number of slots (`lanes_per_call`) and a queue
    of lanes: every iteration takes one step in every slot, and a slot whose
    lane stops takes the next lane from the queue at once, so no slot waits
    for slower lanes and one compiled function serves the whole solve. Lanes
    are dealt round-robin to the devices. A lane's result does not depend on
    the order or the slot it runs in, so it is bitwise the same on any number
    of devices; with another `lanes_per_call` it agrees to rounding (sums over
    points vectorise differently), far inside the stopping tolerances.

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
        lanes_per_call: slots per device (lanes stepped together); by default about 32k
            points' worth, between 32 and 256.
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

    # Shapes that do not depend on the number of devices: a lane then meets the same
    # compiled code on 1 or K devices, so its result is bitwise the same.
    if lanes_per_call is None:
        lanes_per_call = min(256, max(32, 32768 // n_pad))
    n_slots = bucket_size(min(n_lanes, lanes_per_call))
    # Queue length per device: a power of two (few compiled shapes), about 4M points' worth at most.
    queue_cap = max(n_slots, min(1 << int(np.ceil(np.log2(max(n_lanes, 1)))), _pow2_floor((1 << 22) // n_pad)))
    init_chunk = n_slots * lanes.n_devices

    state = None
    with Progress(n_lanes, desc, progress) as bar:
        for start in range(0, n_lanes, init_chunk):
            idx = np.arange(start, min(start + init_chunk, n_lanes))
            padded = np.concatenate([idx, np.full(init_chunk - len(idx), idx[0])])
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

        active = np.flatnonzero(state.status == RUNNING)
        bar.update(n_lanes - active.size)
        run = _queue_compiled(
            law, loss, method, config, lanes.mesh, 0 if per_lane_x else None, 0 if per_lane_target else None
        )
        n_dev = lanes.n_devices
        for start in range(0, active.size, queue_cap * n_dev):
            todo = active[start : start + queue_cap * n_dev]
            # Deal the lanes round-robin: device d solves todo[d::n_dev], padded to the queue length.
            order = np.full((n_dev, queue_cap), todo[0])
            counts = np.zeros(n_dev, dtype=np.int32)
            for d in range(n_dev):
                mine = todo[d::n_dev]
                order[d, : mine.size] = mine
                counts[d] = mine.size
            padded = order.reshape(-1)
            slot_template = _take(state, np.full(n_slots * n_dev, todo[0]))
            queue = _Queue(
                lanes=jax.tree.map(lanes.put, _take(state, padded)),
                slot=lanes.put(np.full(n_slots * n_dev, -1, dtype=np.int32)),
                slots=jax.tree.map(lanes.put, slot_template),
                head=lanes.put(np.zeros(n_dev, dtype=np.int32) if n_dev > 1 else np.int32(0)),
                n_queued=lanes.put(counts if n_dev > 1 else counts[0]),
            )
            lane_w, xs, ts = lanes.put(weights[padded]), lane_x(padded), lane_target(padded)
            budget, finished_before = 16, n_lanes - active.size + start
            while True:
                tick = time.perf_counter()
                queue = run(queue, lane_w, xs, ts, np.int32(budget))
                head, slot = lanes.get((queue.head, queue.slot))
                busy = int(np.sum(slot >= 0))
                bar.update(finished_before + int(np.sum(head)) - busy)
                if busy == 0 and int(np.sum(head)) == todo.size:
                    break
                # Grow the iterations per call until a call takes about 0.1 s: few returns to Python,
                # and the progress bar still moves.
                if time.perf_counter() - tick < 0.1:
                    budget = min(budget * 2, 1 << 16)
            solved = lanes.get(queue.lanes)
            keep = np.concatenate([np.arange(counts[d]) + d * queue_cap for d in range(n_dev)])
            state = _put(state, padded[keep], _take(solved, keep))
        bar.update(n_lanes)

    status = np.where(state.status == RUNNING, MAX_STEPS, state.status)
    return Solution(u=state.u, objective=state.f, status=status, steps=state.step)


def _pow2_floor(k: int) -> int:
    return 1 << max(int(k).bit_length() - 1, 0)
