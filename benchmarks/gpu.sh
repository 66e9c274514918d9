#!/usr/bin/env bash
# Run scalejax's speed benchmarks on a GPU machine and write their results to one folder, in a few minutes.
#
#   bash benchmarks/gpu.sh [OUT_DIR]
#
# OUT_DIR defaults to $OUT, else benchmarks/gpu-results. The real data are read from $DATA (default
# ../shared/data; on a machine without it, copy chinchilla_epoch/ into a folder and point DATA at it).
# Needs a Python with jax (CUDA), numpyro, equinox, optax, pandas, scipy, tqdm and optimistix; scalejax
# itself is installed from this checkout without touching the network. Each step has its own time
# limit, so one slow step cannot eat the others' time; every step's output goes to OUT_DIR/<step>.md,
# its errors to OUT_DIR/<step>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-benchmarks/gpu-results}}"
DATA="${DATA:-../shared/data}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1

if ! (cd / && "$PY" -c "import scalejax") 2>/dev/null; then
    "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$OUT_DIR/install.log" 2>&1 \
        || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

{
    echo "# Environment"
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "nvidia-smi: not found"
    "$PY" - <<'EOF'
import os, platform, jax, numpy, scipy
print(f"python {platform.python_version()}, jax {jax.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}")
print(f"backend {jax.default_backend()}, devices {jax.devices()}, cpus {os.cpu_count()}, load {os.getloadavg()}")
try:
    import optimistix
    print(f"optimistix {optimistix.__version__}")
except ImportError:
    print("optimistix: not installed")
EOF
} >"$OUT_DIR/env.md" 2>&1

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    local start=$SECONDS
    timeout "$limit" "$@" >"$OUT_DIR/$name.md" 2>"$OUT_DIR/$name.log"
    echo "   exit $? after $((SECONDS - start)) s ($(wc -l <"$OUT_DIR/$name.md") lines)"
}

CHIN="$DATA/chinchilla_epoch/svg_extracted_data.csv"
# About nine minutes at most. The grid fit: both strategies on the GPU, SciPy on the host's CPU
# (tight tolerances on all 4,500 starts take about a minute; finite differences on 100 starts,
# extrapolated).
step fit_grid 130 "$PY" benchmarks/fit_grid.py --data "$CHIN" --fd-starts 100 --repeats 3
# The bootstrap against optimistix's LM, vmapped over the same resamples, and at large n.
step bootstrap_optimistix 80 "$PY" benchmarks/bootstrap_optimistix.py --data "$CHIN" --n 4000
step bootstrap_scale 90 "$PY" benchmarks/bootstrap_scale.py --data "$CHIN" --n 4000 100000 1000000
# The default slots per device on this backend against fewer and more.
step bootstrap_slots 50 "$PY" benchmarks/bootstrap_scale.py --data "$CHIN" --n 100000 \
    --lanes-per-call 0 1024 4096 16384 65536
# Many small fits at once.
step batch_tasks 50 "$PY" benchmarks/batch_tasks.py --tasks 300 --scipy-tasks 20
# The command line: a first `scalejax fit` with an empty compilation cache, then two with it filled.
cli() {
    local dir
    dir=$(mktemp -d)
    "$PY" -c "import scalejax as sj, sys; sj.datasets.read_epoch_chinchilla(sys.argv[1]).to_csv(sys.argv[2], index=False)" \
        "$CHIN" "$dir/chinchilla.csv" || return
    echo "| run | wall s |"
    echo "|---|---:|"
    for run in "first (empty cache)" "second (cache filled)" third; do
        local start end
        start=$(date +%s.%N)
        SCALEJAX_CACHE_DIR="$dir/cache" "$PY" -m scalejax.cli fit "$dir/chinchilla.csv" --law chinchilla \
            --x N=N --x D=D --y loss >"$dir/fit.txt" 2>&1 || { cat "$dir/fit.txt" >&2; return 1; }
        end=$(date +%s.%N)
        echo "| $run | $("$PY" -c "print(f'{$end - $start:.3f}')") |"
    done
    cat "$dir/fit.txt"
}
export -f cli
export PY CHIN
step cli 40 bash -c cli
# The real-data checks that the default global strategy reaches the exhaustive grid's best
# objective, on this backend (they skip where ../shared/data is absent).
step tests_global 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_global.py
echo "results in $OUT_DIR"
