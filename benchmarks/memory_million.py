"""Peak memory of a Chinchilla fit on a 1,000,000-row CSV: the `scalejax fit` command, and where the memory goes.

Writes a CSV of one million synthetic runs (N, D log-uniform over Chinchilla's
range, loss from Besiroglu et al.'s fit times log-normal noise of 1%), then in
fresh processes:

1. `scalejax fit CSV --law chinchilla ...` as a user runs it: wall time and peak
   resident memory (the kernel's `ru_maxrss` of that process);
2. the same steps one at a time, reporting the peak so far after each: import,
   the command's CSV reader (`scalejax.cli._read_csv`, Python's csv module),
   pandas' `read_csv` instead, validation into `Data`, and the fit.

Usage:
    python benchmarks/memory_million.py [--rows 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

TRUTH = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.3478, "beta": 0.3658}

STEPS = textwrap.dedent(
    """
    import json, resource, sys, time
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB (ru_maxrss is KiB on Linux)
    def now():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096 / 2**30
    out, t0 = [], time.perf_counter()
    def note(what):
        out.append({"step": what, "peak_gib": round(peak(), 3), "rss_gib": round(now(), 3), "s": round(time.perf_counter() - t0, 2)})
    import scalejax as sj
    from scalejax.cli import _read_csv
    from scalejax._fit import make_data
    from scalejax._objectives import make_loss
    note("import scalejax")
    frame = _read_csv(sys.argv[1])
    note("CLI reader (csv module)")
    del frame
    import pandas as pd
    frame = pd.read_csv(sys.argv[1])
    note("pandas.read_csv")
    law, loss = sj.laws.get("chinchilla"), make_loss()
    data = make_data(law, frame, {"N": "N", "D": "D"}, "loss", None, None, loss)
    note("validation into Data")
    fit = sj.fit(law, data)
    note(f"fit ({fit.n_starts} starts polished)")
    print(json.dumps({"steps": out, "params": fit.params, "objective": fit.objective}))
    """
)


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(np.log(7e7), np.log(1.6e10), rows))
    d = np.exp(rng.uniform(np.log(5e9), np.log(5e11), rows))
    p = TRUTH
    loss = (p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]) * np.exp(0.01 * rng.normal(size=rows))
    np.savetxt(path, np.column_stack([n, d, loss]), delimiter=",", header="N,D,loss", comments="", fmt="%.10g")


def run_measured(cmd: list[str]) -> tuple[int, float, float, str]:
    """Run `cmd`; return its exit code, wall seconds, peak RSS in GiB (its own `ru_maxrss`) and its output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss / 2**20, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="write the CSV here and keep it")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"chinchilla_{args.rows}.csv"
    if not csv.exists():
        write_csv(csv, args.rows)
    load = os.getloadavg()[0]
    scalejax_cmd = str(Path(sys.executable).with_name("scalejax"))
    code, seconds, rss, out = run_measured(
        [scalejax_cmd, "fit", str(csv), "--law", "chinchilla", "--x", "N=N", "--x", "D=D", "--y", "loss"]
    )
    script = folder / "steps.py"
    script.write_text(STEPS)
    code2, seconds2, rss2, out2 = run_measured([sys.executable, str(script), str(csv)])
    steps = json.loads(out2.strip().splitlines()[-1])["steps"] if code2 == 0 else []
    lines = [
        f"`python benchmarks/memory_million.py --rows {args.rows}`: {csv.stat().st_size / 2**20:.0f} MiB CSV; load "
        f"average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end; {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "",
        f"`scalejax fit` (exit {code}): {seconds:.1f} s, peak RSS {rss:.2f} GiB",
        "",
        "| step (one process) | peak RSS so far (GiB) | RSS now (GiB) | seconds since start |",
        "|---|---:|---:|---:|",
        *(f"| {s['step']} | {s['peak_gib']:.2f} | {s['rss_gib']:.2f} | {s['s']:.1f} |" for s in steps),
        "",
        f"steps process: exit {code2}, {seconds2:.1f} s, peak RSS {rss2:.2f} GiB",
    ]
    if code != 0:
        lines.append(f"scalejax fit output: {out[-2000:]}")
    if code2 != 0:
        lines.append(f"steps output: {out2[-2000:]}")
    else:
        lines.append(f"command's output: {' '.join(out.split())[:600]}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
