"""Operations commands: `socialcare serve` and `socialcare check`."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the operations commands on an app's CLI."""
