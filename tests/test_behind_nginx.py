"""The app as an operator deploys it: `search-party serve` (waitress) on 127.0.0.1 behind a real
nginx, started here with the shipped deploy/nginx/search-party.conf (ports, certificate and temp
paths substituted) and HTTPS on a self-signed certificate made here with openssl.

Visitors are told apart by their own source addresses (127.0.0.2, 127.0.0.3: all of 127/8 is
this machine), as nginx sees them.  Before the app trusted its proxy, every visitor shared
nginx's address: one of them locked everyone out of signing in, cookies were not Secure, and a
loopback bind behind the proxy ran in development mode."""

from __future__ import annotations

import http.client
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from servers import free_port, smtp_server
from sighting_drafts import SHIPPED_EMBEDDER
from web_helpers import PASSWORD, ROOT

from search_party.community import accounts
from search_party.store.db import open_db

NGINX = Path("/usr/sbin/nginx")
SITE = ROOT / "deploy" / "nginx" / "search-party.conf"
SECRET = "k" * 64


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def nginx_config(folder: Path, *, app_port: int, https_port: int, http_port: int, cert: Path, key: Path) -> Path:
    """The shipped site in a main configuration of its own: its own pid, logs and temp folders
    under ``folder``, listening on free ports of 127.0.0.1."""
    site = SITE.read_text()
    for shipped, here in {"127.0.0.1:8000": f"127.0.0.1:{app_port}",
                          "listen 443 ssl": f"listen 127.0.0.1:{https_port} ssl",
                          "listen 80;": f"listen 127.0.0.1:{http_port};",
                          "/etc/letsencrypt/live/search-party.example.org/fullchain.pem": str(cert),
                          "/etc/letsencrypt/live/search-party.example.org/privkey.pem": str(key)}.items():
        assert shipped in site, f"the shipped nginx site no longer has {shipped!r}"
        site = site.replace(shipped, here)
    site = "\n".join(line for line in site.splitlines() if "[::]" not in line)  # no IPv6 here
    (folder / "site.conf").write_text(site)
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    main = folder / "nginx.conf"
    main.write_text(f"""
{'user root root;' if os.geteuid() == 0 else ''}
pid {folder}/nginx.pid;
error_log {folder}/error.log;
daemon off;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {temp['body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    include {folder}/site.conf;
}}
""")
    return main


