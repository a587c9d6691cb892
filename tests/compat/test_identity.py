"""End users through the official alter-sdk: an app whose identity provider is the test OIDC
issuer (tests/oauth-provider), `App(user_token_getter=…)` acting for one user at a time, each
seeing and using only their own grants."""

import asyncio

import pytest
from alter_sdk import App
from alter_sdk.exceptions import AmbiguousGrantError, GrantNotFoundError, ReAuthRequiredError
from conftest import PROVIDER_ID, complete_connect, use_provider

AUDIENCE = "portcullis-compat"


def use_idp(tenant, provider) -> dict:
    """The test issuer as the app's identity provider, configured with the CLI."""
    body = {"preset": "oidc", "issuer": provider.issuer, "audience": AUDIENCE}
    return tenant.org.cli("idp", "set", "--app", tenant.app_id, stdin=body)


def id_token(provider, sub: str, **claims) -> str:
    claims = {"sub": sub, "aud": AUDIENCE, "email": f"{sub}@example.test", **claims}
    return provider.control("idp/token", {"claims": claims})["token"]


async def connect_as(portcullis, tenant, token: str) -> str:
    """A Connect completed by the user `token` names (the getter supplies it): the grant ID."""
    async with App(api_key=tenant.api_key, user_token_getter=lambda: token) as app:
        session = await app.create_connect_session(allowed_providers=[PROVIDER_ID])
        assert complete_connect(portcullis.url, session.session_token).status_code == 200
        [result] = await app.poll_connect_session(session.session_token, timeout=15, poll_interval=0.2)
    return result.grant_id


def test_each_user_lists_and_uses_only_their_own_grants(portcullis, tenant, oauth_provider):
    use_provider(tenant, oauth_provider)
    assert use_idp(tenant, oauth_provider)["claims_locked"] is False
    alice, bob = id_token(oauth_provider, "alice"), id_token(oauth_provider, "bob")
    oauth_provider.configure(subject="user-1")
    alice_grant = asyncio.run(connect_as(portcullis, tenant, alice))
    oauth_provider.configure(subject="user-2")
    bob_grant = asyncio.run(connect_as(portcullis, tenant, bob))

    async def as_user(token):
        async with App(api_key=tenant.api_key, user_token_getter=lambda: token) as app:
            listed = await app.list_grants()
            response = await app.request("GET", f"{oauth_provider.issuer}/api/me", provider=PROVIDER_ID)
            return [g.grant_id for g in listed.grants], response

    for token, mine, theirs, subject in [(alice, alice_grant, bob_grant, "user-1"), (bob, bob_grant, alice_grant, "user-2")]:
        listed, response = asyncio.run(as_user(token))
        assert listed == [mine], f"not {theirs}"
        assert response.status_code == 200 and response.json()["sub"] == subject

    # The app itself (no getter) sees both; a user naming the other's grant finds nothing.
    async def app_view_and_trespass():
        async with App(api_key=tenant.api_key) as app:
            every = {g.grant_id for g in (await app.list_grants()).grants}
        async with App(api_key=tenant.api_key, user_token_getter=lambda: alice) as app:
            with pytest.raises(GrantNotFoundError):
                await app.request("GET", f"{oauth_provider.issuer}/api/me", grant_id=bob_grant)
        return every

    assert {alice_grant, bob_grant} <= asyncio.run(app_view_and_trespass())
    rows = tenant.audit(action="sdk_token")
    assert {r["principal_type"] for r in rows} == {"user"}
    assert alice not in str(rows) and bob not in str(rows)


