#!/usr/bin/env bash
# Holds the app's shell thin (ARCHITECTURE.md, "the app's shell is adapters only"): src-tauri's
# Rust outside test modules under 2,000 lines, and no file over 400. A file's lines count up to
# its first `#[cfg(test)]` (test modules sit at the end of a file, by convention here).
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_TOTAL=2000
MAX_FILE=400
total=0
status=0
while IFS= read -r file; do
  lines=$(awk '/#\[cfg\(test\)\]/{exit} {n++} END{print n+0}' "$file")
  total=$((total + lines))
  if [ "$lines" -gt "$MAX_FILE" ]; then
    echo "shell size: $file has $lines lines outside tests (at most $MAX_FILE): move its rules to crates/desktop or the core" >&2
    status=1
  fi
done < <(find src-tauri/src -name '*.rs' | sort)
if [ "$total" -ge "$MAX_TOTAL" ]; then
  echo "shell size: src-tauri has $total lines outside tests (under $MAX_TOTAL): move rules to crates/desktop or the core" >&2
  status=1
fi
echo "shell size: src-tauri $total lines outside tests (limit $MAX_TOTAL, $MAX_FILE a file)" >&2
exit "$status"
