#!/usr/bin/env bash
# The offline benchmark (issue 14): a watched folder on a sandbox that goes down for 60 s while
# 100 files are written into the folder, then comes back. Prints, per run and as medians: the
# time from the sandbox's return until all 100 landed, duplicates, files needing attention, and
# the CPU `dropkey watch` used while offline.
# Usage: bench/offline.sh   (release build; BENCH_RUNS=3, BENCH_OUTAGE=60, BENCH_FILES=100)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p dropkey --quiet
exec python3 bench/offline.py
