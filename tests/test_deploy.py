"""The deployment examples in deploy/: systemd units that verify, an nginx config that loads."""

from __future__ import annotations

import configparser
import datetime as dt
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEPLOY = Path(__file__).parent.parent / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
INSTALLED = "/opt/socialcare/venv/bin/socialcare"
SOCIALCARE = str(Path(sys.executable).with_name("socialcare"))
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def _unit(path: Path) -> configparser.ConfigParser:
    # systemd allows repeated keys (SystemCallFilter twice): keep the last, as a check suffices.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def test_units_run_serve_and_worker_hardened_and_from_the_environment_file() -> None:
    commands = {path.name: _unit(path)["Service"]["ExecStart"] for path in UNITS}
    assert commands == {
        "socialcare-web.service": f"{INSTALLED} serve",
        "socialcare-worker@.service": f"{INSTALLED} worker",
    }
    for path in UNITS:
        service = _unit(path)["Service"]
        assert service["EnvironmentFile"] == "/etc/socialcare/socialcare.env"
        assert service["DynamicUser"] == "yes"
        assert service["ProtectSystem"] == "strict"
        assert service["PrivateTmp"] == "yes"
        assert service["NoNewPrivileges"] == "yes"
        assert service["CapabilityBoundingSet"] == ""


def test_the_environment_example_holds_placeholders_only() -> None:
    lines = (DEPLOY / "systemd" / "socialcare.env.example").read_text().splitlines()
    settings = dict(
        line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")
    )
    for key in ("SOCIALCARE_SECRET_KEY", "SOCIALCARE_ENCRYPTION_KEYS", "SOCIALCARE_METRICS_TOKEN"):
        assert settings[key].startswith("<") and settings[key].endswith(">"), key
    for key in ("SOCIALCARE_DATABASE_URL", "SOCIALCARE_RESEARCH_DATABASE_URL"):
        assert ":<password>@" in settings[key]
    # Nothing that looks like a real Fernet key or token slipped in.
    assert not re.search(r"[A-Za-z0-9_-]{40,}", "\n".join(settings.values()))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    env_file = tmp_path / "socialcare.env"
    env_file.write_text((DEPLOY / "systemd" / "socialcare.env.example").read_text())
    names = []
    for path in UNITS:
        # verify insists that ExecStart exists: point it at this checkout's command.
        text = path.read_text().replace(INSTALLED, SOCIALCARE)
        text = text.replace("/etc/socialcare/socialcare.env", str(env_file))
        name = path.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text)
        names.append(str(tmp_path / name))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Unknown keys and bad values are only warnings on stderr: none may appear.
    problems = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and problems == [], result.stderr


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "inbox.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def nginx_site(tmp_path: Path) -> Path:
    """deploy/nginx/socialcare.conf with a throw-away certificate, inside a minimal nginx.conf."""
    cert, key = _self_signed(tmp_path)
    site = (DEPLOY / "nginx" / "socialcare.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/inbox.example.com/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/inbox.example.com/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n"
        f"  proxy_temp_path {tmp_path}/proxy;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    return main


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_the_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    assert NGINX is not None
    main = nginx_site(tmp_path)
    result = subprocess.run(
        [NGINX, "-t", "-c", str(main), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_the_nginx_config_hides_metrics_and_forwards_the_client() -> None:
    site = (DEPLOY / "nginx" / "socialcare.conf").read_text()
    assert re.search(r"location = /metrics \{\s*return 404;", site)
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"):
        assert f"proxy_set_header {header} " in site
    assert len(re.findall(r"^\s*server 10\.0\.0\.\d+:8000", site, re.M)) == 2
    # HSTS is the app's job (it knows when the request came over TLS).
    code = "\n".join(line.split("#")[0] for line in site.splitlines())
    assert "Strict-Transport-Security" not in code
