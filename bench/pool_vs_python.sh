#!/usr/bin/env bash
# Measures the pool rows of the README against Python's Pool in the same
# run: ROUNDS rounds (default 6), each running, one after the other, the
# Go benchmarks of package pool once, xproc bench's pool-ready row (the
# start-up of a pool in an ordinary program, which, unlike the test
# binary, does not link testify and net/http) and bench/python_pool.py
# (3 runs, their median). Go and Python thus see the machine alike; the summary gives the
# median and the lowest and highest round of each figure.
#
# Usage: bash bench/pool_vs_python.sh [ROUNDS] > bench/pool-vs-python.txt
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-6}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/pool.test" ./pool
go build -o "$tmp/xproc" ./cmd/xproc
for r in $(seq "$rounds"); do
	echo "# round $r" >&2
	(cd pool && "$tmp/pool.test" -test.run '^$' -test.bench 'Ready|MapAuto|MapChunk1|ImapChunk1|ImapAuto' -test.benchtime=2s) >>"$tmp/go.txt"
	(cd pool && "$tmp/pool.test" -test.run '^$' -test.bench 'Pi' -test.benchtime=10x) >>"$tmp/go.txt"
	"$tmp/xproc" bench -runs 3 pool-ready >>"$tmp/xproc.txt"
	python3 bench/python_pool.py --runs 3 >>"$tmp/python.txt"
done
echo "## raw: go test (package pool)"
cat "$tmp/go.txt"
echo "## raw: xproc bench pool-ready (median of 3 runs each round)"
grep -E '^pool-ready +ms ' "$tmp/xproc.txt"
echo "## raw: python3 bench/python_pool.py --runs 3 (median of 3 each round)"
grep -v '^Python' "$tmp/python.txt"
echo "## summary: median (lowest round - highest round) over $rounds rounds"
python3 - "$tmp" <<'PY'
import re, statistics, sys
tmp = sys.argv[1]
figs = {}
def add(k, v):
    figs.setdefault(k, []).append(float(v))
for line in open(f"{tmp}/go.txt"):
    m = re.match(r"Benchmark(\w+)-\d+\s+\d+\s+\S+ ns/op\s+(.*)", line)
    if m:
        for v, unit in re.findall(r"([\d.]+) (\S+)", m.group(2)):
            add(f"go {m.group(1)} {unit}", v)
for line in open(f"{tmp}/xproc.txt"):
    f = line.split()
    if len(f) > 4 and f[0] == "pool-ready" and f[1] == "ms":
        add("xproc-program pool-ready ms (median of 3)", f[4])
for line in open(f"{tmp}/python.txt"):
    m = re.match(r"(\w+): median=([\d.]+) .*unit=(\S+)", line)
    if m:
        add(f"python {m.group(1)} {m.group(3)}", m.group(2))
for k, vs in figs.items():
    print(f"{k}: {statistics.median(vs):.4g} ({min(vs):.4g} - {max(vs):.4g}) n={len(vs)}")
PY
