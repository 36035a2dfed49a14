"""prometheus-client's multiprocess folder under gunicorn: prepared at start, compacted as
workers exit.

In multiprocess mode every gunicorn worker keeps its counters and histograms in files named
after its pid, and every scrape reads all files in the folder. Workers are recycled every
hundred thousand requests or so (max_requests), and prometheus-client never removes a dead
worker's counter or histogram files: left alone, the folder grows by two files per recycle and
scrapes slow down until they time out. So when a worker exits, the master folds its values into
one archive file per type and deletes its files; the totals, and so the counters, never go
down. A lock file keeps scrapes from reading the folder halfway through a fold.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Only these are summed across processes, so summing a dead worker's values into an archive
# gives the same totals. (Our process metrics have no gauges: those come from the database.)
_SUMMED_TYPES = ("counter", "histogram")
_ARCHIVE = "archive"
_LOCK = "folder.lock"


def folder() -> Path | None:
    """The multiprocess folder when multiprocess mode is on, else None."""
    configured = os.environ.get(MULTIPROC_ENV)
    return Path(configured) if configured else None


@contextmanager
def locked(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the folder's lock: shared while scraping, exclusive while folding files."""
    with open(path / _LOCK, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare() -> Path:
    """Make the folder ready before gunicorn forks its workers: a private new one when none is
    configured, or the configured one emptied of the last run's files."""
    configured = folder()
    if configured is None:
        created = Path(tempfile.mkdtemp(prefix="socialcare-metrics-"))
        os.environ[MULTIPROC_ENV] = str(created)
        return created
    configured.mkdir(parents=True, exist_ok=True)
    for stale in configured.glob("*.db"):
        stale.unlink()
    return configured


def worker_exited(pid: int) -> None:
    """Fold an exited worker's values into the archive (gunicorn's child_exit hook calls this)."""
    path = folder()
    if path is None:
        return
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict

    multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    with locked(path, exclusive=True):
        for kind in _SUMMED_TYPES:
            dead = path / f"{kind}_{pid}.db"
            if not dead.exists():
                continue
            archive = path / f"{kind}_{_ARCHIVE}.db"
            totals: dict[str, float] = defaultdict(float)
            for source in (archive, dead):
                if source.exists():
                    entries = MmapedDict.read_all_values_from_file(str(source))  # type: ignore[no-untyped-call]
                    for key, value, _stamp, _pos in entries:
                        totals[key] += value
            # Written beside it under a name scrapes ignore, then swapped in at once.
            fresh = path / f"{kind}_{_ARCHIVE}.new"
            fresh.unlink(missing_ok=True)
            written = MmapedDict(str(fresh))  # type: ignore[no-untyped-call]
            for key, value in totals.items():
                written.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
            written.close()  # type: ignore[no-untyped-call]
            os.replace(fresh, archive)
            dead.unlink()
