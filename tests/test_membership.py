"""Agents see the conversations of the accounts they are members of, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import MultiFernet
from flask.testing import FlaskClient
from sqlmodel import Session

from connectors import Author
from inbox.ingest import ingest
from inbox.models import Account, Role, User
from tests.conftest import login, make_account, make_item, make_member, make_user

# Search runs on the full-text index the migrations build: the same autouse fixture as there.
from tests.test_search import search_index  # noqa: F401

OURS = "Ottilie Eigenbrodt"
THEIRS = "Theodor Fremdling"


@pytest.fixture
def agent(session: Session) -> User:
    return make_user(session, role=Role.agent, name="Jana Schneider")


@pytest.fixture
def accounts(session: Session, fernet: MultiFernet, agent: User) -> tuple[Account, Account]:
    """The agent's account and a second brand's account the agent does not work on."""
    ours = make_account(session, fernet)
    theirs = Account(
        platform="demo",
        display_name="Andere Marke",
        platform_account_id="demo-other-brand",
        credentials_encrypted=b"",
    )
    session.add(theirs)
    session.commit()
    make_member(session, agent, ours)
    return ours, theirs


def write_in(session: Session, account: Account, name: str, user_id: str, text: str) -> int:
    item = make_item(
        account_ref=account.platform_account_id,
        external_id=f"dm-{user_id}-{account.id}",
        author=Author(platform_user_id=user_id, handle=name.split()[0].lower(), display_name=name),
        text=text,
        thread_key=f"dm-{user_id}-{account.id}",
        created_at=datetime.now(UTC) - timedelta(minutes=3),
    )
    return ingest(session=session, account=account, item=item).message.conversation_id


def test_the_list_search_and_thread_show_only_the_agents_accounts(
    client: FlaskClient, session: Session, agent: User, accounts: tuple[Account, Account]
) -> None:
    ours, theirs = accounts
    mine = write_in(session, ours, OURS, "501", "Paket kaputt angekommen")
    foreign = write_in(session, theirs, THEIRS, "502", "Paket nie angekommen")
    login(client, agent.email)

    listed = client.get("/conversations?view=open").get_data(as_text=True)
    assert OURS in listed and THEIRS not in listed
    assert '<span class="count">1</span>' in listed
    found = client.get("/conversations/search?q=Paket").get_data(as_text=True)
    assert OURS in found and THEIRS not in found
    assert client.get(f"/conversations/{mine}").status_code == 200
    assert client.get(f"/conversations/{foreign}").status_code == 404
    assert client.get(f"/conversations?account={theirs.id}").status_code == 200
    assert THEIRS not in client.get(f"/conversations?account={theirs.id}").get_data(as_text=True)


def test_an_admin_sees_every_account_and_a_new_member_sees_it_at_once(
    client: FlaskClient, session: Session, agent: User, accounts: tuple[Account, Account]
) -> None:
    ours, theirs = accounts
    write_in(session, ours, OURS, "501", "Frage")
    foreign = write_in(session, theirs, THEIRS, "502", "Frage")
    admin = make_user(session, role=Role.admin, name="Alex Admin")
    login(client, admin.email)
    listed = client.get("/conversations?view=open").get_data(as_text=True)
    assert OURS in listed and THEIRS in listed

    other = client.application.test_client()
    login(other, agent.email)
    assert other.get(f"/conversations/{foreign}").status_code == 404
    make_member(session, agent, theirs)
    assert other.get(f"/conversations/{foreign}").status_code == 200


def test_the_contact_panel_lists_earlier_conversations_on_the_agents_accounts_only(
    client: FlaskClient, session: Session, agent: User, accounts: tuple[Account, Account]
) -> None:
    ours, theirs = accounts
    # The same person wrote to both brands: same platform user id, one contact.
    write_in(session, theirs, OURS, "501", "Beschwerde bei der anderen Marke")
    mine = write_in(session, ours, OURS, "501", "Frage an uns")
    login(client, agent.email)

    body = client.get(f"/conversations/{mine}").get_data(as_text=True)

    assert "No earlier conversations" in body
