#!/usr/bin/env python3
"""Python multiprocessing baselines for the README's benchmark table.

Measures, with only the standard library, what Python users get for the
same workloads xproc's benchmarks run (two processes each time):

  * lock + increment + unlock of a multiprocessing.Value   (ops/s, total)
  * multiprocessing.Event ping-pong                         (median round trip)
  * multiprocessing.Barrier(2) rounds                       (rounds/s)
  * hogwild passes over a 1M-element RawArray('d')          (element updates/s, total)

Usage: python3 bench/python_baseline.py [--seconds S]
Each figure is the median of 3 runs; every run checks its result.
"""
import argparse
import multiprocessing as mp
import statistics
import time


def _count(v, n, start):
    start.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def value_lock(n):
    v = mp.Value("q", 0)
    start = mp.Barrier(3)
    ps = [mp.Process(target=_count, args=(v, n, start)) for _ in range(2)]
    for p in ps:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in ps:
        p.join()
    took = time.perf_counter() - t0
    assert v.value == 2 * n, (v.value, 2 * n)
    return 2 * n / took


def _pong(a, b, n):
    for _ in range(n):
        a.wait()
        a.clear()
        b.set()


def event_pingpong(n):
    a, b = mp.Event(), mp.Event()
    p = mp.Process(target=_pong, args=(a, b, n))
    p.start()
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        a.set()
        b.wait()
        b.clear()
        lat.append(time.perf_counter() - t0)
    p.join()
    return statistics.median(lat)


def _rounds(bar, n):
    for _ in range(n):
        bar.wait()


def barrier(n):
    bar = mp.Barrier(2)
    p = mp.Process(target=_rounds, args=(bar, n))
    p.start()
    t0 = time.perf_counter()
    _rounds(bar, n)
    took = time.perf_counter() - t0
    p.join()
    return n / took


def _hogwild(arr, passes, start):
    mv = memoryview(arr).cast("B").cast("d")
    start.wait()
    for _ in range(passes):
        for i in range(len(mv)):
            mv[i] += 1.0


def hogwild(passes, size=1 << 20):
    arr = mp.RawArray("d", size)
    start = mp.Barrier(3)
    ps = [mp.Process(target=_hogwild, args=(arr, passes, start)) for _ in range(2)]
    for p in ps:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in ps:
        p.join()
    took = time.perf_counter() - t0
    total = sum(memoryview(arr).cast("B").cast("d"))
    assert total <= 2 * passes * size  # hogwild may lose updates
    return 2 * passes * size / took


def measure(fn, n, seconds):
    """Run fn(n) three times, sizing n to take about `seconds`."""
    results = []
    for _ in range(3):
        t0 = time.perf_counter()
        results.append(fn(n))
        took = time.perf_counter() - t0
        n = max(1, int(n * seconds / max(took, 1e-3)))
    return statistics.median(results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    s = ap.parse_args().seconds
    mp.set_start_method("fork")
    print(f"python {'.'.join(map(str, __import__('sys').version_info[:3]))}, 2 processes, median of 3")
    print(f"Value + get_lock increments: {measure(value_lock, 20000, s) / 1e6:.3f} Mops/s")
    print(f"Event ping-pong round trip:  {measure(event_pingpong, 2000, s) * 1e6:.1f} us (median)")
    print(f"Barrier(2) rounds:           {measure(barrier, 2000, s) / 1e3:.2f} k/s")
    print(f"hogwild RawArray updates:    {measure(hogwild, 1, s) / 1e6:.1f} M/s")


if __name__ == "__main__":
    main()
