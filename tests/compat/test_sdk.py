"""The official alter-sdk (0.29.0), unmodified, against Portcullis: what an SDK user sees
(injected credentials, typed exceptions, warnings) and what the operator sees afterwards (the
audit log). Tests are synchronous and drive the async SDK with asyncio.run, so the suite needs
no pytest plugin."""

import asyncio
import base64
import json
import uuid
import warnings

import pytest
from alter_sdk import App
from alter_sdk.exceptions import (
    BlockedDestinationError,
    GrantNotFoundError,
    GrantRevokedError,
    KeyRevokedError,
)

DEPRECATION_PREFIX = "The Alter API key used by this client is deprecated"
BLOCKED_URL = "https://api.not-allowed.test/x"


async def fetch(api_key: str, url: str, grant_id: str, caller: str | None = None, **options):
    """One SDK request from a fresh client. Leaving the client flushes its background audit
    report, so the operator's audit log is complete once this returns."""
    async with App(api_key=api_key, caller=caller) as app:
        return await app.request("GET", url, grant_id=grant_id, **options)


def echoed_headers(url: str, api_key: str, grant_id: str) -> dict:
    """The headers the echo service received for an SDK request: what the provider would see."""
    response = asyncio.run(fetch(api_key, url, grant_id))
    assert response.status_code == 200
    return response.json()["headers"]


