"""How fast the demo comes up: seconds from `socialcare demo` to a served login page, to the
first conversation in the inbox, and to the first anonymized record in the research store.

    .venv/bin/python bench/demo_startup.py [--runs 5]

The product promise is that an agent sees conversations within 10 seconds of start.
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _count(database: Path, table: str) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def _serves(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def one_run() -> dict[str, float]:
    """Start the demo once and time its milestones."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        command = [str(Path(sys.executable).with_name("socialcare")), "demo"]
        command += ["--instance", str(instance), "--port", str(port)]
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        marks: dict[str, float] = {}
        try:
            while len(marks) < 3 and time.monotonic() - started < TIMEOUT:
                now = time.monotonic() - started
                if "login page served" not in marks and _serves(port):
                    marks["login page served"] = now
                if "first conversation" not in marks and _count(
                    instance / "inbox.db", "conversation"
                ):
                    marks["first conversation"] = now
                if "first research record" not in marks and _count(
                    instance / "research.db", "research_record"
                ):
                    marks["first research record"] = now
                time.sleep(0.05)
        finally:
            process.terminate()
            process.wait(timeout=10)
    return marks


def main() -> None:
    """Run the demo several times and print each milestone's median and worst time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = [one_run() for _ in range(parser.parse_args().runs)]
    print(f"socialcare demo start-up, {len(runs)} runs (seconds from process start)")
    for milestone in ("login page served", "first conversation", "first research record"):
        times = [run[milestone] for run in runs if milestone in run]
        if len(times) < len(runs):
            print(f"  {milestone:<24} not reached within {TIMEOUT:.0f} s in some runs")
            continue
        print(f"  {milestone:<24} median {statistics.median(times):5.2f}   max {max(times):5.2f}")


if __name__ == "__main__":
    main()
