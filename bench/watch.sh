#!/usr/bin/env bash
# Watched-folder benchmarks (latency, 10,000-file burst, idle 50,000-file tree, a 100,000-file
# tree: initial scan, idle, rescans; BENCH_BIG=1: 1,000,000); prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p dropkey --quiet
exec python3 bench/watch.py
