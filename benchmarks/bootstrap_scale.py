"""How the Chinchilla bootstrap's resample fits scale with the number of resamples: time, memory, compilations.

Each size solves `n` resamples of the real Chinchilla data (240 runs) from the
full-data optimum, with resample weights made block by block from the seed
(`scalejax._resample.Resampler`, as `sj.bootstrap` makes them), in one
process: the first size compiles, the others must not (the solver's shapes
do not depend on `n`). Reports seconds, milliseconds per resample, converged
resamples, the process's peak resident memory after the size, and how many
functions JAX compiled for it.

With `--lanes-per-call K1 K2 ...` the sizes run once for each number of
lanes stepped together per device (the backend's default when not given):
on a GPU this is how the default slots are checked.

Usage:
    python benchmarks/bootstrap_scale.py --n 4000 100000
    python benchmarks/bootstrap_scale.py --n 100000 --lanes-per-call 1024 16384 65536
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import jax
import numpy as np

import scalejax as sj
from scalejax._fit import make_data
from scalejax._objectives import make_loss
from scalejax._resample import Resampler
from scalejax.solvers import CONVERGED, SolverConfig, solve_lanes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import EPOCH_CHINCHILLA

WARM = SolverConfig(curvature="exact", damping=1e-5)
X = {"N": "N", "D": "D"}


class CompileCounter:
    """Counts XLA compilations through JAX's monitoring events."""

    def __init__(self):
        self.n = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.n += 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[4000, 100000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--lanes-per-call", type=int, nargs="+", default=[0], help="lanes stepped together per device (0: the default)"
    )
    parser.add_argument("--data", type=Path, default=EPOCH_CHINCHILLA, help="Epoch's svg_extracted_data.csv")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    frame = sj.datasets.read_epoch_chinchilla(args.data)
    law, loss = sj.laws.get("chinchilla"), make_loss()
    full = sj.fit(law, frame, x=X, y="loss", progress=False)
    data = make_data(law, frame, X, "loss", None, None, loss)
    counter = CompileCounter()
    command = " ".join(sys.argv[1:] if argv is None else argv)
    print(
        f"`python benchmarks/bootstrap_scale.py {command}`: load average {load:.2f} at start; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"jax {jax.__version__} ({jax.default_backend()}, {jax.device_count()} device)\n\n"
        "| lanes per call | resamples | seconds | ms per resample | converged | peak RSS so far (GiB) | compilations |\n"
        "|---|---:|---:|---:|---:|---:|---:|",
        flush=True,
    )
    with jax.enable_x64(True):
        target = data.target(True)
        for lanes, n in [(k, n) for k in args.lanes_per_call for n in args.n]:
            make = Resampler(data, "rows", args.seed)
            before = counter.n
            start = time.perf_counter()
            sol = solve_lanes(
                law,
                loss,
                np.tile(full.u, (n, 1)),
                make.weights,
                data.x,
                target,
                problem=np.arange(n),
                config=WARM,
                lanes_per_call=lanes or None,
                progress=False,
            )
            seconds = time.perf_counter() - start
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux
            converged = int(np.sum(sol.status == CONVERGED))
            print(
                f"| {lanes or 'default'} | {n:,} | {seconds:.2f} | {1e3 * seconds / n:.4f} | {converged:,}/{n:,} "
                f"| {rss:.2f} | {counter.n - before} |",
                flush=True,
            )
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
