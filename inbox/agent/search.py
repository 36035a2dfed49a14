"""Search across the messages, contacts and tags of the conversations agents work on."""

from __future__ import annotations

from flask import render_template, request
from flask_babel import format_number

from inbox import db
from inbox.agent import AGENT_ROLES, bp, visible_account_ids
from inbox.auth import audit_request, roles_required
from inbox.search import NAME_MIN, ORDERS, SCAN, Order, parse_query, search_conversations

# Longer input is cut: nobody types more, and it keeps the database's query small.
_MAX_QUERY = 200


def _order() -> Order:
    wanted = request.args.get("order", "newest")
    return next((order for order in ORDERS if order == wanted), "newest")


@bp.get("/search")
@roles_required(*AGENT_ROLES)
def search() -> str:
    """Conversations whose messages, contact or tags match what the agent typed."""
    q = request.args.get("q", "")[:_MAX_QUERY].strip()
    tag = request.args.get("tag", "")[:64].strip()
    order = _order()
    page = {
        "q": q,
        "tag": tag,
        "order": order,
        "orders": ORDERS,
        "scan": format_number(SCAN),
        "name_min": NAME_MIN,
    }
    if not q and not tag:
        return render_template("agent/search.html", results=None, **page)
    session = db.session()
    # Agents find only what is on their own accounts, as in the list and thread views.
    results = search_conversations(
        session=session,
        query=parse_query(q, tags=[tag]),
        order=order,
        account_ids=visible_account_ids(),
    )
    # Queries may hold names and other personal data: only their length is kept.
    audit_request(
        action="search",
        target_type="search",
        target_id=None,
        detail={"query_length": len(q), "tag_filter": bool(tag), "results": len(results.hits)},
    )
    session.commit()
    return render_template("agent/search.html", results=results, **page)
