"""Small-cell protection for report tables: suppression below k authors, optional Laplace noise.

A cell is built from rollup rows, each with its own exact count of distinct authors. Distinct
counts do not add up across rows (one author may write on several days, in several channels),
so a cell's author count is only known from below: the largest count of any one row in it. A
cell is suppressed when that lower bound is under k. This may hide a cell that had k authors,
never shows one that had fewer.

Totals are sums of the shown cells only, so subtracting shown cells from a total gives zero and
never a suppressed cell. Tables on one page share totals, though: the day's volume is the sum of
that day's sentiment cells, the period's volume the sum of the language split and of the hour
grid. A reader who knows such a total (from another table, or from another report) could
subtract the shown cells of a group and get a lone hidden cell back. So every group of cells
whose sum a reader may know is treated as if its sum were published, and more cells are hidden
(secondary suppression, `suppress_secondary`) until each group has no hidden cell, or at least
two whose counts together reach k, and no hidden cell can be solved for from all the groups
together: subtraction then gives only a sum of several hidden cells, not large enough to single
anyone out.

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
from collections.abc import Hashable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

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
    # Hidden although it has k authors, so that another hidden cell cannot be worked out.
    secondary: bool = False

    @property
    def suppressed(self) -> bool:
        """Whether the cell is hidden ("< k", or a secondary suppression)."""
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


@dataclass(frozen=True, slots=True)
class Relation:
    """Cells that add up to a sum: the `parts` add up to the `whole` cells, or to a number a
    reader may know from elsewhere when `whole` is empty (a period's total, say)."""

    parts: tuple[Hashable, ...]
    whole: tuple[Hashable, ...] = ()


# A prime for solving the relations exactly in modular arithmetic: their coefficients are 0 and
# ±1, far too small for a 61-bit prime to turn a dependent set of rows independent.
_PRIME = (1 << 61) - 1


def determined(relations: Sequence[Relation], hidden: set[Hashable]) -> set[Hashable]:
    """The hidden cells a reader can work out exactly from the shown ones and the relations.

    Each relation is a linear equation over the cells; shown cells are known numbers. A hidden
    cell is determined when its unit vector lies in the row space of the equations restricted
    to the hidden cells: in the fully reduced echelon form, a row with a single entry.
    """
    basis: list[tuple[Hashable, dict[Hashable, int]]] = []
    for relation in relations:
        row: dict[Hashable, int] = {}
        for key in relation.parts:
            if key in hidden:
                row[key] = (row.get(key, 0) + 1) % _PRIME
        for key in relation.whole:
            if key in hidden:
                row[key] = (row.get(key, 0) - 1) % _PRIME
        row = {key: value for key, value in row.items() if value}
        for pivot, reduced in basis:
            _subtract(row, reduced, row.get(pivot, 0))
        if not row:
            continue
        pivot = min(row, key=repr)
        inverse = pow(row[pivot], _PRIME - 2, _PRIME)
        row = {key: value * inverse % _PRIME for key, value in row.items()}
        for _, reduced in basis:
            _subtract(reduced, row, reduced.get(pivot, 0))
        basis.append((pivot, row))
    return {pivot for pivot, row in basis if len(row) == 1}


def _subtract(row: dict[Hashable, int], other: dict[Hashable, int], factor: int) -> None:
    # row -= factor × other, in place, dropping zeros.
    if not factor:
        return
    for key, value in other.items():
        new = (row.get(key, 0) - factor * value) % _PRIME
        if new:
            row[key] = new
        else:
            row.pop(key, None)


def suppress_secondary(
    *,
    relations: Sequence[Relation],
    cells: Mapping[Any, Cell],
    shown: MutableMapping[Any, Shown],
    k: int,
) -> list[Hashable]:
    """Hide more cells until no hidden one can be worked out from the others; those hidden.

    Two rules, applied until neither changes anything:
    - a relation whose whole is known (a number from elsewhere, or shown cells) must hide none
      of its parts, or at least two whose counts together reach k, so that subtraction gives
      neither a single hidden cell nor a small sum of them;
    - across all relations together, no hidden cell may be determined (a day hidden in the
      volume can come back as the sum of that day's sentiment cells, say).
    The smallest shown non-zero cell of the offending relation is hidden each time, so the same
    data always hides the same cells.
    """
    added: list[Hashable] = []

    def hide_smallest(keys: Iterable[Hashable]) -> bool:
        candidates = [
            key
            for key in keys
            if key in shown and not shown[key].suppressed and cells[key].count > 0
        ]
        if not candidates:
            return False
        pick = min(candidates, key=lambda key: (cells[key].count, repr(key)))
        shown[pick] = Shown(None, secondary=True)
        added.append(pick)
        return True

    def too_few_hidden(relation: Relation) -> bool:
        if any(shown[key].suppressed for key in relation.whole):
            return False  # the sum is unknown; the linear check covers it
        hidden = [key for key in relation.parts if shown[key].suppressed]
        small = sum(cells[key].count for key in hidden) < k
        return bool(hidden) and (len(hidden) < 2 or small)

    given_up: set[Hashable] = set()
    while True:
        changed = False
        for relation in relations:
            if too_few_hidden(relation):
                changed |= hide_smallest(relation.parts)
        if changed:
            continue
        hidden_keys: set[Hashable] = {key for key, value in shown.items() if value.suppressed}
        exposed = sorted(determined(relations, hidden_keys) - given_up, key=repr)
        if not exposed:
            return added
        target = exposed[0]
        involved = [r for r in relations if target in r.parts or target in r.whole]
        involved.sort(key=lambda r: sum(key in hidden_keys for key in (*r.parts, *r.whole)))
        if not any(hide_smallest((*r.parts, *r.whole)) for r in involved):
            given_up.add(target)  # only zeros around it: nothing left to hide
