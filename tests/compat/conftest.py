"""Fixtures of the alter-sdk compatibility suite.

One `portcullis-local` per session, on a fresh DynamoDB table with a random root secret; the
operator CLI to set up organisations, apps, keys, secrets and grants exactly as an operator
would; and the echo service standing in for a third-party API. Every secret value the suite
creates is remembered so the runner's post-suite scan (scripts/secret_scan.py) can prove that
none of them was stored or logged in the clear.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from echo_server import Echo, serve

ROOT = Path(__file__).resolve().parents[2]
SERVER_BIN = ROOT / "target" / "debug" / "portcullis-local"
CLI_BIN = ROOT / "target" / "debug" / "portcullis"
STARTUP_SECONDS = 20
# Where the fixture secrets may be sent: the echo service, by either loopback name.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def isolated_env(**overrides: str) -> dict:
    """This process's environment without any PORTCULLIS_* variable the shell may carry (say a
    `make run` operator key or table), plus the overrides: the suite uses only its own server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    env.update(overrides)
    return env


class CliError(AssertionError):
    """The CLI exited non-zero; carries its error JSON (stderr) for the test report."""


@dataclass
class Portcullis:
    """The session's server, and the secret values created against it."""

    url: str
    root_secret: str
    log_path: Path
    secret_values: list[str]

    def remember(self, *values: str) -> None:
        """Adds values to the list the post-suite secret scan looks for."""
        self.secret_values.extend(v for v in values if v not in self.secret_values)

    def new_secret_value(self, prefix: str) -> str:
        """A remembered value, long and random enough that finding it anywhere means it leaked."""
        value = f"{prefix}-{secrets.token_urlsafe(24)}"
        self.remember(value)
        return value

    def cli(self, *args: str, operator_key: str | None = None, stdin: dict | None = None, env: dict | None = None) -> dict:
        """Runs the operator CLI and returns its JSON answer; raises CliError with stderr on failure."""
        run_env = isolated_env(PORTCULLIS_URL=self.url, **(env or {}))
        if operator_key:
            run_env["PORTCULLIS_OPERATOR_KEY"] = operator_key
        done = subprocess.run(
            [str(CLI_BIN), *args],
            input=json.dumps(stdin) if stdin is not None else None,
            capture_output=True,
            text=True,
            env=run_env,
            timeout=60,
        )
        if done.returncode != 0:
            raise CliError(f"portcullis {' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}")
        return json.loads(done.stdout)

    def bootstrap(self) -> "Org":
        """A new organisation (the root secret may create any number of them)."""
        tag = uuid.uuid4().hex[:8]
        answer = self.cli(
            "bootstrap",
            "--org-name", f"compat {tag}",
            "--owner-email", f"owner-{tag}@compat.test",
            env={"PORTCULLIS_ROOT_SECRET": self.root_secret},
        )
        operator_key = answer["operator_key"]["api_key"]
        self.remember(operator_key)
        return Org(self, operator_key)


@dataclass
class Org:
    """An organisation, driven through the CLI with its owner's operator key."""

    server: Portcullis
    operator_key: str

    def cli(self, *args: str, stdin: dict | None = None) -> dict:
        return self.server.cli(*args, operator_key=self.operator_key, stdin=stdin)

    def create_app(self) -> str:
        return self.cli("apps", "create", "--name", f"app {uuid.uuid4().hex[:8]}")["id"]

    def create_key(self, app_id: str) -> dict:
        """An app key with every scope (no --scope); its plaintext is in `api_key`."""
        key = self.cli("keys", "create", "--app", app_id, "--name", f"key {uuid.uuid4().hex[:8]}")
        self.server.remember(key["api_key"])
        return key

    def create_secret(self, app_id: str, template: str, value: dict, *extra: str, hosts=LOOPBACK_HOSTS) -> str:
        """A managed secret whose value goes in on stdin, as the CLI requires; returns its id."""
        args = ["secrets", "create", "--app", app_id, "--name", f"secret {uuid.uuid4().hex[:8]}", "--template", template]
        for host in hosts:
            args += ["--allowed-host", host]
        return self.cli(*args, *extra, stdin=value)["id"]

    def create_grant(self, app_id: str, secret_id: str, label: str | None = None) -> str:
        args = ["grants", "create", "--app", app_id, "--secret", secret_id, "--system"]
        return self.cli(*args, *(["--label", label] if label else []))["grant_id"]

    def audit(self, app_id: str, **filters: str) -> list[dict]:
        """The app's audit rows, newest first; filters are the CLI's (action, grant_id, outcome)."""
        args = ["audit", "--app", app_id, "--limit", "500"]
        for name, value in filters.items():
            args += [f"--{name.replace('_', '-')}", value]
        return self.cli(*args)["items"]


