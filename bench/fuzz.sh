#!/usr/bin/env bash
# Long run of the fuzz harness in tests/it/fuzz.rs (CI runs a bounded number of
# cases). Usage: bench/fuzz.sh [CASES] [SEED]
#   CASES  cases per target (default 200000 configs; the HTTP/DNS/API targets
#          are capped inside the harness)
#   SEED   base seed (default: random, printed so a failure can be replayed)
# A failure prints the case index; replay it with
#   FUZZ_SEED=<seed> FUZZ_ONLY=<case> FUZZ_TRACE=1 cargo test --release --test it fuzz::
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-200000}
SEED=${2:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}
echo "fuzz: seed $SEED, $CASES cases"
start=$(date +%s)
FUZZ_CASES=$CASES FUZZ_SEED=$SEED cargo test --release --locked --test it -- fuzz:: --nocapture --test-threads 1 2>&1 |
  grep -E 'fuzz:|panicked|test result|case [0-9]+' || true
echo "fuzz: $(( $(date +%s) - start )) s"
