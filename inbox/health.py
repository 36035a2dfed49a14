"""Health probes for load balancers and orchestrators: /healthz and /readyz."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("health", __name__)
