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
            approver = decide_later(pending.approval_url, "approve")
            result = await app.await_approval(str(pending.approval_id), timeout=30, poll_interval=0.5)
            approver.join()
            denied = await app.proxy_request("POST", f"{echo.url}/refunds", grant_id=grant, json={"amount": 6})
            denier = decide_later(denied.approval_url, "deny", delay=0.2)
            with pytest.raises(ApprovalDeniedError):
                await app.await_approval(str(denied.approval_id), timeout=30, poll_interval=0.5)
            denier.join()
            return result

    result = asyncio.run(scenario())
    assert result.status_code == 200
    assert result.body_json()["headers"]["authorization"] == f"Bearer {tenant.token}"
    assert len([p for p in echo.seen if p == "/refunds"]) == 1
