#!/usr/bin/env python3
"""Python multiprocessing baselines for the queue and pipe rows of the
README's benchmark table, with only the standard library:

  * multiprocessing.Queue, 1 producer -> 1 consumer process, 64-byte and
    4 KiB bytes messages                                 (messages/s, bytes/s)
  * multiprocessing.Queue, 2 producers -> 2 consumers, 64 bytes  (total messages/s)
  * multiprocessing.Pipe, 64-byte ping-pong               (median round trip)

Usage: python3 bench/python_queue.py [--seconds S]
Each figure is the median of 3 runs; every run checks its result (count
and sum of sequence numbers). The clock starts once every process is up.
"""
import argparse
import multiprocessing as mp
import statistics
import struct
import time


def _produce(q, n, size, start):
    pad = b"x" * (size - 8)
    start.wait()
    for i in range(n):
        q.put(struct.pack("<q", i) + pad)


def _consume(q, results, start):
    start.wait()
    count = total = 0
    while True:
        m = q.get()
        if m is None:
            break
        count += 1
        total += struct.unpack_from("<q", m)[0]
    results.put((count, total))


def queue_throughput(producers, consumers, n, size):
    q, results = mp.Queue(), mp.Queue()
    start = mp.Barrier(producers + consumers + 1)
    per = n // producers
    ps = [mp.Process(target=_produce, args=(q, per, size, start)) for _ in range(producers)]
    cs = [mp.Process(target=_consume, args=(q, results, start)) for _ in range(consumers)]
    for p in ps + cs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in ps:
        p.join()
    for _ in cs:
        q.put(None)
    got = [results.get() for _ in cs]
    took = time.perf_counter() - t0
    for c in cs:
        c.join()
    count, total = sum(g[0] for g in got), sum(g[1] for g in got)
    assert count == per * producers, (count, per * producers)
    assert total == producers * per * (per - 1) // 2, total
    return count / took


def _echo(conn, n):
    conn.send_bytes(b"ready")
    for _ in range(n):
        m = conn.recv_bytes()
        i = struct.unpack_from("<q", m)[0]
        conn.send_bytes(struct.pack("<q", i + 1) + m[8:])


def pipe_pingpong(n):
    a, b = mp.Pipe()
    p = mp.Process(target=_echo, args=(b, n))
    p.start()
    assert a.recv_bytes() == b"ready"
    pad = b"x" * 56
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        a.send_bytes(struct.pack("<q", i) + pad)
        m = a.recv_bytes()
        lat.append(time.perf_counter() - t0)
        assert struct.unpack_from("<q", m)[0] == i + 1
    p.join()
    return statistics.median(lat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0, help="target length of each run")
    args = ap.parse_args()

    def sized(f, rate_guess):
        return max(1000, int(rate_guess * args.seconds))

    rows = [
        ("mp.Queue 64 B, 1 -> 1 (msg/s)", lambda: queue_throughput(1, 1, sized(None, 150e3), 64), 1),
        ("mp.Queue 4 KiB, 1 -> 1 (msg/s)", lambda: queue_throughput(1, 1, sized(None, 60e3), 4096), 1),
        ("mp.Queue 64 B, 2 -> 2 (msg/s, total)", lambda: queue_throughput(2, 2, sized(None, 150e3), 64), 1),
        ("mp.Pipe ping-pong 64 B (median round trip, us)", lambda: pipe_pingpong(sized(None, 20e3)), 1e6),
    ]
    print(f"Python {'.'.join(map(str, __import__('sys').version_info[:3]))}, median of 3 runs")
    for name, f, scale in rows:
        vals = [f() * scale for _ in range(3)]
        med = statistics.median(vals)
        extra = ""
        if "4 KiB" in name:
            extra = f"  ({med * 4096 / 1e9:.3f} GB/s)"
        print(f"{name:50s} {med:14.1f}{extra}   runs: {', '.join(f'{v:.1f}' for v in vals)}")


if __name__ == "__main__":
    main()
