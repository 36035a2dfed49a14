"""Small-cell protection for report tables: suppression below k authors, optional Laplace noise.

A cell is built from rollup rows, each with its own exact count of distinct authors. Distinct
counts do not add up across rows (one author may write on several days, in several channels),
so a cell's author count is only known from below: the largest count of any one row in it. A
cell is suppressed when that lower bound is under k. This may hide a cell that had k authors,
never shows one that had fewer.

Totals are sums of the shown cells only, so subtracting shown cells from a total gives zero and
never a suppressed cell.

Noise, when an epsilon is set, is Laplace(1/epsilon) on each shown count (one record changes a
count by one), rounded and clipped at zero. It is drawn from a generator seeded by an HMAC of a
server secret, the report and the cell: reloading the page shows the same numbers, so a reader
cannot average fresh draws away, and without the secret the noise cannot be recomputed and
subtracted. It protects records, not authors: someone who writes many messages moves a count
by more than one.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Protection:
    """The protections a report applies: minimum authors per cell and optional noise."""

    k: int = 5
    epsilon: float | None = None
    secret: bytes = b""


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell's true count and the lower bound of its distinct authors."""

    count: int
    authors: int


@dataclass(frozen=True, slots=True)
class Shown:
    """What a reader may see of a cell: a number, or None when it is suppressed."""

    value: int | None

    @property
    def suppressed(self) -> bool:
        """Whether the cell shows "< k" instead of a number."""
        return self.value is None


def merge(cells: Iterable[Cell]) -> Cell:
    """One cell from several rollup rows: counts add up, authors take the largest row's."""
    count = authors = 0
    for cell in cells:
        count += cell.count
        authors = max(authors, cell.authors)
    return Cell(count=count, authors=authors)


def laplace(*, seed: bytes, scale: float) -> float:
    """A Laplace(0, scale) draw determined by the seed."""
    generator = random.Random(int.from_bytes(seed[:16], "big"))  # noqa: S311 - seeded on purpose
    u = generator.random() - 0.5
    # Inverse CDF; u == -0.5 would give log(0), so it is nudged inside the interval.
    return -scale * math.copysign(1.0, u) * math.log(max(1e-12, 1 - 2 * abs(u)))


def seed_for(*, secret: bytes, report: str, cell: Hashable) -> bytes:
    """The noise seed of one cell of one report, secret to the server."""
    message = f"{report}\x1f{cell!r}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def protect(*, cell: Cell, protection: Protection, report: str, key: Hashable) -> Shown:
    """The shown value of one cell under the given protections."""
    if cell.authors < protection.k or cell.count <= 0:
        return Shown(None) if cell.count > 0 else Shown(0)
    if protection.epsilon is None:
        return Shown(cell.count)
    noise = laplace(
        seed=seed_for(secret=protection.secret, report=report, cell=key),
        scale=1 / protection.epsilon,
    )
    return Shown(max(0, round(cell.count + noise)))


def protect_all(*, cells: Mapping[K, Cell], protection: Protection, report: str) -> dict[K, Shown]:
    """Every cell of a table protected."""
    return {
        key: protect(cell=cell, protection=protection, report=report, key=key)
        for key, cell in cells.items()
    }


def total(values: Iterable[Shown]) -> int:
    """The sum of the shown cells: suppressed ones count as nothing, so none can be recovered."""
    return sum(shown.value for shown in values if shown.value is not None)
