"""Several hosts: two processes joined by `jax.distributed` give bitwise the draws of one process.

Two Python processes on this machine stand for two hosts: each calls
`jax.distributed.initialize` (CPU devices, gloo collectives over localhost),
then runs the same `sj.bootstrap` call, exactly as the README's multi-host
example does. Lanes are dealt over both processes' devices and every process
receives every draw.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

import scalejax as sj

STARTS = {"E": [1.5, 2.0], "A": [300.0, 600.0], "B": [1000.0, 3000.0], "alpha": [0.3, 0.4], "beta": [0.35]}
KWARGS = dict(x={"N": "N", "D": "D"}, y="loss", n=24, seed=7, starts=STARTS, lanes_per_call=8)

HOST = textwrap.dedent(
    """
    import sys
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    process, count, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{{port}}", num_processes=count, process_id=process)

    import numpy as np
    import scalejax as sj

    frame = sj.datasets.load_example("chinchilla")
    boot = sj.bootstrap("chinchilla", frame, **{kwargs!r})
    np.savez(out, u=boot.u, fit_u=boot.fit.u, processes=jax.process_count(), devices=jax.device_count())
    jax.distributed.shutdown()
    """
).format(kwargs=KWARGS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_draws_of_one(tmp_path):
    script = tmp_path / "host.py"
    script.write_text(HOST)
    port = _free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "JAX_NUM_CPU_DEVICES": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), "2", str(port), str(tmp_path / f"host{i}.npz")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=600)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    hosts = [np.load(tmp_path / f"host{i}.npz") for i in range(2)]
    assert all(int(h["processes"]) == 2 and int(h["devices"]) == 2 for h in hosts)

    frame = sj.datasets.load_example("chinchilla")
    one = sj.bootstrap("chinchilla", frame, **KWARGS)
    for h in hosts:
        np.testing.assert_array_equal(h["fit_u"], one.fit.u)
        np.testing.assert_array_equal(h["u"], one.u)