def test_a_user_with_two_accounts_names_one_and_a_user_without_any_gets_not_found(portcullis, tenant, oauth_provider):
    use_provider(tenant, oauth_provider)
    use_idp(tenant, oauth_provider)
    carol = id_token(oauth_provider, "carol")
    oauth_provider.configure(subject="work")
    asyncio.run(connect_as(portcullis, tenant, carol))
    oauth_provider.configure(subject="home")
    asyncio.run(connect_as(portcullis, tenant, carol))

    async def calls():
        async with App(api_key=tenant.api_key, user_token_getter=lambda: carol) as app:
            with pytest.raises(AmbiguousGrantError) as ambiguous:
                await app.request("GET", f"{oauth_provider.issuer}/api/me", provider=PROVIDER_ID)
            named = await app.request(
                "GET", f"{oauth_provider.issuer}/api/me", provider=PROVIDER_ID, account="home@example.test"
            )
        dave = id_token(oauth_provider, "dave")
        async with App(api_key=tenant.api_key, user_token_getter=lambda: dave) as app:
            with pytest.raises(GrantNotFoundError):
                await app.request("GET", f"{oauth_provider.issuer}/api/me", provider=PROVIDER_ID)
        return ambiguous.value, named

    ambiguous, named = asyncio.run(calls())
    assert sorted(ambiguous.details["account_identifiers"]) == ["home@example.test", "work@example.test"]
    assert named.status_code == 200 and named.json()["sub"] == "home"


def test_an_expired_or_foreign_user_token_asks_to_sign_in_again(portcullis, tenant, oauth_provider):
    use_idp(tenant, oauth_provider)
    expired = id_token(oauth_provider, "erin", exp=1)
    wrong_audience = id_token(oauth_provider, "erin", aud="another-app")

    async def call(token):
        async with App(api_key=tenant.api_key, user_token_getter=lambda: token) as app:
            with pytest.raises(ReAuthRequiredError) as refused:
                await app.list_grants()
            return refused.value

    assert "expired" in str(asyncio.run(call(expired)))
    assert "audience" in str(asyncio.run(call(wrong_audience)))


def test_verify_user_token_and_resolve_identity(tenant, oauth_provider):
    use_idp(tenant, oauth_provider)
    frank = id_token(oauth_provider, "frank")
    expired = id_token(oauth_provider, "frank", exp=1)

    async def calls():
        async with App(api_key=tenant.api_key) as app:
            verified = await app.verify_user_token(frank)
            refused = await app.verify_user_token(expired)
            identity = await app.resolve_identity(user_token=frank, include_profile=True)
            again = await app.resolve_identity(user_token=frank)
            return verified, refused, identity, again

    verified, refused, identity, again = asyncio.run(calls())
    assert (verified, refused) == ("frank", None)
    assert identity.app_id == tenant.app_id
    assert identity.external_subject_id == "frank" and identity.email == "frank@example.test"
    assert identity.app_user_id and identity.app_user_id == again.app_user_id
    assert again.email is None


def test_an_agent_uses_a_users_delegation_until_it_is_revoked(portcullis, tenant, oauth_provider):
    """Connect with agent=: the user's consent lets the agent call the provider as the user;
    the app withdraws it and the agent gets NoDelegatedGrantError; consent again, and the agent
    gives it up itself."""
    from alter_sdk import Agent
    from alter_sdk.exceptions import NoDelegatedGrantError, RestrictedGrantRequiresProxyError

    use_provider(tenant, oauth_provider)
    use_idp(tenant, oauth_provider)
    grace = id_token(oauth_provider, "grace")

    async def scenario():
        async with App(api_key=tenant.api_key, user_token_getter=lambda: grace) as app:
            created = await app.agents.create(name="mail-bot", scopes={PROVIDER_ID: ["read"]})
            portcullis.remember(created.api_key)

            async def consent():
                session = await app.create_connect_session(allowed_providers=[PROVIDER_ID], agent=str(created.id))
                assert complete_connect(portcullis.url, session.session_token).status_code == 200
                [result] = await app.poll_connect_session(session.session_token, timeout=15, poll_interval=0.2)
                return result

            result = await consent()
            me = f"{oauth_provider.issuer}/api/me"
            async with Agent(api_key=created.api_key) as agent:
                listed = await agent.list_grants()
                # A delegation is used in proxy mode: the agent never holds the user's token.
                with pytest.raises(RestrictedGrantRequiresProxyError):
                    await agent.request("GET", me, provider=PROVIDER_ID)
                used = await agent.proxy_request("GET", me, provider=PROVIDER_ID)
                await app.revoke_delegation(result.grant_id, str(created.id))
                with pytest.raises(NoDelegatedGrantError):
                    await agent.proxy_request("GET", me, provider=PROVIDER_ID)
                await consent()
                again = await agent.proxy_request("GET", me, provider=PROVIDER_ID)
                await agent.revoke_delegation(result.grant_id)
                with pytest.raises(NoDelegatedGrantError):
                    await agent.proxy_request("GET", me, provider=PROVIDER_ID)
            # The user's own grant was never touched.
            own = await app.request("GET", f"{oauth_provider.issuer}/api/me", grant_id=result.grant_id)
            return result, listed, used, again, own

    result, listed, used, again, own = asyncio.run(scenario())
    assert result.delegation is not None and str(result.delegation.agent_id)
    assert [g.parent_grant_id for g in listed.grants] == [result.grant_id]
    assert used.status_code == again.status_code == own.status_code == 200
    assert used.body_json()["sub"] == "user-1"