def deprecation_warnings(coro) -> list[warnings.WarningMessage]:
    """Runs a coroutine and returns the key-deprecation UserWarnings it emitted ("always", so
    Python's own once-per-location dedup cannot hide a duplicate the SDK itself emitted)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(coro)
    return [
        w for w in caught if issubclass(w.category, UserWarning) and str(w.message).startswith(DEPRECATION_PREFIX)
    ]


def without_request_ids(value):
    """An error body with every request id removed: the one part allowed to differ per call."""
    if isinstance(value, dict):
        return {k: without_request_ids(v) for k, v in value.items() if k != "request_id"}
    return value


def test_retrieve_mode_injects_the_token_and_audits_the_call_without_it(tenant, echo):
    url = f"{echo.url}/hello"
    assert echoed_headers(url, tenant.api_key, tenant.grant_id)["authorization"] == f"Bearer {tenant.token}"

    token_rows = tenant.audit(action="sdk_token")
    assert [(r["outcome"], r["grant_id"]) for r in token_rows] == [("success", tenant.grant_id)]
    reports = tenant.audit(action="sdk_audit_api_call")
    assert [(r["outcome"], r["grant_id"], r["detail"]["url"]) for r in reports] == [
        ("success", tenant.grant_id, url)
    ]
    # The echo's answer (which the SDK reports) repeats the Authorization header: the server
    # must have redacted the token from it, and from every other row.
    assert tenant.token not in json.dumps(tenant.audit())


def test_api_key_template_injects_its_custom_header(portcullis, tenant, echo):
    value = portcullis.new_secret_value("apikey")
    grant_id = tenant.new_secret_grant("api_key", {"api_key": value}, "--header-name", "X-Api-Key")

    headers = echoed_headers(f"{echo.url}/api-key", tenant.api_key, grant_id)
    assert headers["x-api-key"] == value
    assert "authorization" not in headers


def test_basic_template_injects_basic_authorization(portcullis, tenant, echo):
    password = portcullis.new_secret_value("pw")
    encoded = base64.b64encode(f"compat-user:{password}".encode()).decode()
    portcullis.remember(encoded)
    grant_id = tenant.new_secret_grant("basic", {"username": "compat-user", "password": password})

    headers = echoed_headers(f"{echo.url}/basic", tenant.api_key, grant_id)
    assert headers["authorization"] == f"Basic {encoded}"


def test_list_grants_returns_exactly_the_apps_grants(tenant, other_tenant):
    # other_tenant puts a grant of another organisation on the same server: it must not show.
    second = tenant.org.create_grant(tenant.app_id, tenant.secret_id, label="second")

    async def list_grants():
        async with App(api_key=tenant.api_key) as app:
            return await app.list_grants()

    result = asyncio.run(list_grants())
    assert result.total == 2
    assert result.has_more is False
    assert sorted(g.grant_id for g in result.grants) == sorted([tenant.grant_id, second])


def test_scopes_list_parses_and_names_token_retrieval(tenant):
    async def scopes():
        async with App(api_key=tenant.api_key) as app:
            return await app.scopes.list()

    assert "tokens:retrieve" in asyncio.run(scopes()).action_verbs


def test_revoked_key_is_refused_on_every_call(tenant, echo):
    path = f"/revoked-key-{uuid.uuid4().hex}"

    async def before_and_after_revocation():
        async with App(api_key=tenant.api_key) as app:
            await app.list_grants()  # the key works, and the server has seen it
            tenant.org.cli("keys", "revoke", "--app", tenant.app_id, tenant.key_id)
            with pytest.raises(KeyRevokedError):
                await app.request("GET", f"{echo.url}{path}", grant_id=tenant.grant_id)
            with pytest.raises(KeyRevokedError):
                await app.list_grants()

    asyncio.run(before_and_after_revocation())
    assert path not in echo.seen


def test_deprecated_key_warns_once_per_client_until_undeprecated(tenant, echo):
    async def two_calls():
        async with App(api_key=tenant.api_key) as app:
            await app.request("GET", f"{echo.url}/deprecated", grant_id=tenant.grant_id)
            await app.list_grants()

    tenant.org.cli("keys", "deprecate", "--app", tenant.app_id, tenant.key_id)
    assert len(deprecation_warnings(two_calls())) == 1

    tenant.org.cli("keys", "undeprecate", "--app", tenant.app_id, tenant.key_id)
    assert deprecation_warnings(two_calls()) == []


def test_another_apps_grant_is_indistinguishable_from_a_missing_one(tenant, other_tenant, echo):
    path = f"/boundary-{uuid.uuid4().hex}"

    async def refused(grant_id: str) -> dict:
        with pytest.raises(GrantNotFoundError) as raised:
            await fetch(other_tenant.api_key, f"{echo.url}{path}", grant_id)
        return raised.value.details

    foreign = asyncio.run(refused(tenant.grant_id))
    missing = asyncio.run(refused(str(uuid.uuid4())))
    assert foreign["error"] == "grant_not_found"
    assert without_request_ids(foreign) == without_request_ids(missing)

    rows = other_tenant.audit(action="sdk_token")
    assert [(r["outcome"], r["error_code"]) for r in rows] == [("not_found", "grant_not_found")] * 2
    assert not any(r.get("key_id") == other_tenant.key_id for r in tenant.audit())
    assert path not in echo.seen


def test_revoked_grant_raises_grant_revoked(tenant, echo):
    async def before_and_after_revocation():
        async with App(api_key=tenant.api_key) as app:
            await app.request("GET", f"{echo.url}/before-revocation", grant_id=tenant.grant_id)
            tenant.org.cli("grants", "revoke", "--app", tenant.app_id, tenant.grant_id)
            with pytest.raises(GrantRevokedError) as raised:
                await app.request("GET", f"{echo.url}/after-revocation", grant_id=tenant.grant_id)
        return raised.value

    error = asyncio.run(before_and_after_revocation())
    assert error.grant_id == tenant.grant_id
    assert "/after-revocation" not in echo.seen


def test_caller_and_context_are_recorded_on_the_token_row(tenant, echo):
    context = {"run_id": "r-42", "tool": "search"}
    asyncio.run(fetch(tenant.api_key, f"{echo.url}/caller", tenant.grant_id, caller="billing-service", context=context))

    [row] = tenant.audit(action="sdk_token")
    assert (row["outcome"], row["caller"], row["caller_type"]) == ("success", "billing-service", "service")
    assert context.items() <= row["context"].items()


def test_host_outside_the_allowed_hosts_is_blocked(tenant):
    with pytest.raises(BlockedDestinationError) as raised:
        asyncio.run(fetch(tenant.api_key, BLOCKED_URL, tenant.grant_id))
    assert (raised.value.details["error"], raised.value.status_code) == ("blocked_destination", 422)

    [row] = tenant.audit(action="sdk_token")
    assert (row["status"], row["error_code"], row["grant_id"]) == (422, "blocked_destination", tenant.grant_id)
    assert row["outcome"] != "success"
    # No credential was released, so the SDK made no provider call and reported none.
    assert tenant.audit(action="sdk_audit_api_call") == []


def test_blocked_destination_fetches_nothing(portcullis, tenant, echo):
    # The echo answers on 127.0.0.1, which this secret does not allow: only `localhost` is.
    token = portcullis.new_secret_value("tok")
    grant_id = tenant.new_secret_grant("bearer", {"token": token}, hosts=("localhost",))
    path = f"/blocked-{uuid.uuid4().hex}"

    with pytest.raises(BlockedDestinationError):
        asyncio.run(fetch(tenant.api_key, f"{echo.url}{path}", grant_id))
    assert path not in echo.seen
