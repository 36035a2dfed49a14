"""A fake X API v2 on localhost that misbehaves on purpose.

It serves the official account, mentions with `since_id` and pagination tokens, and DM events,
shaped like X's documented responses, and injects faults: 429 with a reset header, 500s,
answers slower than the client's timeout, truncated JSON, and malformed items. Several fakes on
their own ports are several official accounts (`account`); `hold` makes mentions hang on demand.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ACCOUNT = {"id": "42", "name": "Acme Service", "username": "acme_hilft"}
FIRST_ID = 1_800_000_000_000_000_000


@dataclass
class Faults:
    """Chances per request of each fault, and which items are malformed."""

    rate_limited: float = 0.0
    server_error: float = 0.0
    slow: float = 0.0
    truncated: float = 0.0
    slow_seconds: float = 2.0
    malformed_every: int = 0


@dataclass
class FakeX:
    """The fake platform's state; `base_url` is set once it is serving."""

    total: int = 100
    released_at_start: int | None = None
    release_per_second: float = 0.0
    faults: Faults = field(default_factory=Faults)
    seed: int = 1
    base_url: str = ""
    started: float = field(default_factory=time.monotonic)
    account: dict[str, str] = field(default_factory=lambda: dict(ACCOUNT))
    requests: list[str] = field(default_factory=list)
    posted: list[dict[str, Any]] = field(default_factory=list)
    held: int = 0
    _hold_later_pages: bool = False
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311  (fault injection, not crypto)
        self._open.set()

    def hold(self, *, later_pages: bool = False) -> None:
        """Keep mentions requests waiting until `release` (`held` counts those that wait).

        With `later_pages`, first pages are answered: a held client has items in hand.
        """
        self._hold_later_pages = later_pages
        self._open.clear()

    def release(self) -> None:
        """Answer the held mentions requests and stop holding new ones."""
        self._open.set()

    # The data -------------------------------------------------------------------------

    def tweet_id(self, index: int) -> str:
        """The id of the index-th mention (ids grow with time, as X's do)."""
        return str(FIRST_ID + index)

    def malformed(self, index: int) -> bool:
        """Whether the index-th mention is served without its text."""
        every = self.faults.malformed_every
        return every > 0 and index % every == every - 1

    def released(self) -> int:
        """How many mentions exist by now."""
        start = self.total if self.released_at_start is None else self.released_at_start
        grown = int((time.monotonic() - self.started) * self.release_per_second)
        return min(self.total, start + grown)

    def all_released(self) -> bool:
        """Whether every mention the fake will ever serve exists."""
        return self.released() >= self.total

    def _tweet(self, index: int) -> dict[str, Any]:
        created = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=index)
        tweet = {
            "id": self.tweet_id(index),
            "text": f"@{self.account['username']} Frage Nummer {index}: wo bleibt meine Lieferung?",
            "author_id": str(7000 + index % 50),
            "conversation_id": self.tweet_id(index),
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "edit_history_tweet_ids": [self.tweet_id(index)],
        }
        if self.malformed(index):
            del tweet["text"]
        return tweet

    def _user(self, author_id: str) -> dict[str, str]:
        return {"id": author_id, "name": f"Kundin {author_id}", "username": f"kundin{author_id}"}

    # The API --------------------------------------------------------------------------

    def mentions(self, args: Any) -> dict[str, Any]:
        """GET /2/users/:id/mentions, newest first, with since_id and stable pagination."""
        since = int(args.get("since_id") or 0)
        size = int(args.get("max_results") or 10)
        token = args.get("pagination_token")
        if token:
            top, offset = (int(part) for part in token.split(":"))
        else:
            top, offset = FIRST_ID + self.released() - 1, 0
        # Newest first: index top, top-1, … down to the first id above since_id.
        indexes = [i for i in range(top - FIRST_ID - offset, -1, -1) if FIRST_ID + i > since][:size]
        if not indexes:
            return {"meta": {"result_count": 0}}
        tweets = [self._tweet(i) for i in indexes]
        authors = sorted({t["author_id"] for t in tweets})
        meta: dict[str, Any] = {
            "result_count": len(tweets),
            "newest_id": tweets[0]["id"],
            "oldest_id": tweets[-1]["id"],
        }
        if FIRST_ID + indexes[-1] - 1 > since and indexes[-1] > 0:
            meta["next_token"] = f"{top}:{offset + len(indexes)}"
        return {
            "data": tweets,
            "includes": {"users": [self._user(a) for a in authors]},
            "meta": meta,
        }

    def _fault(self, path: str) -> Response | None:
        if path.endswith("/users/me"):
            return None
        with self._lock:
            roll = self._rng.random()
        faults = self.faults
        if roll < faults.rate_limited:
            reset = int(time.time()) + 1
            body = {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429}
            return Response(
                json.dumps(body),
                status=429,
                content_type="application/problem+json",
                headers={"x-rate-limit-reset": str(reset), "x-rate-limit-remaining": "0"},
            )
        roll -= faults.rate_limited
        if roll < faults.server_error:
            body = {"title": "Service Unavailable", "detail": "Service Unavailable", "status": 503}
            return Response(json.dumps(body), status=503, content_type="application/problem+json")
        roll -= faults.server_error
        if roll < faults.slow:
            time.sleep(faults.slow_seconds)
        roll -= faults.slow
        if roll < faults.truncated:
            return Response("TRUNCATE", status=200)
        return None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        """The WSGI app."""
        request = Request(environ)
        self.requests.append(f"{request.method} {request.path}")
        later_page = bool(request.args.get("pagination_token"))
        if (
            request.path.endswith("/mentions")
            and not self._open.is_set()
            and (later_page or not self._hold_later_pages)
        ):
            with self._lock:
                self.held += 1
            self._open.wait(timeout=120)
        response = self._fault(request.path) or self._answer(request)
        if response.get_data(as_text=True) == "TRUNCATE":
            full = json.dumps(self.mentions(request.args))
            response = Response(full[: len(full) // 2], content_type="application/json")
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        path = request.path
        if request.method == "GET" and path == "/2/users/me":
            body: dict[str, Any] = {"data": self.account}
        elif request.method == "GET" and path == f"/2/users/{self.account['id']}/mentions":
            body = self.mentions(request.args)
        elif request.method == "GET" and path == "/2/dm_events":
            body = {"meta": {"result_count": 0}}
        elif request.method == "POST" and path == "/2/tweets":
            sent = request.get_json()
            # Two web nodes post at once: each post gets its own id.
            with self._lock:
                self.posted.append(sent)
                new_id = str(FIRST_ID + 10_000_000 + len(self.posted))
            body = {
                "data": {"id": new_id, "text": sent["text"], "edit_history_tweet_ids": [new_id]}
            }
            return Response(json.dumps(body), status=201, content_type="application/json")
        else:
            body = {"title": "Not Found", "detail": f"no route {path}", "status": 404}
            return Response(json.dumps(body), status=404, content_type="application/problem+json")
        return Response(json.dumps(body), content_type="application/json")


@contextmanager
def serving(fake: FakeX) -> Iterator[FakeX]:
    """Serve the fake on a free localhost port for the duration of the block."""
    # Thousands of requests: keep werkzeug's access log out of the test output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    fake.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        thread.join(timeout=5)
