"""The deployment examples in deploy/: systemd units that verify, an nginx config that loads."""

from __future__ import annotations

import configparser
import datetime as dt
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import Session, select

from inbox.db import make_engine
from inbox.models import AuditEvent
from tests.conftest import DatabaseUrls
from tests.serving import Server, free_port, migrated_config, wait_for

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


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Reply:
    """What nginx answered."""

    status: int
    headers: http.client.HTTPMessage
    body: str


def _https(port: int, path: str, *, source: str, cookie: str = "", **kwargs: Any) -> Reply:
    """One request to nginx over TLS from a chosen loopback address; the response, read."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's own throw-away certificate
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, source_address=(source, 0), context=context, timeout=20
    )
    headers = {"Host": f"inbox.example.com:{port}", **kwargs.pop("headers", {})}
    if cookie:
        headers["Cookie"] = cookie
    connection.request(kwargs.pop("method", "GET"), path, headers=headers, **kwargs)
    response = connection.getresponse()
    reply = Reply(response.status, response.headers, response.read().decode())
    connection.close()
    return reply


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_nginx_in_front_of_serve_passes_the_client_and_tls_and_hides_metrics(
    database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    assert NGINX is not None
    config = migrated_config(database_urls, tmp_path)
    server = Server({**config, "PROXY_HOPS": 1, "METRICS_TOKEN": "t" * 32}, tmp_path)
    http_port, https_port = free_port(), free_port()
    main = nginx_site(tmp_path)
    site = (tmp_path / "site.conf").read_text()
    site = re.sub(r"server 10\.0\.0\.\d+:8000", f"server 127.0.0.1:{server.port}", site)
    site = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", site)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    (tmp_path / "site.conf").write_text(site)
    if os.geteuid() == 0:  # nginx's workers would run as nobody, shut out of tmp_path
        main.write_text("user root;\n" + main.read_text())
    proxy = subprocess.Popen(
        [NGINX, "-c", str(main), "-p", str(tmp_path), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        server.wait_until_healthy()
        wait_for(lambda: _port_open(https_port))
        client = "127.0.0.5"  # a client address that is neither nginx's nor gunicorn's peer

        page = _https(https_port, "/login", source=client)
        assert page.status == 200
        # The app learnt from X-Forwarded-Proto that the client came over TLS.
        assert page.headers.get("Strict-Transport-Security", "").startswith("max-age=")
        session_cookie = next(
            c for c in page.headers.get_all("Set-Cookie", []) if c.startswith("session=")
        )
        assert "; Secure" in session_cookie
        cookie = session_cookie.split(";")[0]
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.body)
        assert token, page.body[:500]

        form = f"email=nobody%40example.com&password=wrong&csrf_token={token.group(1)}"
        answer = _https(
            https_port,
            "/login",
            source=client,
            cookie=cookie,
            method="POST",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Forwarded-For": "6.6.6.6",  # forged by the client: nginx replaces it
                # Over HTTPS, CSRF protection wants the page's own address as the referrer.
                "Referer": f"https://inbox.example.com:{https_port}/login",
            },
        )
        assert answer.status == 200, answer.body[:300]
        assert "E-mail or password is wrong" in answer.body
        engine = make_engine(config["DATABASE_URL"])
        try:
            with Session(engine) as session:
                failed = session.exec(
                    select(AuditEvent).where(AuditEvent.action == "login_failed")
                ).all()
        finally:
            engine.dispose()
        # Neither nginx's address (what gunicorn sees) nor the forged one: the client's.
        assert [event.ip for event in failed] == [client]

        hidden = _https(
            https_port, "/metrics", source=client, headers={"Authorization": "Bearer " + "t" * 32}
        )
        assert hidden.status == 404
        assert _https(https_port, "/healthz", source="127.0.0.1").body == "ok\n"
        plain = http.client.HTTPConnection("127.0.0.1", http_port, timeout=20)
        plain.request("GET", "/login?next=%2F", headers={"Host": "inbox.example.com"})
        redirect = plain.getresponse()
        plain.close()
        assert redirect.status == 301
        assert redirect.getheader("Location") == "https://inbox.example.com/login?next=%2F"
    finally:
        proxy.terminate()
        proxy.wait(timeout=20)
        assert proxy.stderr is not None
        proxy.stderr.close()
        assert server.stop() == 0