def test_an_identity_assertion_verifies_with_the_sdks_own_verifier(portcullis, tenant, oauth_provider):
    """assert_identity → the SDK's verify_identity_assertion against the app's published JWKS."""
    import httpx
    from alter_sdk.exceptions import MemoryIsolationError
    from alter_sdk.memory import verify_identity_assertion

    use_idp(tenant, oauth_provider)
    henry = id_token(oauth_provider, "henry")
    audience = "https://tools.example.com/memory"

    async def mint():
        async with App(api_key=tenant.api_key) as app:
            as_user = await app.assert_identity(audience=audience, user_token=henry, ttl_seconds=120)
            as_app = await app.assert_identity(audience=audience)
            return as_user, as_app

    as_user, as_app = asyncio.run(mint())
    jwks = httpx.get(f"{portcullis.url}/sdk/identity/apps/{tenant.app_id}/jwks.json").json()
    assert [k["kty"] for k in jwks["keys"]] == ["EC"] and "d" not in jwks["keys"][0]
    verify = lambda token, **kw: verify_identity_assertion(  # noqa: E731
        token, issuer=portcullis.url, audience=audience, jwks=jwks, expected_app_id=tenant.app_id, **kw
    )
    verified = verify(as_user.token)
    assert verified.app_user_id == as_user.identity.app_user_id and verified.user_status == "active"
    assert verify(as_app.token).app_user_id is None
    # Another audience, another app, a tampered token: all refused by the verifier.
    for bad in (
        lambda: verify_identity_assertion(as_user.token, issuer=portcullis.url, audience="https://other.example", jwks=jwks, expected_app_id=tenant.app_id),
        lambda: verify_identity_assertion(as_user.token, issuer=portcullis.url, audience=audience, jwks=jwks, expected_app_id="another-app"),
        lambda: verify(as_user.token[:-4] + ("AAAA" if not as_user.token.endswith("AAAA") else "BBBB")),
    ):
        with pytest.raises(MemoryIsolationError):
            bad()


def test_a_sign_in_session_through_the_sdk(portcullis, tenant, oauth_provider):
    """create_auth_session → the person signs in at the IdP (the test issuer) → poll_auth_session
    answers their ID token, which then works as the App's user token."""
    import httpx

    body = {
        "preset": "oidc",
        "issuer": oauth_provider.issuer,
        "audience": AUDIENCE,
        "signin": {"client_id": "portcullis-test", "client_secret": "portcullis-test-secret"},
    }
    tenant.org.server.remember("portcullis-test-secret")
    tenant.org.cli("idp", "set", "--app", tenant.app_id, stdin=body)
    oauth_provider.configure(subject="ivy")

    async def sign_in():
        async with App(api_key=tenant.api_key) as app:
            session = await app.create_auth_session()
            with httpx.Client(follow_redirects=False, timeout=10) as browser:
                at_idp = browser.get(session.auth_url)
                assert at_idp.status_code == 302
                back = browser.get(at_idp.headers["location"])
                assert back.status_code == 200 and "signed in" in back.text
            result = await app.poll_auth_session(session.session_token, timeout=15, poll_interval=0.2)
        async with App(api_key=tenant.api_key, user_token_getter=lambda: result.user_token) as app:
            identity = await app.resolve_identity()
        return result, identity

    result, identity = asyncio.run(sign_in())
    assert result.user_info["sub"] == "ivy"
    assert identity.external_subject_id == "ivy"