@dataclass
class Tenant:
    """A fresh organisation with one app, an every-scope app key and a bearer secret granted to
    the app itself (a system grant): the smallest setup an SDK user has."""

    org: Org
    app_id: str
    api_key: str
    key_id: str
    token: str
    secret_id: str
    grant_id: str

    def audit(self, **filters: str) -> list[dict]:
        return self.org.audit(self.app_id, **filters)

    def new_secret_grant(self, template: str, value: dict, *extra: str, hosts=LOOPBACK_HOSTS) -> str:
        """Another secret of this app and a system grant of it; returns the grant id."""
        secret_id = self.org.create_secret(self.app_id, template, value, *extra, hosts=hosts)
        return self.org.create_grant(self.app_id, secret_id)


def make_tenant(server: Portcullis) -> Tenant:
    org = server.bootstrap()
    app_id = org.create_app()
    key = org.create_key(app_id)
    token = server.new_secret_value("tok")
    secret_id = org.create_secret(app_id, "bearer", {"token": token})
    return Tenant(org, app_id, key["api_key"], key["id"], token, secret_id, org.create_grant(app_id, secret_id))


@pytest.fixture(scope="session")
def secret_values():
    """Every secret value of the session, written to $PORTCULLIS_SECRETS_FILE at the end."""
    values: list[str] = []
    yield values
    target = os.environ.get("PORTCULLIS_SECRETS_FILE")
    if target:
        Path(target).write_text(json.dumps(values))


