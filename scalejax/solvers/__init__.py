"""Batched solvers: every lane (start, resample, group) of a problem in one compiled call.

`solve_lanes` pads points to a few bucket sizes so that one compiled function
serves many problem sizes, keeps data shared by all lanes once on each device,
makes per-problem data (resample weights, groups' points) block by block, and
returns per-lane status arrays instead of raising. `solve_starts` is the
global strategy of a multi-start fit: screen every start, polish the best
distinct ones until the best optimum is confirmed.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from .._compile_cache import enable_from_env
from .._errors import ScalejaxError
from .._objectives import Loss
from .._programs import Program
from .._progress import Progress
from ._devices import Devices, lane_sizes
from ._lbfgs import lbfgs_init, lbfgs_step
from ._lm import lm_init, lm_step
from ._memory import require_memory
from ._status import CONVERGED, MAX_STEPS, NONFINITE, RUNNING, STALLED, STATUS_NAMES, LaneState

__all__ = [
    "CONVERGED",
    "MAX_STEPS",
    "METHODS",
    "NONFINITE",
    "STALLED",
    "STATUS_NAMES",
    "STRATEGIES",
    "LaneState",
    "Solution",
    "SolverConfig",
    "bucket_size",
    "require_memory",
    "solve_lanes",
    "solve_starts",
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
    """Per-lane results, as NumPy arrays with a leading lane axis.

    `start` and `problem` are set by `solve_starts`: the index, in the starts
    given, of the start each lane was solved from (the global strategy solves
    a subset), and the problem (data set) it fitted.
    """

    u: np.ndarray
    objective: np.ndarray
    status: np.ndarray
    steps: np.ndarray
    start: np.ndarray | None = None
    problem: np.ndarray | None = None

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


class _Axes(NamedTuple):
    """Which inputs have one row per lane (0) and which all lanes share (None): static for `vmap`."""

    weights: int | None
    x: int | None
    target: int | None


@functools.partial(jax.jit, static_argnames=("law", "loss", "method", "config", "axes"))
def _init_jit(law, loss, method, config, axes, u0, weights, x, target):
    init = functools.partial(_SOLVERS[method][0], law, loss, config)
    return jax.vmap(init, in_axes=(0, axes.weights, axes.x, axes.target))(u0, weights, x, target)


_init_compiled = Program(_init_jit, "init", n_static=5)


class _Queue(NamedTuple):
    """One device's work: its lanes' states, the lanes in its slots, and the next lane to load."""

    lanes: LaneState  # (Q, ...) every lane of this device's queue
    slot: jax.Array  # (K,) queue index of the lane in each slot, -1 when the slot is empty
    slots: LaneState  # (K, ...) the states of the lanes in the slots
    head: jax.Array  # () the next queue index to load
    n_queued: jax.Array  # () lanes 0..n_queued-1 of the queue are to be solved


def _queue_run(law, loss, method, config, axes, queue: _Queue, weights, x, target, budget) -> _Queue:
    """Step the lanes in the slots; refill a slot from the queue as soon as its lane stops.

    One iteration takes one solver step in every slot, so a slot never waits for
    slower lanes: the cost is the steps the lanes need, not the slowest lane's
    steps times the lanes. Stops after `budget` iterations (to report progress)
    or when the queue is empty and every slot has stopped. Inputs shared by all
    lanes are read in place; per-lane ones are gathered for the lanes in the slots.
    """
    step = jax.vmap(
        functools.partial(_SOLVERS[method][1], law, loss, config), in_axes=(0, axes.weights, axes.x, axes.target)
    )
    n_queue = queue.lanes.u.shape[0]

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
        ws = weights if axes.weights is None else weights[idx]
        xs = x if axes.x is None else {k: v[idx] for k, v in x.items()}
        ts = target if axes.target is None else target[idx]
        stepped = step(slots, ws, xs, ts)
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
def _queue_compiled(law, loss, method, config, axes, mesh):
    """`_queue_run` compiled; with several devices each runs its own queue under `shard_map`."""
    run = functools.partial(_queue_run, law, loss, method, config, axes)
    static = (law, loss, method, config, axes, mesh)
    if mesh is None:
        return Program(jax.jit(run, donate_argnums=(0,)), "queue", static=static)
    lanes = PartitionSpec("lanes")

    def spec(axis):
        return lanes if axis == 0 else PartitionSpec()

    def per_device(queue, weights, x, target, budget):
        # Each device's head and count arrive as length-1 blocks.
        q = queue._replace(head=queue.head[0], n_queued=queue.n_queued[0])
        out = run(q, weights, x, target, budget)
        return out._replace(head=out.head[None], n_queued=out.n_queued[None])

    compiled = jax.jit(
        jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(lanes, spec(axes.weights), spec(axes.x), spec(axes.target), PartitionSpec()),
            out_specs=lanes,
            check_vma=False,
        ),
        donate_argnums=(0,),
    )
    return Program(compiled, "queue", static=static)


def _take(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


Rows = np.ndarray | Callable[[int, int], np.ndarray]


class _Inputs:
    """The points every lane fits, padded to a bucket size: shared ones once, per-problem ones made per block.

    An input is shared by all lanes (`(n,)`), has one row per problem
    (`(P, n)`), or (weights and target) is a callable `make(start, stop)`
    returning the rows of problems `[start, stop)`, called once per block of
    lanes, so that per-problem data never exist for all problems at once.
    Lane `i` solves problem `problem[i]` (the lane itself when `problem` is None).
    """

    def __init__(self, weights: Rows, x: dict, target: Rows, problem, n_lanes: int, devices: Devices):
        self.problem = None if problem is None else np.asarray(problem, dtype=np.int64).reshape(-1)
        if self.problem is not None:
            if self.problem.shape[0] != n_lanes:
                raise ScalejaxError(f"problem has {self.problem.shape[0]} entries for {n_lanes} lanes")
            if n_lanes and self.problem.min() < 0:
                raise ScalejaxError("problem indices must be non-negative")
        x = {k: v if callable(v) else np.asarray(v, dtype=np.float64) for k, v in x.items()}
        if any(callable(v) for v in x.values()):
            raise ScalejaxError("inputs x must be arrays (shared (n,) or one row per problem (P, n))")
        sizes = {np.shape(v)[-1] for v in (*x.values(), *(a for a in (weights, target) if not callable(a)))}
        if len(sizes) != 1:
            raise ScalejaxError(f"weights, inputs and target disagree on the number of points: {sorted(sizes)}")
        self.n = int(sizes.pop())
        self.n_pad = bucket_size(self.n)
        self.pad_idx = np.concatenate([np.arange(self.n), np.zeros(self.n_pad - self.n, dtype=np.int64)])
        self.pad_mask = (np.arange(self.n_pad) < self.n).astype(np.float64)
        self.n_problems = n_lanes if self.problem is None else (int(self.problem.max()) + 1 if n_lanes else 0)

        def source(a, name):
            """An input as ("shared", padded array), ("rows", (P, n) array) or ("make", callable)."""
            if callable(a):
                return "make", a
            a = np.asarray(a, dtype=np.float64)
            if a.ndim == 2 and a.shape[0] == 1:
                a = a[0]
            if a.ndim == 1:
                return "shared", a
            if a.ndim != 2 or a.shape[0] < self.n_problems:
                raise ScalejaxError(
                    f"{name} has shape {a.shape}; give ({self.n},) shared by all lanes or one row per problem "
                    f"({self.n_problems}, {self.n})"
                )
            return "rows", a

        self.weights = source(weights, "weights")
        self.target = source(target, "target")
        self.x = {k: source(v, f"input {k!r}") for k, v in x.items()}
        per_problem = [s for s in (self.weights, self.target, *self.x.values()) if s[0] != "shared"]
        if any(s[0] == "make" for s in per_problem) and self.problem is not None and n_lanes:
            if np.any(np.diff(self.problem) < 0):
                raise ScalejaxError("with weights or targets made by a function, lanes must be ordered by problem")
        x_shared = all(s[0] == "shared" for s in self.x.values())
        self.axes = _Axes(
            weights=None if self.weights[0] == "shared" else 0,
            x=None if x_shared else 0,
            target=None if self.target[0] == "shared" else 0,
        )
        # Inputs shared by every lane: on every device once, never copied per lane.
        self.shared_weights = self._device_shared(self.weights, devices, mask=True)
        self.shared_target = self._device_shared(self.target, devices)
        self.shared_x = {k: self._device_shared(s, devices) for k, s in self.x.items()} if x_shared else None
        if not x_shared:
            # A mix: per-problem rows for every input, shared ones broadcast (rare; fit_many passes all per group).
            self.x = {k: ("tile", s[1]) if s[0] == "shared" else s for k, s in self.x.items()}

    def _device_shared(self, src, devices: Devices, mask: bool = False):
        if src[0] != "shared":
            return None
        out = src[1][self.pad_idx]
        return devices.put(out * self.pad_mask if mask else out, sharded=False)

    def lane_rows(self, lanes: np.ndarray, real: np.ndarray) -> dict:
        """Host arrays of one padded row per lane for the per-problem inputs (zeros where not `real`).

        Returns `{"weights": ..., "target": ..., "x": {...}}` holding only the
        per-problem inputs; shared ones are already on the devices.
        """
        probs = (lanes if self.problem is None else self.problem[lanes])[real]
        out = {}

        def rows(src, name, mask=False):
            kind, a = src
            if kind == "tile":
                got = np.broadcast_to(a, (probs.size, a.shape[-1]))
            elif kind == "rows":
                got = a[probs]
            else:
                lo, hi = int(probs.min()), int(probs.max()) + 1
                got = np.asarray(a(lo, hi), dtype=np.float64)
                if got.shape != (hi - lo, self.n):
                    raise ScalejaxError(
                        f"the {name} of problems [{lo}, {hi}) have shape {got.shape}, expected {(hi - lo, self.n)}"
                    )
                got = got[probs - lo]
            # Lanes that only pad the queue are never loaded: zeros cost no work to make.
            full = np.zeros((lanes.size, self.n_pad))
            full[real] = got[:, self.pad_idx] * self.pad_mask if mask else got[:, self.pad_idx]
            return full

        if self.axes.weights == 0:
            out["weights"] = rows(self.weights, "weights", mask=True)
        if self.axes.target == 0:
            out["target"] = rows(self.target, "targets")
        if self.axes.x == 0:
            out["x"] = {k: rows(src, k) for k, src in self.x.items()}
        return out

    def on_devices(self, rows: dict, devices: Devices, select=None):
        """`(weights, x, target)` on the devices: the shared arrays, or `rows` (restricted to `select`) split by lane."""

        def put(a):
            return devices.put(a if select is None else a[select])

        return (
            put(rows["weights"]) if "weights" in rows else self.shared_weights,
            {k: put(v) for k, v in rows["x"].items()} if "x" in rows else self.shared_x,
            put(rows["target"]) if "target" in rows else self.shared_target,
        )


def solve_lanes(
    law,
    loss: Loss,
    u0: np.ndarray,
    weights: Rows,
    x: dict[str, np.ndarray],
    target: Rows,
    *,
    problem: np.ndarray | None = None,
    method: str = "lm",
    config: SolverConfig | None = None,
    lanes_per_call: int | None = None,
    progress: bool | None = None,
    desc: str = "lanes",
) -> Solution:
    """Solve `L` independent lanes: lane `i` starts at `u0[i]` and fits the points of its problem.

    Each device keeps a fixed number of slots (`lanes_per_call`) and a queue
    of lanes: every iteration takes one step in every slot, and a slot whose
    lane stops takes the next lane from the queue at once, so no slot waits
    for slower lanes. Lanes go to the devices in blocks, dealt round-robin.
    Data shared by all lanes sit once on each device; per-problem data are
    made for one block at a time, so memory grows with the points plus the
    lanes, never with their product. A lane's result does not depend on the
    order, the block or the slot it runs in, so it is bitwise the same on any
    number of devices; with another `lanes_per_call` it agrees to rounding
    (sums over points vectorise differently), far inside the stopping tolerances.

    Args:
        law: the `Law`.
        loss: the `Loss`.
        u0: `(L, n_params)` unconstrained starts.
        weights: non-negative point weights (0 drops a point): `(n,)` shared by all lanes,
            `(P, n)` one row per problem, or a function `weights(start, stop)` returning the
            `(stop - start, n)` weights of problems `[start, stop)` (e.g. bootstrap resamples
            made from the seed block by block; lanes must then be ordered by problem).
        x: the law's inputs, each `(n,)` (shared) or `(P, n)` (one row per problem, e.g. many
            data sets padded to one length with zero weights).
        target: `(n,)` log y (log-scale losses) or y; or per problem like `weights`
            (residual resampling).
        problem: `(L,)` the problem each lane solves (rows of the per-problem inputs); None:
            lane `i` solves problem `i`.
        method: `"lm"` (Levenberg-Marquardt with IRLS) or `"lbfgs"` (optax).
        config: stopping rules.
        lanes_per_call: slots per device (lanes stepped together); by default chosen by the
            backend: about 32k points' worth on a CPU (1 to 256 lanes), 4M on a GPU.
        progress: show a progress bar (None: in a terminal or notebook, after 2 s).
        desc: the progress bar's label.

    Returns:
        A `Solution` with arrays of length `L`. Raises `ScalejaxError` up front when the
        lanes' states cannot fit in the memory available.
    """
    enable_from_env()
    config = config or SolverConfig()
    if method not in METHODS:
        raise ScalejaxError(f"unknown solver {method!r}; choose one of {', '.join(METHODS)}")
    u0 = np.atleast_2d(np.asarray(u0, dtype=np.float64))
    n_lanes, n_params = u0.shape
    require_memory(n_lanes, n_params, what=f"solving {n_lanes:,} {desc}")
    devices = Devices()
    inputs = _Inputs(weights, x, target, problem, n_lanes, devices)
    n_slots, n_queue = lane_sizes(n_lanes, inputs.n_pad, lanes_per_call)
    n_dev = devices.n_devices
    run = _queue_compiled(law, loss, method, config, inputs.axes, devices.mesh)
    block = n_queue * n_dev

    state = LaneState(
        u=u0.copy(),
        f=np.full(n_lanes, np.inf),
        status=np.full(n_lanes, NONFINITE, dtype=np.int32),
        step=np.zeros(n_lanes, dtype=np.int32),
        inner=None,
    )
    init_chunk = n_slots * n_dev
    with Progress(n_lanes, desc, progress) as bar:
        for first in range(0, n_lanes, block):
            todo = np.arange(first, min(first + block, n_lanes))
            # Deal the block round-robin: device d solves todo[d::n_dev], padded to the queue length.
            order = np.full((n_dev, n_queue), -1)
            counts = np.zeros(n_dev, dtype=np.int32)
            for d in range(n_dev):
                mine = todo[d::n_dev]
                order[d, : mine.size] = mine
                counts[d] = mine.size
            padded = order.reshape(-1)
            real = padded >= 0
            padded = np.where(real, padded, todo[0])
            rows = inputs.lane_rows(padded, real)

            # Initial states of the real lanes, a chunk of slots at a time (shapes that do not depend on
            # the number of lanes: a new number of resamples compiles nothing new).
            where = np.flatnonzero(real)
            started = None
            for c in range(0, where.size, init_chunk):
                pos = where[c : c + init_chunk]
                pos = np.concatenate([pos, np.full(init_chunk - pos.size, pos[0])])
                out = devices.get(
                    _init_compiled(
                        law,
                        loss,
                        method,
                        config,
                        inputs.axes,
                        devices.put(u0[padded[pos]]),
                        *inputs.on_devices(rows, devices, pos),
                    )
                )
                if started is None:
                    started = jax.tree.map(lambda a, n=padded.size: np.repeat(a[:1], n, axis=0), out)
                jax.tree.map(lambda dst, src, pos=pos: dst.__setitem__(pos, src), started, out)

            lane_w, lane_x, lane_t = inputs.on_devices(rows, devices)
            queue = _Queue(
                lanes=jax.tree.map(devices.put, started),
                slot=devices.put(np.full(n_slots * n_dev, -1, dtype=np.int32)),
                slots=jax.tree.map(devices.put, _take(started, np.zeros(n_slots * n_dev, dtype=np.int64))),
                head=devices.put(np.zeros(n_dev, dtype=np.int32) if n_dev > 1 else np.int32(0)),
                n_queued=devices.put(counts if n_dev > 1 else counts[0]),
            )
            budget = 16
            while True:
                tick = time.perf_counter()
                queue = run(queue, lane_w, lane_x, lane_t, np.int32(budget))
                head, slot = devices.get((queue.head, queue.slot))
                busy = int(np.sum(slot >= 0))
                bar.update(first + int(np.sum(head)) - busy)
                if busy == 0 and int(np.sum(head)) == todo.size:
                    break
                # Grow the iterations per call until a call takes about 0.1 s: few returns to Python,
                # and the progress bar still moves.
                if time.perf_counter() - tick < 0.1:
                    budget = min(budget * 2, 1 << 16)
            solved = devices.get(queue.lanes)
            keep = np.flatnonzero(real)
            for name in ("u", "f", "status", "step"):
                getattr(state, name)[padded[keep]] = getattr(solved, name)[keep]
        bar.update(n_lanes)

    status = np.where(state.status == RUNNING, MAX_STEPS, state.status)
    return Solution(u=state.u, objective=state.f, status=status, steps=state.step)


from ._global import STRATEGIES, solve_starts  # noqa: E402  (the global strategy builds on solve_lanes)
