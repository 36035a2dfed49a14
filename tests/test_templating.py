"""Links the templates build are remembered per process, and still right under any prefix."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from inbox.models import Role
from inbox.templating import remembering_url_for
from tests.conftest import login, make_user


def links(body: str) -> set[str]:
    return set(re.findall(r'(?:href|action)="([^"#?]+)', body))


def test_pages_served_under_two_prefixes_link_within_their_own(
    client: FlaskClient, session: Session
) -> None:
    agent = make_user(session, role=Role.agent)
    assert login(client, agent.email).status_code == 302
    seen: dict[str, set[str]] = {}
    for prefix in ("/team-a", "/team-b", "/team-a"):
        response = client.get("/conversations", base_url=f"http://localhost{prefix}")
        assert response.status_code == 200
        found = {link for link in links(response.get_data(as_text=True)) if link.startswith("/")}
        assert "/conversations" not in found
        assert f"{prefix}/conversations" in found
        assert all(link.startswith(prefix + "/") for link in found), found
        seen.setdefault(prefix, found)
        assert found == seen[prefix]


def test_arguments_it_cannot_remember_still_build_the_right_url(app: Flask) -> None:
    url_for = remembering_url_for(app)
    with app.test_request_context("/"):
        assert url_for("agent.thread", conversation_id=7) == "/conversations/7"
        assert url_for("agent.thread", conversation_id=8) == "/conversations/8"
        assert url_for("agent.conversations", view=["open", "mine"]) == (
            "/conversations?view=open&view=mine"
        )
        assert url_for("agent.thread", conversation_id=7, _anchor="end").endswith("/7#end")
        assert url_for("agent.thread", conversation_id=7, _external=True) == (
            "http://localhost/conversations/7"
        )
