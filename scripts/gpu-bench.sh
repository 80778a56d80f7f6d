#!/usr/bin/env bash
# One script for a GPU machine with a short lease (the device tool: about 15 minutes in all):
# the adapter, then the benchmark suites in order of importance, each under its own time limit,
# every result kept as JSON in $OUT (or bench-results/). Run from the project root after
# `../shared/tools/gpu-bundle` here and `source .gpu/setup.sh` there.
#   bash scripts/gpu-bench.sh [seconds per suite, default 120]
set -uo pipefail
limit=${1:-120}
out=${OUT:-bench-results}
mkdir -p "$out"
run() { # name, command...
  local name=$1; shift
  echo "=== $name (limit ${limit}s)"
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.log" | tail -40
}
run doctor bun run abft doctor
run kernels-matmul bun run bench kernels --full --filter matmul
run kernels-attention bun run bench kernels --full --filter attention
run eval bun run bench eval --full
run abft bun run bench abft --full
run quant bun run bench quant --full
run models bun run bench models --full
run kernels-rest bun run bench kernels --full
cp bench-results/*.json "$out/" 2>/dev/null || true
echo "results in $out"