def test_the_shipped_nginx_site_passes_nginx_t(tmp_path):
    cert, key = make_certificate(tmp_path)
    main = nginx_config(tmp_path, app_port=free_port(), https_port=free_port(), http_port=free_port(),
                        cert=cert, key=key)
    checked = subprocess.run([str(NGINX), "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True,
                             text=True)
    assert checked.returncode == 0 and "test is successful" in checked.stderr, checked.stderr


@dataclass
class Visitor:
    """A browser at its own source address, talking HTTPS to nginx, keeping its cookies."""

    port: int
    source: str
    context: ssl.SSLContext
    cookies: dict[str, str] = field(default_factory=dict)
    set_cookies: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.context,
                                           source_address=(self.source, 0), timeout=30)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            text = answer.read().decode()
            got = {k.lower(): v for k, v in answer.getheaders() if k.lower() != "set-cookie"}
            for raw in answer.headers.get_all("Set-Cookie") or []:
                self.set_cookies.append(raw)
                for name, morsel in SimpleCookie(raw).items():
                    self.cookies[name] = morsel.value
            return answer.status, got, text
        finally:
            conn.close()

    def post(self, path: str, form: dict[str, str],
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        """A form sent as a browser sends it: from the page (its CSRF token, and the Referer that
        Flask-WTF checks on HTTPS)."""
        _, _, page = self.request("GET", path)
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert token, page[:500]
        referer = {"Referer": f"https://localhost:{self.port}{path}"}
        return self.request("POST", path, {"csrf_token": token.group(1), **form}, {**referer, **(headers or {})})


@dataclass
class Deployment:
    https_port: int
    context: ssl.SSLContext
    data_dir: Path
    mail: object

    def visitor(self, source: str) -> Visitor:
        return Visitor(self.https_port, source, self.context)


def _wait_for(check, what: str, logs: list[Path], process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start:\n" + "\n".join(p.read_text()[-3000:] for p in logs if p.exists()))
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not NGINX.exists():
        pytest.fail("nginx is missing: run scripts/system_packages.sh (make test does)")
    folder = tmp_path_factory.mktemp("nginx")
    data_dir = folder / "data"
    cert, key = make_certificate(folder)
    app_port, https_port, http_port = free_port(), free_port(), free_port()
    main = nginx_config(folder, app_port=app_port, https_port=https_port, http_port=http_port, cert=cert, key=key)
    context = ssl.create_default_context(cafile=str(cert))
    with smtp_server() as mail:
        env = {**os.environ, "SEARCH_PARTY_DATA_DIR": str(data_dir), "SEARCH_PARTY_SECRET_KEY": SECRET,
               "SEARCH_PARTY_TRUSTED_PROXIES": "1", "SEARCH_PARTY_PUBLIC_URL": f"https://localhost:{https_port}",
               "SEARCH_PARTY_EMBEDDER": SHIPPED_EMBEDDER, "SEARCH_PARTY_SMTP_HOST": "127.0.0.1",
               "SEARCH_PARTY_SMTP_PORT": str(mail.port), "SEARCH_PARTY_SMTP_TLS": "none"}
        env.pop("SEARCH_PARTY_SECURE_COOKIES", None)
        app_log = folder / "serve.log"
        with app_log.open("w") as out:
            app = subprocess.Popen([sys.executable, "-m", "search_party.cli", "serve", "--host", "127.0.0.1",
                                    "--port", str(app_port), "--no-worker"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        nginx = subprocess.Popen([str(NGINX), "-p", str(folder), "-c", str(main)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            probe = Visitor(https_port, "127.0.0.1", context)
            _wait_for(lambda: probe.request("GET", "/healthz")[0] == 200, "the app behind nginx",
                      [app_log, folder / "error.log"], app)
            assert nginx.poll() is None, (folder / "error.log").read_text()
            yield Deployment(https_port, context, data_dir, mail)
        finally:
            _stop(nginx)
            _stop(app)


def test_each_visitor_has_their_own_sign_in_limit_behind_the_proxy(deployment):
    """Tried: a visitor guessing passwords from 127.0.0.2, sending a made-up X-Forwarded-For with
    each guess; after 10 they are refused (429), while a visitor at 127.0.0.3 signs in."""
    with open_db(deployment.data_dir / "search_party.db") as db:
        accounts.create_user(db, "target@example.org", PASSWORD)
        accounts.create_user(db, "other@example.org", PASSWORD)
    attacker = deployment.visitor("127.0.0.2")
    answers = [attacker.post("/login", {"email": "target@example.org", "password": f"guess {n}"},
                             headers={"X-Forwarded-For": f"10.0.0.{n}"})[0] for n in range(11)]
    assert answers == [400] * 10 + [429]
    neighbour = deployment.visitor("127.0.0.3")
    status, headers, _ = neighbour.post("/login", {"email": "other@example.org", "password": PASSWORD})
    assert status == 302 and headers["location"] == "/cameras"
    assert neighbour.request("GET", "/cameras")[0] == 200


def test_cookies_are_secure_and_the_server_says_https(deployment):
    visitor = deployment.visitor("127.0.0.4")
    status, headers, _ = visitor.request("GET", "/login")
    assert status == 200 and headers["strict-transport-security"].startswith("max-age=")
    assert visitor.set_cookies and all("Secure" in c and "HttpOnly" in c for c in visitor.set_cookies)


def test_a_reset_link_in_the_email_is_the_public_address(deployment):
    """Tried: a reset asked for through the proxy (the app itself listens on 127.0.0.1:<port>)."""
    with open_db(deployment.data_dir / "search_party.db") as db:
        accounts.create_user(db, "forgetful@example.org", PASSWORD)
    visitor = deployment.visitor("127.0.0.5")
    assert visitor.post("/reset", {"email": "forgetful@example.org"})[0] == 302
    (mail,) = [m for m in deployment.mail.messages if m["To"] == "forgetful@example.org"]
    link = re.search(r"(https?://\S+/reset/\S+)", mail.get_payload()).group(1)
    public = f"https://localhost:{deployment.https_port}/reset/"
    assert link.startswith(public), link
    assert visitor.request("GET", link.removeprefix(public[:-len("/reset/")]))[0] == 200


def test_a_loopback_bind_behind_a_proxy_is_no_development_run(tmp_path):
    """Tried: `serve` on 127.0.0.1 with a proxy configured but no secret key: it refuses to start
    instead of making a development key (and development links)."""
    env = {**os.environ, "SEARCH_PARTY_DATA_DIR": str(tmp_path / "data"), "SEARCH_PARTY_TRUSTED_PROXIES": "1",
           "SEARCH_PARTY_PUBLIC_URL": "https://search-party.example.org"}
    env.pop("SEARCH_PARTY_SECRET_KEY", None)
    started = subprocess.run([sys.executable, "-m", "search_party.cli", "serve", "--host", "127.0.0.1",
                              "--port", str(free_port()), "--no-worker"], env=env, capture_output=True, text=True,
                             timeout=120)
    assert started.returncode == 2 and "SEARCH_PARTY_SECRET_KEY is not set" in started.stderr
    assert not (tmp_path / "data" / "secret_key").exists()
    missing = subprocess.run([sys.executable, "-m", "search_party.cli", "config"], capture_output=True, text=True,
                             env={**env, "SEARCH_PARTY_PUBLIC_URL": ""}, timeout=60)
    assert missing.returncode == 2 and "SEARCH_PARTY_TRUSTED_PROXIES needs SEARCH_PARTY_PUBLIC_URL" in missing.stderr
