#!/usr/bin/env bash
# The history search benchmark (issue 16, history part): 1,000,000 finished uploads in a fresh
# job database, then `Store::history_search` for the History screen's and `dropkey history`'s
# queries (empty first page, a word, a prefix, two words, profile and kind filters, deep
# pages), 60 runs each; prints p50/p99 per query as a Markdown table and exits 1 when a p99
# misses 100 ms. Usage: bench/history.sh   (release build; DROPKEY_BENCH_ROWS=100000 for a
# smaller history, DROPKEY_BENCH_RUNS=200 for more runs; the database goes under $TMPDIR)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo bench -p dropkey-core --bench history --quiet
