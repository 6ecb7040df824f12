#!/usr/bin/env bash
# The scale benchmark (issue 16, CLI part): `dropkey upload` of 1,000, 10,000 and 100,000 files
# of 2 KiB (and 1,000,000 with BENCH_BIG=1), once with the paths on stdin (`--files-from -`) and
# once as one folder argument, to a `dropkey sandbox --discard` on 127.0.0.1:0, concurrency 8.
# Prints wall time, files/s and peak RSS (GNU time) per run, and checks the targets: peak RSS
# < 64 MiB at every size, files/s at 100,000 >= 90% of files/s at 1,000.
# Usage: bench/scale.sh   (release build; BENCH_REPS=3 runs per size up to 10,000, medians;
# BENCH_DATA_DIR=/some/dir puts Dropkey's queue database there instead of /tmp; BENCH_MODES=stdin
# or folder runs one input mode only)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ -x /usr/bin/time ] || { echo "installing GNU time" >&2; apt-get install -y -qq time >/dev/null; }
cargo build --release -p dropkey --quiet
exec python3 bench/scale.py
