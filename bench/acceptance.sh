#!/usr/bin/env bash
# The whole-command acceptance rows of issue 31 (and issue 22's big documents), before and after,
# in one command, for a quiet machine (results with a 1-minute load average at or above the
# number of cores are marked invalid by the suites themselves):
#
#   npm run bench:accept                  (= bash bench/acceptance.sh)
#
# 1. waits until the 1-minute load average is below the number of cores (at most
#    OPD_BENCH_WAIT seconds, default 900; then it runs anyway and the rows say "invalid");
# 2. builds this checkout and runs the suites wholecmd (rows 1-4: --version, validate demo,
#    validate 10,000 ports YAML/JSON, no-op diff of 1,000 ports, cold apply of 10,000 ports),
#    ansible (row 5: 20 bridges + 20 ports, first converge and no-op rerun) and parse (issue 22:
#    40,000 keys, 30 MB documents, the daemon's event loop) → bench/results/<suite>.json;
# 3. builds the "before" commit (OPD_BENCH_BEFORE, default 4c7ddb8: main just before issue 31's
#    work) from `git archive` in a temporary directory (this checkout's node_modules linked in)
#    and runs wholecmd against it → bench/results/wholecmd.before.json (OPD_BENCH_BEFORE=none
#    skips it);
# 4. prints the tables (bench/summary.mjs): every row after, and before beside after.
#
# OPD_BENCH_SUITES (default "wholecmd ansible parse") and OPD_BENCH_PAIRS (default 7) narrow or
# widen it. Ansible is installed from Debian's mirror by the ansible suite when it is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CORES=$(nproc)
WAIT=${OPD_BENCH_WAIT:-900}
BEFORE=${OPD_BENCH_BEFORE:-4c7ddb8}
SUITES=${OPD_BENCH_SUITES:-wholecmd ansible parse}

load1() { cut -d' ' -f1 /proc/loadavg; }
quiet() { awk -v l="$(load1)" -v c="$CORES" 'BEGIN { exit !(l < c) }'; }

waited=0
until quiet; do
  if ((waited >= WAIT)); then
    echo "bench:accept: load average $(load1) is still >= $CORES cores after ${WAIT} s; running anyway (rows will say invalid)" >&2
    break
  fi
  ((waited % 60 == 0)) && echo "bench:accept: load average $(load1) >= $CORES cores; waiting for a quiet machine…" >&2
  sleep 10
  waited=$((waited + 10))
done
echo "bench:accept: load average $(load1) ($CORES cores) at $(date -u +%H:%M:%SZ)" >&2

# shellcheck disable=SC2086
npm run --silent bench -- $SUITES

if [ "$BEFORE" != none ]; then
  dir=$(mktemp -d /tmp/opd-bench-before-XXXXXX)
  trap 'rm -rf "$dir"' EXIT
  git -C "$ROOT" archive "$BEFORE" | tar -x -C "$dir"
  ln -s "$ROOT/node_modules" "$dir/node_modules"
  (cd "$dir" && npm run --silent build >/dev/null)
  echo "bench:accept: before = $(git -C "$ROOT" log --oneline -1 "$BEFORE")" >&2
  OPD_BENCH_BIN="$dir/bin/opd.js" OPD_BENCH_LABEL=before node --expose-gc bench/run.mjs wholecmd
fi

echo "bench:accept: load average $(load1) at the end, $(date -u +%H:%M:%SZ)" >&2
# shellcheck disable=SC2086
node bench/summary.mjs $SUITES
