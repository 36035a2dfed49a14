"""`socialcare anonymize`: the JSON-lines contract other tools and our evaluation rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("socialcare"))


def _environment() -> dict[str, str]:
    # No configuration at all: the command needs neither keys nor a database.
    return {k: v for k, v in os.environ.items() if not k.startswith("SOCIALCARE_")}


def _run(lines: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, "anonymize", *args],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        env=_environment(),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_each_line_comes_back_anonymized_with_offsets_into_the_input(tmp_path: Path) -> None:
    text = "Hallo, ich bin Jana Müller 🙂 Mail: jana.mueller@example.com, Tel. 0171 1234567"
    lines = [
        json.dumps({"id": "a1", "text": text, "lang": "de", "author_name": "Jana Müller"}),
        json.dumps({"id": 2, "text": "@kunde_77 danke!", "author_handle": "kunde_77"}),
    ]
    result = _run(lines, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["id"] == "a1"
    assert "jana" not in first["text"].lower() and "0171" not in first["text"]
    assert "<EMAIL>" in first["text"] and "<PHONE>" in first["text"]
    found = {text[e["start"] : e["end"]]: e["type"] for e in first["entities"]}
    assert found["jana.mueller@example.com"] == "EMAIL"
    assert found["0171 1234567"] == "PHONE"
    assert any(value.startswith("Jana") for value, kind in found.items() if kind == "PERSON")
    assert second == {
        "id": 2,
        "text": "<HANDLE> danke!",
        "entities": [{"type": "HANDLE", "start": 0, "end": 9}],
    }
    assert not list(tmp_path.iterdir())  # no instance folder, no database


def test_a_bad_line_gets_an_error_line_and_the_rest_still_comes(tmp_path: Path) -> None:
    lines = ["{not json", json.dumps({"id": 5}), json.dumps({"id": 6, "text": "ok"})]
    result = _run(lines, cwd=tmp_path)
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == [None, 5, 6]
    assert "error" in out[0] and "'text' must be a string" in out[1]["error"]
    assert out[2]["text"] == "ok"
    assert result.returncode != 0 and "2 input line(s)" in result.stderr


def test_enrich_adds_language_sentiment_topics_and_hashtags(tmp_path: Path) -> None:
    text = "Mein Paket ist schon wieder zu spät, echt ärgerlich! #fail"
    result = _run([json.dumps({"id": 1, "text": text})], "--enrich", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["language"] == "de"
    assert out["sentiment"]["label"] == "negative" and -1 <= out["sentiment"]["score"] < 0
    assert "delivery" in out["topics"]
    assert out["hashtags"] == ["fail"]


def test_it_streams_each_answer_before_the_input_ends(tmp_path: Path) -> None:
    with subprocess.Popen(
        [SCRIPT, "anonymize"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_environment(),
        cwd=tmp_path,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        for n in range(3):
            process.stdin.write(json.dumps({"id": n, "text": f"ruf an: 0171 123456{n}"}) + "\n")
            process.stdin.flush()
            # The answer arrives while stdin is still open: nothing waits for the whole input.
            assert json.loads(process.stdout.readline())["text"] == "ruf an: <PHONE>"
        process.stdin.close()
        assert process.wait(timeout=30) == 0
