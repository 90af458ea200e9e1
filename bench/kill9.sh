#!/usr/bin/env bash
# What `kill -9` loses: builds the release sentinel, then bench/kill9.py kills
# it with SIGKILL at random moments against a local target and compares the
# runs the target served with the runs the state file holds. ~2 minutes.
#
#   bench/kill9.sh                  # 20 kills, 10 checks every 100 ms
#   bench/kill9.sh --kills 5 --seed 1
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin sentinel
python3 bench/kill9.py "$@"
