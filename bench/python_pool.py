#!/usr/bin/env python3
"""Python multiprocessing.Pool baselines for the pool rows of the README's
benchmark table, with only the standard library and the fork start method:

  * Pool(2) ready: from calling multiprocessing.Pool(2) until both workers
    have each run a trivial task (they meet at a Barrier(2), so the two
    tasks run on two distinct workers)                        (ms)
  * pool.map(square, range(200000)), default chunking, Pool(2) (tasks/s)
  * pool.map(square, range(20000), chunksize=1), Pool(2)      (tasks/s)
  * pool.imap(square, range(20000), chunksize=1), consumed     (tasks/s)
  * Monte Carlo pi, 2 blocks of 2,000,000 random.random() samples (a
    seeded random.Random per block) on Pool(2) versus the same blocks
    one after the other in this process      (speed-up, and both times)

Usage: python3 bench/python_pool.py [--runs N]
Each figure is the median of N runs (default 5), printed with the min and
max as one line `name: median=M min=A max=B unit=U runs=N [notes]`.
For every figure but the first the pool is started (and both workers are
seen running) before the clock starts; pools are closed and joined outside
the timed part. Every run checks its result (pids, sum of squares, pi
within 0.01); a failed check exits with status 1.
"""
import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time

MAP_TASKS = 200_000
SMALL_TASKS = 20_000
PI_BLOCKS = 2
PI_SAMPLES = 2_000_000  # per block
BARRIER_TIMEOUT = 60.0


class CheckFailed(Exception):
    pass


def check(ok, what):
    if not ok:
        raise CheckFailed(what)


def square(x):
    return x * x


_barrier = None


def _init(barrier):
    global _barrier
    _barrier = barrier


def _meet(_):
    # Both tasks must be in flight at once, so they run on two workers.
    _barrier.wait(BARRIER_TIMEOUT)
    return os.getpid()


def new_pool():
    """Pool(2) and the instant its two workers are both seen running."""
    bar = mp.Barrier(2)
    t0 = time.perf_counter()
    pool = mp.Pool(2, initializer=_init, initargs=(bar,))
    pids = pool.map(_meet, [0, 1], chunksize=1)
    took = time.perf_counter() - t0
    if len(set(pids)) != 2:
        pool.terminate()
        pool.join()
        raise CheckFailed(f"Pool(2) ready: pids {pids} not two distinct workers")
    return pool, took


def done(pool):
    pool.close()
    pool.join()


def sum_squares(n):
    return (n - 1) * n * (2 * n - 1) // 6


def pool_ready():
    pool, took = new_pool()
    done(pool)
    return took * 1e3


def map_rate(n, chunksize=None):
    pool, _ = new_pool()
    try:
        t0 = time.perf_counter()
        out = pool.map(square, range(n), chunksize=chunksize)
        took = time.perf_counter() - t0
    except BaseException:
        pool.terminate()
        raise
    done(pool)
    check(len(out) == n and sum(out) == sum_squares(n),
          f"pool.map n={n} chunksize={chunksize}: wrong sum of squares")
    return n / took


def imap_rate(n):
    pool, _ = new_pool()
    try:
        t0 = time.perf_counter()
        count = total = 0
        for v in pool.imap(square, range(n), chunksize=1):
            count += 1
            total += v
        took = time.perf_counter() - t0
    except BaseException:
        pool.terminate()
        raise
    done(pool)
    check(count == n and total == sum_squares(n), f"pool.imap n={n}: wrong sum of squares")
    return n / took


def pi_block(args):
    seed, n = args
    rnd = random.Random(seed).random
    inside = 0
    for _ in range(n):
        x, y = rnd(), rnd()
        if x * x + y * y <= 1.0:
            inside += 1
    return inside


def pi_speedup():
    blocks = [(1000 + i, PI_SAMPLES) for i in range(PI_BLOCKS)]
    total = PI_BLOCKS * PI_SAMPLES

    t0 = time.perf_counter()
    serial = [pi_block(b) for b in blocks]
    t_serial = time.perf_counter() - t0

    pool, _ = new_pool()
    try:
        t0 = time.perf_counter()
        parallel = pool.map(pi_block, blocks, chunksize=1)
        t_pool = time.perf_counter() - t0
    except BaseException:
        pool.terminate()
        raise
    done(pool)

    check(parallel == serial, f"pi: pool counts {parallel} != one-process counts {serial}")
    pi = 4.0 * sum(parallel) / total
    check(abs(pi - 3.141592653589793) < 0.01, f"pi estimate {pi} not within 0.01")
    return t_serial / t_pool, t_serial * 1e3, t_pool * 1e3


def line(name, vals, unit, notes=""):
    med = statistics.median(vals)
    s = (f"{name}: median={med:.3f} min={min(vals):.3f} max={max(vals):.3f} "
         f"unit={unit} runs={len(vals)}")
    if notes:
        s += f" {notes}"
    print(s, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (median, min, max)")
    runs = ap.parse_args().runs
    if runs < 1:
        ap.error("--runs must be at least 1")
    mp.set_start_method("fork")

    ver = ".".join(map(str, sys.version_info[:3]))
    print(f"Python {ver}, start method fork, Pool(2), os.cpu_count()={os.cpu_count()}, "
          f"median of {runs} runs", flush=True)
    try:
        line("pool2_ready", [pool_ready() for _ in range(runs)], "ms",
             "(Pool(2) call until both workers ran a task)")
        default_chunk = -(-MAP_TASKS // (2 * 4))  # Pool.map's default: ceil(n / (4 * workers))
        line("map_default_chunk", [map_rate(MAP_TASKS) for _ in range(runs)], "tasks/s",
             f"tasks={MAP_TASKS} chunksize=default({default_chunk})")
        line("map_chunksize1", [map_rate(SMALL_TASKS, 1) for _ in range(runs)], "tasks/s",
             f"tasks={SMALL_TASKS} chunksize=1")
        line("imap_chunksize1", [imap_rate(SMALL_TASKS) for _ in range(runs)], "tasks/s",
             f"tasks={SMALL_TASKS} chunksize=1")
        pis = [pi_speedup() for _ in range(runs)]
        samples = f"samples={PI_BLOCKS}x{PI_SAMPLES}"
        line("pi_speedup", [p[0] for p in pis], "x", f"{samples} (one-process time / pool time)")
        line("pi_one_process", [p[1] for p in pis], "ms", samples)
        line("pi_pool2", [p[2] for p in pis], "ms", f"{samples} chunksize=1")
    except CheckFailed as e:
        print(f"CHECK FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
