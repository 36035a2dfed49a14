"""Latency and throughput of a running `socialcare serve`: probes and the login page.

    socialcare serve --workers 2 --bind 127.0.0.1:8000 &
    .venv/bin/python bench/probes.py --url http://127.0.0.1:8000 --seconds 10 --clients 8

Each client thread keeps one connection open and asks for the same path again and again; the
script prints requests per second and p50/p95/p99 per path. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import threading
import time
from urllib.parse import urlsplit


def _client(host: str, port: int, path: str, until: float, times: list[float]) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    while time.perf_counter() < until:
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.close()


def measure(url: str, path: str, seconds: float, clients: int) -> str:
    """One line of figures for one path."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    times: list[float] = []
    until = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=_client, args=(host, port, path, until, times))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ms = sorted(t * 1000 for t in times)
    cuts = statistics.quantiles(ms, n=100)
    return (
        f"{path:<10} {len(ms) / seconds:8.0f} req/s   p50 {cuts[49]:6.1f} ms   "
        f"p95 {cuts[94]:6.1f} ms   p99 {cuts[98]:6.1f} ms   ({len(ms)} requests)"
    )


def main() -> None:
    """Measure each path in turn."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("paths", nargs="*", default=["/healthz", "/readyz", "/login"])
    args = parser.parse_args()
    for path in args.paths:
        print(measure(args.url, path, args.seconds, args.clients), flush=True)


if __name__ == "__main__":
    main()
