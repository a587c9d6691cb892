"""The hosted Connect page in headless Chromium (Debian's package, driven by playwright-core
from tests/browser): a person picks the provider, reads the consent screen, approves at the
provider and comes back, as a popup of the app's page (results by postMessage, the
@alter-ai/connect way) and as a full-page redirect to the app's return URL."""

import asyncio
import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from alter_sdk import App
from conftest import PROVIDER_ID, ROOT, free_port, use_provider

BROWSER_DIR = ROOT / "tests" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

OPENER = """<!doctype html><meta charset="utf-8"><title>app</title>
<button id="open">Connect</button>
<script>
  var link = decodeURIComponent(location.hash.slice(1));
  window.addEventListener("message", function (e) { window.received = e.data; window.receivedFrom = e.origin; });
  document.getElementById("open").onclick = function () { window.open(link, "alter-connect", "popup,width=480,height=720"); };
</script>"""


def browse(mode: str, *args: str) -> dict:
    if not shutil.which("node") or not os.path.exists(CHROMIUM):
        pytest.fail(f"the browser test needs Node.js and Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    if not (BROWSER_DIR / "node_modules").exists():
        pytest.fail("run `npm ci --prefix tests/browser` (make test does)")
    done = subprocess.run(
        ["node", str(BROWSER_DIR / "connect.mjs"), mode, *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in seen, seen
    return seen


@pytest.fixture
def app_site():
    """The app's own web page (another origin than Portcullis) that opens Connect as a popup."""
    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = OPENER.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def session(tenant, **options):
    async with App(api_key=tenant.api_key) as app:
        return await app.create_connect_session(allowed_providers=[PROVIDER_ID], **options)


async def poll(tenant, token):
    async with App(api_key=tenant.api_key) as app:
        return await app.poll_connect_session(token, timeout=15, poll_interval=0.2)


def test_connect_page_as_a_popup_posts_the_grant_to_its_opener(tenant, oauth_provider, app_site):
    use_provider(tenant, oauth_provider, scopes=["read", "write"])
    s = asyncio.run(session(tenant, allowed_origin=app_site))

    seen = browse("popup", f"{app_site}/#{s.connect_url}")

    assert seen["consent"]["title"].endswith("wants to connect to your Acme account")
    assert seen["consent"]["scopes"] == ["read", "write"]
    assert seen["consent"]["continue_label"] == "Continue to Acme"
    message = seen["message"]
    assert message["type"] == "alter_connect_success"
    [grant] = message["grants"]
    assert (grant["provider"], grant["account_identifier"]) == (PROVIDER_ID, "user-1@example.test")
    assert seen["message_origin"].startswith("http://127.0.0.1:")
    assert seen["popup_closed"] is True
    assert seen["console_errors"] == []
    # The SDK's poll agrees with what the page posted.
    [result] = asyncio.run(poll(tenant, s.session_token))
    assert result.grant_id == grant["grant_id"]


def test_connect_page_as_a_full_page_redirect_returns_to_the_app(tenant, oauth_provider, echo):
    use_provider(tenant, oauth_provider)
    return_url = f"{echo.url}/connected"
    s = asyncio.run(session(tenant, return_url=return_url))

    seen = browse("redirect", s.connect_url, return_url)

    query = parse_qs(urlsplit(seen["final_url"]).query)
    assert query["alter_connect_success"] == ["true"]
    assert query["provider"] == [PROVIDER_ID]
    assert query["operation"] == ["creation"]
    [result] = asyncio.run(poll(tenant, s.session_token))
    assert query["grant_id"] == [result.grant_id]
    assert seen["console_errors"] == []


def test_denied_consent_shows_a_readable_error_page(tenant, oauth_provider):
    use_provider(tenant, oauth_provider)
    oauth_provider.configure(deny=True)
    s = asyncio.run(session(tenant))

    seen = browse("page", s.connect_url)

    assert seen["consent"]["scopes"] == ["read"], seen

    app_name = seen["consent"]["title"].split(" wants to connect")[0]
    assert seen["result"] == {
        "title": "The connection was not completed",
        "lead": "You declined the connection, so nothing was shared.",
        "status": f"You can close this window and return to {app_name}.",
    }, seen
    assert seen["console_errors"] == []
    assert oauth_provider.log()["code_exchange_count"] == 0
