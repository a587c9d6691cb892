"""OAuth through the official alter-sdk: Connect, provider-mode requests with a fresh token,
transparent refresh, several accounts, revocation. The provider is a real OAuth server process
(tests/oauth-provider) whose API rejects expired and revoked tokens, so a 200 from it proves
the token Portcullis handed out was live."""

import asyncio
import time

import httpx
import pytest
from alter_sdk import App
from alter_sdk.exceptions import AmbiguousGrantError, ConnectDeniedError, GrantRevokedError
from conftest import PROVIDER_ID, complete_connect, use_provider


async def connect(tenant, portcullis, **options) -> str:
    """One Connect session completed end to end; answers the grant ID the SDK's poll returned."""
    async with App(api_key=tenant.api_key) as app:
        session = await app.create_connect_session(allowed_providers=[PROVIDER_ID], **options)
        assert session.connect_url.startswith(f"{portcullis.url}/sdk/oauth/connect#session=")
        page = complete_connect(portcullis.url, session.session_token)
        assert page.status_code == 200
        results = await app.poll_connect_session(session.session_token, timeout=15, poll_interval=0.2)
    assert len(results) == 1
    return results[0].grant_id


def test_connect_then_request_by_provider_with_a_live_token(portcullis, tenant, oauth_provider):
    use_provider(tenant, oauth_provider, scopes=["read", "write"])

    async def scenario():
        async with App(api_key=tenant.api_key) as app:
            session = await app.create_connect_session(allowed_providers=[PROVIDER_ID])
            complete_connect(portcullis.url, session.session_token)
            [result] = await app.poll_connect_session(session.session_token, timeout=15, poll_interval=0.2)
            response = await app.request("GET", f"{oauth_provider.issuer}/api/me", provider=PROVIDER_ID)
            grants = await app.list_grants()
            return result, response, grants

    result, response, grants = asyncio.run(scenario())
    assert (result.provider_id, result.account_identifier, result.operation) == (
        PROVIDER_ID,
        "user-1@example.test",
        "creation",
    )
    assert sorted(result.scopes) == ["read", "write"]
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "user-1"
    listed = [g for g in grants.grants if g.grant_id == result.grant_id]
    assert len(listed) == 1 and listed[0].provider_id == PROVIDER_ID
    # The provider saw one code exchange, with PKCE, and no refresh.
    log = oauth_provider.log()
    assert (log["code_exchange_count"], log["refresh_count"]) == (1, 0)
    [exchange] = [t for t in log["token_requests"] if t["grant_type"] == "authorization_code"]
    assert "code_verifier" in exchange["fields"]
    assert "session_token" not in str(grants)


def test_an_expired_token_is_refreshed_transparently(portcullis, tenant, oauth_provider):
    use_provider(tenant, oauth_provider)
    oauth_provider.configure(access_ttl=2)
    grant_id = asyncio.run(connect(tenant, portcullis))
    time.sleep(2.5)  # the access token from the code exchange is now dead at the provider

    async def call():
        async with App(api_key=tenant.api_key) as app:
            return await app.request("GET", f"{oauth_provider.issuer}/api/me", grant_id=grant_id)

    assert asyncio.run(call()).status_code == 200
    assert oauth_provider.log()["refresh_count"] == 1
    rows = tenant.audit(action="sdk_token", grant_id=grant_id)
    assert [r["outcome"] for r in rows] == ["success"]


def test_two_accounts_are_ambiguous_until_the_call_names_one(portcullis, tenant, oauth_provider):
    use_provider(tenant, oauth_provider)
    first = asyncio.run(connect(tenant, portcullis, requested_grant={"label": "work"}))
    oauth_provider.configure(subject="user-2")
    second = asyncio.run(connect(tenant, portcullis, requested_grant={"label": "personal"}))
    assert first != second

    async def calls():
        async with App(api_key=tenant.api_key) as app:
            with pytest.raises(AmbiguousGrantError) as ambiguous:
                await app.request("GET", f"{oauth_provider.issuer}/api/me", provider=PROVIDER_ID)
            named = await app.request(
                "GET", f"{oauth_provider.issuer}/api/me", provider=PROVIDER_ID, account="user-2@example.test"
            )
            by_label = await app.request(
                "GET", f"{oauth_provider.issuer}/api/me", provider=PROVIDER_ID, label="work"
            )
            return ambiguous.value, named, by_label

    ambiguous, named, by_label = asyncio.run(calls())
    assert {first, second} <= set(map(str, ambiguous.details.get("grant_ids", [])))
    assert named.status_code == 200 and named.json()["sub"] == "user-2"
    assert by_label.status_code == 200 and by_label.json()["sub"] == "user-1"


def test_a_revoked_grant_raises_grant_revoked_and_is_revoked_at_the_provider(portcullis, tenant, oauth_provider):
    use_provider(tenant, oauth_provider)
    grant_id = asyncio.run(connect(tenant, portcullis))

    async def revoke_then_call():
        async with App(api_key=tenant.api_key) as app:
            await app.revoke_grant(grant_id, reason="user left")
            with pytest.raises(GrantRevokedError):
                await app.request("GET", f"{oauth_provider.issuer}/api/me", grant_id=grant_id)

    asyncio.run(revoke_then_call())
    assert len(oauth_provider.log()["revocations"]) >= 1
    [row] = tenant.audit(action="sdk_grant_revoke")
    assert row["outcome"] == "success"
    assert row["detail"]["provider_revocation"] == "revoked"


def test_denied_consent_raises_connect_denied_and_stores_nothing(portcullis, tenant, oauth_provider):
    use_provider(tenant, oauth_provider)
    oauth_provider.configure(deny=True)

    async def scenario():
        async with App(api_key=tenant.api_key) as app:
            session = await app.create_connect_session(allowed_providers=[PROVIDER_ID])
            with httpx.Client(timeout=15, follow_redirects=False) as http:
                started = http.post(
                    f"{portcullis.url}/sdk/oauth/connect/authorize",
                    json={"session_token": session.session_token, "provider_id": PROVIDER_ID},
                )
                back = http.get(started.json()["authorize_url"]).headers["location"]
                assert "error=access_denied" in back
                http.get(back)
            with pytest.raises(ConnectDeniedError):
                await app.poll_connect_session(session.session_token, timeout=15, poll_interval=0.2)
            return await app.list_grants()

    grants = asyncio.run(scenario())
    assert [g for g in grants.grants if getattr(g, "provider_id", None) == PROVIDER_ID] == []
    assert oauth_provider.log()["code_exchange_count"] == 0


def test_the_catalogue_and_provider_specs_parse_in_the_sdk(tenant, oauth_provider):
    use_provider(tenant, oauth_provider)

    async def read():
        async with App(api_key=tenant.api_key) as app:
            return await app.oauth_providers.list(), await app.provider_specs.list()

    catalogue, specs = asyncio.run(read())
    assert {"google", "github", "slack", "microsoft", PROVIDER_ID} <= set(catalogue.providers)
    assert catalogue.get_required_scopes(PROVIDER_ID) == ("read",)
    assert catalogue.providers["google"].supports_pkce
    assert len(specs) >= 55
    assert {("oauth", "google"), ("managed", "stripe")} <= {(s.provider_kind, s.provider_id) for s in specs}
