"""Sharding across devices: 4 simulated CPU devices give bitwise the same draws as 1.

The 4-device run is a subprocess, because the device count is fixed when JAX
starts (`XLA_FLAGS=--xla_force_host_platform_device_count=4`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

import scalejax as sj

STARTS = {"E": [1.5, 2.0], "A": [300.0, 600.0], "B": [1000.0, 3000.0], "alpha": [0.3, 0.4], "beta": [0.3, 0.4]}
RUN = textwrap.dedent(
    """
    import sys, jax, numpy as np, scalejax as sj
    starts = {starts!r}
    frame = sj.datasets.load_example("chinchilla")
    boot = sj.bootstrap("chinchilla", frame, x={{"N": "N", "D": "D"}}, y="loss", n=30, seed=11,
                        starts=starts, lanes_per_call=16)
    np.savez(sys.argv[1], u=boot.u, fit_u=boot.fit.u, devices=jax.device_count())
    """
).format(starts=STARTS)


def test_four_devices_give_the_same_draws_as_one(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RUN)
    out = tmp_path / "four.npz"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(script), str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    four = np.load(out)
    assert int(four["devices"]) == 4

    assert jax.device_count() == 1
    frame = sj.datasets.load_example("chinchilla")
    one = sj.bootstrap(
        "chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=30, seed=11, starts=STARTS, lanes_per_call=16
    )
    np.testing.assert_array_equal(four["fit_u"], one.fit.u)
    np.testing.assert_array_equal(four["u"], one.u)
