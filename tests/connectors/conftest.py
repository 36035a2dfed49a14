"""Fixtures for the Meta connectors: the real facebook-sdk over a `responses`-mocked transport."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.graph import GRAPH_VERSION

META_FIXTURES = Path(__file__).parent.parent / "fixtures" / "meta"
GRAPH = f"https://graph.facebook.com/{GRAPH_VERSION}"
TOKEN = "SECRET-PAGE-TOKEN"
NOW = datetime(2024, 1, 15, 13, 0, tzinfo=UTC)


def meta_fixture(name: str) -> Any:
    """A Graph API or webhook payload shaped like Meta's documented responses."""
    return json.loads((META_FIXTURES / name).read_text(encoding="utf-8"))


def graph_error(code: int, message: str, subcode: int | None = None) -> dict[str, Any]:
    """A Graph API error body."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AbCdEfGh123"
    return {"error": error}


@pytest.fixture
def graph() -> Iterator[responses.RequestsMock]:
    """Intercept every HTTP call; unmatched calls fail like a refused connection."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