@pytest.fixture(scope="session")
def portcullis(secret_values, tmp_path_factory):
    """portcullis-local on a free port, a table of its own and a random root secret."""
    if not os.environ.get("AWS_ENDPOINT_URL"):
        pytest.fail("AWS_ENDPOINT_URL must point at a local DynamoDB/KMS (moto); refusing to use real AWS")
    for binary in (SERVER_BIN, CLI_BIN):
        if not binary.exists():
            pytest.fail(f"{binary} is missing: cargo build --bin portcullis-local --bin portcullis")
    port = free_port()
    root_secret = secrets.token_hex(32)
    log_path = tmp_path_factory.mktemp("server") / "portcullis-local.log"
    # The suite's providers and identity provider run on loopback on purpose.
    env = isolated_env(
        PORTCULLIS_TABLE=f"compat-{uuid.uuid4().hex}",
        PORTCULLIS_ROOT_SECRET=root_secret,
        PORTCULLIS_ALLOW_LOOPBACK="1",
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(SERVER_BIN), "--init", "--addr", f"127.0.0.1:{port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = Portcullis(f"http://127.0.0.1:{port}", root_secret, log_path, secret_values)
    server.remember(root_secret)
    try:
        wait_until_listening(proc, port, log_path)
        yield server
    finally:
        stop(proc)
        logs_dir = os.environ.get("PORTCULLIS_LOGS_DIR")
        if logs_dir:
            Path(logs_dir).mkdir(parents=True, exist_ok=True)
            shutil.copy(log_path, Path(logs_dir) / log_path.name)


def wait_until_listening(proc: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited with code {proc.returncode}" if proc.returncode is not None else "did not start listening"
            pytest.fail(f"portcullis-local {state} (waited up to {STARTUP_SECONDS} s); its log:\n{log_path.read_text()}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class EchoService:
    """The echo service's base URL and the paths of every request it answered."""

    url: str
    seen: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def echo():
    service_port = free_port()
    httpd = serve(service_port)
    service = EchoService(f"http://127.0.0.1:{service_port}")

    class Recording(Echo):
        """The echo handler, noting each request so a test can prove something was NOT fetched."""

        def _answer(self):
            service.seen.append(self.path)
            super()._answer()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    httpd.RequestHandlerClass = Recording
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield service
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def alter_base_url(portcullis, monkeypatch):
    """The SDK reads its backend from ALTER_BASE_URL when a client is constructed."""
    monkeypatch.setenv("ALTER_BASE_URL", portcullis.url)


@pytest.fixture
def tenant(portcullis) -> Tenant:
    return make_tenant(portcullis)


@pytest.fixture
def other_tenant(portcullis) -> Tenant:
    """An independent app in another organisation: the other side of the tenant boundary."""
    return make_tenant(portcullis)


# ---- OAuth: a real provider process, and the Connect flow driven as a browser would ----

PROVIDER_DIR = ROOT / "tests" / "oauth-provider"
PROVIDER_ID = "acme-oauth"


@dataclass
class OAuthProvider:
    """The test OAuth provider (tests/oauth-provider: oauth2-mock-server from npm)."""

    issuer: str

    def control(self, path: str, body: dict | None = None) -> dict:
        method = "GET" if body is None and path == "log" else "POST"
        r = httpx.request(method, f"{self.issuer}/control/{path}", json=body, timeout=10)
        r.raise_for_status()
        return r.json() if r.content else {}

    def configure(self, **config) -> None:
        """Changes how the provider behaves from now on (tests/oauth-provider/README.md)."""
        self.control("config", config)

    def log(self) -> dict:
        return self.control("log")

    def definition(self) -> dict:
        """The custom-provider definition an operator registers for this server."""
        return {
            "name": "Acme",
            "authorize_url": f"{self.issuer}/authorize",
            "token_url": f"{self.issuer}/token",
            "revocation_url": f"{self.issuer}/revoke",
            "userinfo_url": f"{self.issuer}/userinfo",
            "account_field": "email",
            "api_base_url": self.issuer,
            "hosts": ["127.0.0.1"],
            "scope_separator": " ",
            "pkce": True,
            "token_auth": "client_secret_basic",
            "refresh": {"refresh_tokens": True, "rotates": True, "default_ttl_seconds": None},
            "default_scopes": ["read"],
        }


@pytest.fixture(scope="session")
def oauth_server():
    if not (PROVIDER_DIR / "node_modules").exists():
        pytest.fail("run `npm ci --prefix tests/oauth-provider` (make test does)")
    proc = subprocess.Popen(
        ["node", str(PROVIDER_DIR / "provider.mjs"), "--port", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = json.loads(proc.stdout.readline() or "{}")
    if not ready.get("ready"):
        proc.kill()
        pytest.fail(f"the test OAuth provider did not start: {ready}")
    try:
        yield OAuthProvider(ready["issuer"])
    finally:
        proc.stdin.close()
        stop(proc)


@pytest.fixture
def oauth_provider(oauth_server) -> OAuthProvider:
    """The provider, reset: default behaviour, empty log, no tokens."""
    oauth_server.control("reset", {})
    return oauth_server


def use_provider(tenant: "Tenant", provider: OAuthProvider, scopes=("read",)) -> dict:
    """Configures the test provider for the tenant's app, as an operator does with the CLI."""
    config = {
        "client_id": "portcullis-test",
        "client_secret": "portcullis-test-secret",
        "scopes": list(scopes),
        "allowed_scopes": ["read", "write", "admin"],
        "custom": provider.definition(),
    }
    tenant.org.server.remember(config["client_secret"])
    return tenant.org.cli("providers", "set", "--app", tenant.app_id, PROVIDER_ID, stdin=config)


def complete_connect(base_url: str, session_token: str, provider_id: str = PROVIDER_ID) -> httpx.Response:
    """What the Connect page does for a person: start the authorization, follow the provider's
    redirect back to the callback. Answers the callback's response (the result page)."""
    with httpx.Client(timeout=15, follow_redirects=False) as http:
        started = http.post(
            f"{base_url}/sdk/oauth/connect/authorize",
            json={"session_token": session_token, "provider_id": provider_id},
        )
        assert started.status_code == 200, started.text
        at_provider = http.get(started.json()["authorize_url"])
        assert at_provider.status_code == 302, at_provider.text
        callback = at_provider.headers["location"]
        assert callback.startswith(f"{base_url}/sdk/oauth/callback?"), callback
        return http.get(callback)
