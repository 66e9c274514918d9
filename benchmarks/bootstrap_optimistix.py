"""Time the Chinchilla bootstrap's resample fits against a JAX peer: `optimistix.LevenbergMarquardt`, vmapped.

Both solve the same resamples of the real Chinchilla data (240 runs; weights
made once from the seed by `scalejax._resample.Resampler`, multinomial over
runs), from the same warm start (the full-data Huber optimum), in the same
parameters (log E, log A, log B, alpha, beta), in one process:

- scalejax: `solve_lanes` as `sj.bootstrap` runs it (per-device queue of lanes,
  exact Huber step, light damping), and `sj.bootstrap` end to end;
- optimistix: `optx.least_squares` with `optx.LevenbergMarquardt`, `jax.vmap`-ed
  over the resamples and jitted, on the Huber objective written as least
  squares (pseudo-residuals `sign(r) sqrt(2 huber(r))` times `sqrt(weight)`:
  their half sum of squares is the summed Huber objective, and they are
  continuously differentiable). Its tolerances are the tightest for which it
  still reaches scalejax's objectives (`--rtol`, `--atol`); the table reports
  how many resamples reach the same objective within 1e-9 relative.

Usage:
    pip install -e ".[bench]"                  # optimistix
    python benchmarks/bootstrap_optimistix.py  # 4,000 resamples
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import scalejax as sj
from scalejax._fit import make_data
from scalejax._objectives import make_loss
from scalejax._resample import Resampler
from scalejax.solvers import CONVERGED, SolverConfig, solve_lanes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import EPOCH_CHINCHILLA

X = {"N": "N", "D": "D"}
DELTA = 1e-3
WARM = SolverConfig(curvature="exact", damping=1e-5)  # what sj.bootstrap runs its resamples with


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), times, out


def optimistix_solver(log_n, log_d, log_y, rtol, atol, max_steps):
    import optimistix as optx

    def pseudo_residuals(u, w):
        pred = jax.nn.logsumexp(
            jnp.stack([jnp.full_like(log_n, u[0]), u[1] - u[3] * log_n, u[2] - u[4] * log_d]), axis=0
        )
        r = pred - log_y
        a = jnp.abs(r)
        huber = jnp.where(a <= DELTA, 0.5 * r**2, DELTA * (a - 0.5 * DELTA))
        return jnp.sqrt(w) * jnp.sign(r) * jnp.sqrt(2.0 * huber)

    solver = optx.LevenbergMarquardt(rtol=rtol, atol=atol)

    @jax.jit
    def solve(u0, weights):
        def one(w):
            sol = optx.least_squares(pseudo_residuals, solver, u0, args=w, max_steps=max_steps, throw=False)
            return sol.value, sol.result == optx.RESULTS.successful, sol.stats["num_steps"]

        return jax.vmap(one)(weights)

    return solve


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="resamples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rtol", type=float, default=1e-10, help="optimistix rtol")
    parser.add_argument("--atol", type=float, default=1e-12, help="optimistix atol")
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--data", type=Path, default=EPOCH_CHINCHILLA, help="Epoch's svg_extracted_data.csv")
    args = parser.parse_args(argv)
    import optimistix

    load = os.getloadavg()
    frame = sj.datasets.read_epoch_chinchilla(args.data)
    law, loss = sj.laws.get("chinchilla"), make_loss("huber", DELTA)
    full = sj.fit(law, frame, x=X, y="loss", progress=False)
    data = make_data(law, frame, X, "loss", None, None, loss)
    weights = Resampler(data, "rows", args.seed).weights(0, args.n)
    u0 = full.u[0]  # (log E, log A, log B, alpha, beta): the chinchilla law's unconstrained space

    with jax.enable_x64(True):
        target = data.target(True)

        def ours():
            return solve_lanes(
                law, loss, np.tile(u0, (args.n, 1)), weights, data.x, target, config=WARM, progress=False
            )

        t0 = time.perf_counter()
        ours()
        first_ours = time.perf_counter() - t0
        t_ours, all_ours, sol = best_of(ours, args.repeats)

        log_n, log_d, log_y = (jnp.asarray(np.log(frame[c].to_numpy())) for c in ("N", "D", "loss"))
        solve = optimistix_solver(log_n, log_d, log_y, args.rtol, args.atol, args.max_steps)
        w_dev = jnp.asarray(weights)

        def theirs():
            out = solve(jnp.asarray(u0), w_dev)
            jax.block_until_ready(out)
            return out

        t0 = time.perf_counter()
        theirs()
        first_theirs = time.perf_counter() - t0
        t_theirs, all_theirs, (u_opt, ok_opt, steps_opt) = best_of(theirs, args.repeats)
        u_opt, ok_opt, steps_opt = (np.asarray(a) for a in (u_opt, ok_opt, steps_opt))

        # Both answers' objectives, on each resample, by one formula (scalejax's objective).
        from scalejax._objectives import objective

        f = jax.jit(jax.vmap(lambda u, w: objective(law, loss, u, w, data.x, target)))
        f_ours, f_theirs = np.asarray(f(sol.u, weights)), np.asarray(f(u_opt, weights))

    t_boot, _, boot = best_of(lambda: sj.bootstrap(full, n=args.n, seed=args.seed, progress=False), args.repeats)
    best = np.minimum(f_ours, f_theirs)
    ours_at = np.sum((f_ours - best) <= 1e-9 * best)
    theirs_at = np.sum((f_theirs - best) <= 1e-9 * best)
    n = args.n
    lines = [
        f"`python benchmarks/bootstrap_optimistix.py --n {n}`: {n} resamples (rows scheme, seed {args.seed}) of the "
        f"Chinchilla data (240 runs), warm-started at the full-data Huber optimum; load average "
        f"{load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end; {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, jax {jax.__version__} ({jax.device_count()} device), "
        f"optimistix {optimistix.__version__}",
        "",
        "| method | first call s | warm s (best of "
        f"{args.repeats}) | ms per resample | ratio to scalejax | at the best objective (1e-9) | converged | steps (median / max) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| scalejax `solve_lanes` (queue of lanes, exact Huber LM) | {first_ours:.2f} | {t_ours:.3f} | "
        f"{1e3 * t_ours / n:.3f} | 1.0x | {ours_at}/{n} | {np.sum(sol.status == CONVERGED)}/{n} | "
        f"{int(np.median(sol.steps))} / {int(sol.steps.max())} |",
        f"| optimistix LevenbergMarquardt, vmapped (rtol {args.rtol:g}, atol {args.atol:g}) | {first_theirs:.2f} | "
        f"{t_theirs:.3f} | {1e3 * t_theirs / n:.3f} | {t_theirs / t_ours:.1f}x | {theirs_at}/{n} | "
        f"{int(np.sum(ok_opt))}/{n} | {int(np.median(steps_opt))} / {int(np.max(steps_opt))} |",
        "",
        f"`sj.bootstrap(fit, n={n})` end to end (its own resamples, warm): {t_boot:.3f} s, "
        f"{boot.n_converged}/{n} converged. Warm calls (s): scalejax {', '.join(f'{t:.3f}' for t in all_ours)}; "
        f"optimistix {', '.join(f'{t:.3f}' for t in all_theirs)}.",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
