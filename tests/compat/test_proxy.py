"""Proxy mode through the official alter-sdk (`proxy_request`): the server makes the call with
the credential, which never reaches the client; the SDK decodes the answer; destinations
outside the grant or on internal addresses are refused with the SDK's typed error."""

import asyncio
import json

import pytest
from alter_sdk import App
from alter_sdk.exceptions import BlockedDestinationError


def test_proxy_request_calls_the_api_with_the_credential_the_client_never_sees(tenant, echo):
    async def call():
        async with App(api_key=tenant.api_key) as app:
            return await app.proxy_request(
                "POST",
                f"{echo.url}/orders/{{order}}",
                grant_id=tenant.grant_id,
                path_params={"order": "o-1"},
                query_params={"expand": "items"},
                json={"qty": 2},
                extra_headers={"X-Trace": "trace-1"},
                reason="place the order",
            )

    result = asyncio.run(call())
    assert result.status_code == 200 and result.approval_id is None and not result.body_truncated
    seen = result.body_json()
    assert seen["method"] == "POST" and seen["path"] == "/orders/o-1?expand=items"
    assert seen["headers"]["authorization"] == f"Bearer {tenant.token}"
    assert seen["headers"]["x-trace"] == "trace-1" and json.loads(seen["body"]) == {"qty": 2}
    [row] = tenant.audit(action="sdk_proxy")
    assert row["detail"]["response_status"] == 200 and row["reason"] == "place the order"
    # The echo repeated the credential in its answer: the audit row has it redacted.
    assert tenant.token not in json.dumps(tenant.audit())


def test_internal_and_foreign_destinations_are_blocked(tenant, echo):
    metadata = tenant.new_secret_grant("bearer", {"token": "t-metadata-0001"}, hosts=("169.254.169.254",))

    async def calls():
        async with App(api_key=tenant.api_key) as app:
            with pytest.raises(BlockedDestinationError):
                await app.proxy_request("GET", "http://169.254.169.254/latest/meta-data/", grant_id=metadata)
            with pytest.raises(BlockedDestinationError):
                await app.proxy_request("GET", "https://api.not-allowed.test/x", grant_id=tenant.grant_id)

    asyncio.run(calls())
    assert not [p for p in echo.seen if "meta-data" in p]
