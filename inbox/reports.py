"""Marketing's reports, read from the research store only."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, render_template, request

from anonymizer.store import daily_volume
from inbox import db
from inbox.auth import roles_required
from inbox.models import Role
from inbox.types import utcnow

bp = Blueprint("reports", __name__, url_prefix="/reports")
RANGES = (7, 30, 90)


@bp.get("")
@roles_required(Role.marketing, Role.admin)
def index() -> str:
    """Messages per day and channel over the chosen range."""
    days = request.args.get("days", type=int) or 30
    days = days if days in RANGES else 30
    # Whole UTC days, today included: a range of 7 shows exactly seven days.
    today = utcnow().replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    since, until = today - timedelta(days=days - 1), today + timedelta(days=1)
    volumes = daily_volume(session=db.research_session(), since=since, until=until)
    kinds = sorted({volume.channel_kind for volume in volumes})
    table: dict[str, dict[str, int]] = {}
    for volume in volumes:
        table.setdefault(volume.day.isoformat(), {})[volume.channel_kind] = volume.count
    peak = max((sum(counts.values()) for counts in table.values()), default=0)
    return render_template(
        "reports/index.html", table=table, kinds=kinds, days=days, ranges=RANGES, peak=peak
    )
