"""Configuration: the order of sources, and refusing to start unsafe outside demo and tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from inbox import create_app
from inbox.config import ConfigError

GOOD_SECRET = "s" * 48


def test_refuses_to_start_without_a_secret_key_and_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOCIALCARE_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="socialcare gen-key secret"):
        create_app({"INSTANCE_PATH": str(tmp_path), "ENCRYPTION_KEYS": Fernet.generate_key()})


@pytest.mark.parametrize("secret", ["change-me", "dev", "short-but-not-placeholder"])
def test_refuses_placeholder_or_short_secret_keys(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigError, match="SOCIALCARE_SECRET_KEY"):
        create_app(
            {
                "INSTANCE_PATH": str(tmp_path),
                "SECRET_KEY": secret,
                "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            }
        )


@pytest.mark.parametrize("keys", ["", "not-a-fernet-key", ","])
def test_refuses_missing_or_invalid_encryption_keys(tmp_path: Path, keys: str) -> None:
    with pytest.raises(ConfigError, match="socialcare gen-key fernet"):
        create_app(
            {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": GOOD_SECRET, "ENCRYPTION_KEYS": keys}
        )


def test_starts_with_real_keys_and_defaults_to_sqlite_in_the_instance_folder(
    tmp_path: Path,
) -> None:
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    app = create_app(
        {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": GOOD_SECRET, "ENCRYPTION_KEYS": keys}
    )
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'inbox.db'}"
    assert app.config["RESEARCH_DATABASE_URL"] == f"sqlite:///{tmp_path / 'research.db'}"


def test_environment_overrides_defaults_and_the_dict_overrides_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALCARE_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("SOCIALCARE_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("SOCIALCARE_SLA_TEST_SETTING", "from-env")
    monkeypatch.setenv("SOCIALCARE_RESEARCH_DATABASE_URL", "sqlite:///" + str(tmp_path / "r.db"))
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SLA_TEST_SETTING": "from-dict"})
    assert app.config["SECRET_KEY"] == GOOD_SECRET
    assert app.config["SLA_TEST_SETTING"] == "from-dict"
    assert app.config["RESEARCH_DATABASE_URL"].endswith("r.db")


def test_demo_mode_starts_without_production_keys(tmp_path: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "DEMO": True})
    assert app.config["DEMO"] is True


def test_creating_the_app_neither_migrates_nor_starts_a_worker(tmp_path: Path) -> None:
    create_app({"INSTANCE_PATH": str(tmp_path), "DEMO": True})
    # The engines are lazy: no database file appears until something queries it.
    assert not (tmp_path / "inbox.db").exists()
    assert not (tmp_path / "research.db").exists()


def test_the_instance_folder_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALCARE_INSTANCE_PATH", str(tmp_path / "elsewhere"))
    app = create_app({"DEMO": True})
    assert app.instance_path == str(tmp_path / "elsewhere")
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'elsewhere' / 'inbox.db'}"
