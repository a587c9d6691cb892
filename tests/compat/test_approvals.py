"""Human approval through the official alter-sdk: `proxy_request` answers a `PendingApproval`
for a grant whose policy asks for one; a person approves through the gate's link while
`await_approval` polls; the SDK gets the executed call's result. A denial raises the SDK's
typed error."""

import asyncio
import threading
import time

import httpx
import pytest
from alter_sdk import App
from alter_sdk.exceptions import ApprovalDeniedError, RestrictedGrantRequiresProxyError
from alter_sdk.models import PendingApproval
from test_policies import grant_with_policy


def approver_link(tenant, approval_id) -> str:
    """The operator hands the approver their link (the caller never gets it)."""
    items = tenant.org.cli("approvals", "list", "--app", tenant.app_id, "--status", "pending")["items"]
    [item] = [i for i in items if i["approval_id"] == str(approval_id)]
    return item["approver_links"][0]["approval_url"]


def decide_later(link: str, decision: str, delay: float = 1.0) -> threading.Thread:
    base, token = link.split("#token=")
    def run():
        time.sleep(delay)
        r = httpx.post(base, json={"token": token, "decision": decision}, timeout=30)
        assert r.status_code == 200, r.text
    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_call_waits_for_approval_and_the_sdk_gets_its_result(tenant, echo):
    grant = grant_with_policy(tenant, {"approval": {"methods": ["POST"]}})

    async def scenario():
        async with App(api_key=tenant.api_key) as app:
            with pytest.raises(RestrictedGrantRequiresProxyError):
                await app.request("GET", f"{echo.url}/x", grant_id=grant)
            pending = await app.proxy_request("POST", f"{echo.url}/refunds", grant_id=grant, json={"amount": 5}, reason="refund")
            assert isinstance(pending, PendingApproval) and len(pending.gates) == 1
            assert "token=" not in pending.approval_url
            approver = decide_later(approver_link(tenant, pending.approval_id), "approve")
            result = await app.await_approval(str(pending.approval_id), timeout=30, poll_interval=0.5)
            approver.join()
            denied = await app.proxy_request("POST", f"{echo.url}/refunds", grant_id=grant, json={"amount": 6})
            denier = decide_later(approver_link(tenant, denied.approval_id), "deny", delay=0.2)
            with pytest.raises(ApprovalDeniedError):
                await app.await_approval(str(denied.approval_id), timeout=30, poll_interval=0.5)
            denier.join()
            return result

    result = asyncio.run(scenario())
    assert result.status_code == 200
    assert result.body_json()["headers"]["authorization"] == f"Bearer {tenant.token}"
    assert len([p for p in echo.seen if p == "/refunds"]) == 1


def test_an_approver_decides_on_the_page_in_a_browser(tenant, echo):
    import json as json_mod
    import os
    import subprocess

    from conftest import ROOT
    from test_connect_browser import CHROMIUM

    grant = grant_with_policy(tenant, {"approval": {}})

    async def ask():
        async with App(api_key=tenant.api_key, caller="billing-bot") as app:
            return await app.proxy_request("POST", f"{echo.url}/refunds", grant_id=grant, json={"amount": 7}, reason="customer asked")

    pending = asyncio.run(ask())
    done = subprocess.run(
        ["node", str(ROOT / "tests" / "browser" / "approve.mjs"), approver_link(tenant, pending.approval_id), "approve"],
        capture_output=True, text=True, timeout=90, env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert done.returncode == 0, done.stderr
    seen = json_mod.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in seen, seen
    assert "billing-bot" in seen["shown"]["title"] and "customer asked" in seen["shown"]["details"]
    assert "/refunds" in seen["shown"]["details"] and tenant.token not in json_mod.dumps(seen)
    assert not seen["shown"]["url_has_token"] and seen["console_errors"] == []
    assert seen["outcome"] == "Approved. The call was made."

    async def result():
        async with App(api_key=tenant.api_key) as app:
            return await app.await_approval(str(pending.approval_id), timeout=10, poll_interval=0.5)

    assert asyncio.run(result()).status_code == 200
