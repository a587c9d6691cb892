"""Policies through the official alter-sdk: an operator restricts a grant and sets quotas and
an app schedule with the CLI; the SDK's typed errors come back for each kind of refusal."""

import asyncio
import datetime

import pytest
from alter_sdk import App
from alter_sdk.exceptions import PolicyViolationError, QuotaExceededError, RestrictedGrantRequiresProxyError


def grant_with_policy(tenant, policy: dict) -> str:
    args = ["grants", "create", "--app", tenant.app_id, "--secret", tenant.secret_id, "--system", "--policy-stdin"]
    return tenant.org.cli(*args, stdin=policy)["grant_id"]


def test_restrictions_quotas_and_schedules_answer_the_sdks_typed_errors(tenant, echo):
    restricted = grant_with_policy(tenant, {"allowed_methods": ["GET"], "allowed_endpoints": ["/items/*"]})
    counted = grant_with_policy(tenant, {"quotas": [{"per": "month", "limit": 1}]})

    async def calls():
        async with App(api_key=tenant.api_key) as app:
            with pytest.raises(RestrictedGrantRequiresProxyError):
                await app.request("GET", f"{echo.url}/items/1", grant_id=restricted)
            allowed = await app.proxy_request("GET", f"{echo.url}/items/1", grant_id=restricted)
            with pytest.raises(PolicyViolationError) as denied:
                await app.proxy_request("POST", f"{echo.url}/items/1", grant_id=restricted, json={})
            first = await app.request("GET", f"{echo.url}/counted", grant_id=counted)
            with pytest.raises(QuotaExceededError) as over:
                await app.request("GET", f"{echo.url}/counted", grant_id=counted)
            return allowed, denied.value, first, over.value

    allowed, denied, first, over = asyncio.run(calls())
    assert allowed.status_code == 200 and first.status_code == 200
    assert denied.policy_error == "method_not_allowed"
    assert 0 < over.retry_after <= 31 * 86400

    # An app schedule that excludes today refuses every call, until it includes today.
    today = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][datetime.datetime.now(datetime.timezone.utc).weekday()]
    others = [d for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] if d != today]
    tenant.org.cli("apps", "policy", "--app", tenant.app_id, stdin={"schedule": {"time_zone": "UTC", "days": others}})

    async def outside():
        async with App(api_key=tenant.api_key) as app:
            with pytest.raises(PolicyViolationError) as refused:
                await app.request("GET", f"{echo.url}/x", grant_id=tenant.grant_id)
            return refused.value

    assert asyncio.run(outside()).policy_error == "outside_allowed_hours"
    tenant.org.cli("apps", "policy", "--app", tenant.app_id, stdin={})
