"""Managed agents through the official SDK: creation and keys, what an agent's own key can
reach, impersonation by the app key (attribution, with the actor ID the SDK then signs), and
suspension."""

import asyncio
import uuid

import pytest
from alter_sdk import Agent, App
from alter_sdk.exceptions import AgentDelegationMissingError, AgentInactiveError, AgentNotFoundError


def slug_of(tenant, secret_id: str) -> str:
    return tenant.org.cli("secrets", "get", "--app", tenant.app_id, secret_id)["slug"]


def grant_to_agent(tenant, secret_id: str, agent_id: str) -> str:
    args = ["grants", "create", "--app", tenant.app_id, "--secret", secret_id, "--agent", agent_id]
    return tenant.org.cli(*args)["grant_id"]


async def create_agent_with_second_key(api_key: str, name: str, slugs: list[str]):
    async with App(api_key=api_key) as app:
        created = await app.agents.create(name=name, scopes={"managed_secret_slugs": slugs})
        minted = await app.agents.mint_key(str(created.id))
        keys = await app.agents.list_keys(str(created.id))
        return created, minted, keys


def test_an_agent_key_retrieves_its_bound_secret_and_nothing_else(portcullis, tenant, echo):
    slug = slug_of(tenant, tenant.secret_id)
    created, minted, keys = asyncio.run(create_agent_with_second_key(tenant.api_key, f"bot-{uuid.uuid4().hex[:6]}", [slug]))
    portcullis.remember(created.api_key)
    portcullis.remember(minted.api_key)
    assert created.status == "active" and created.api_key.startswith("alter_key_")
    assert len(keys.items) == 2
    bound = grant_to_agent(tenant, tenant.secret_id, str(created.id))

    async def as_agent():
        async with Agent(api_key=minted.api_key) as agent:
            me = await agent.me()
            ok = await agent.request("GET", echo.url + "/agent", grant_id=bound)
            with pytest.raises(AgentDelegationMissingError):
                await agent.request("GET", echo.url + "/agent", grant_id=tenant.grant_id)
            listed = await agent.list_grants()
            return me, ok, listed

    me, ok, listed = asyncio.run(as_agent())
    assert str(me.id) == str(created.id)
    assert ok.json()["headers"]["authorization"] == f"Bearer {tenant.token}"
    assert [g.grant_id for g in listed.grants] == [bound]
    rows = tenant.audit(action="sdk_token", outcome="success")
    assert rows[0]["principal_type"] == "agent" and rows[0]["principal_id"] == str(created.id)


def test_the_app_key_acting_as_an_agent_is_attributed_to_it(tenant, echo):
    async def run():
        async with App(api_key=tenant.api_key) as app:
            created = await app.agents.create(name=f"imp-{uuid.uuid4().hex[:6]}", scopes={})
            agent = app.get_agent(str(created.id))
            # Two calls: the first answer carries X-Alter-Actor-ID, the second signs it back.
            for _ in range(2):
                r = await agent.request("GET", echo.url + "/imp", grant_id=tenant.grant_id)
                assert r.status_code == 200
            with pytest.raises(AgentNotFoundError):
                await app.get_agent(str(uuid.uuid4())).me()
            return created

    created = asyncio.run(run())
    rows = tenant.audit(action="sdk_token", outcome="success")[:2]
    assert all(r["principal_type"] == "agent" and r["principal_id"] == str(created.id) for r in rows)
    assert rows[0]["actor_id"] == str(created.id), "the SDK signed the actor ID it was given"


def test_a_suspended_agent_is_refused_until_resumed(portcullis, tenant):
    async def run():
        async with App(api_key=tenant.api_key) as app:
            created = await app.agents.create(name=f"sus-{uuid.uuid4().hex[:6]}", scopes={})
            portcullis.remember(created.api_key)
            await app.agents.suspend(str(created.id))
            async with Agent(api_key=created.api_key) as agent:
                with pytest.raises(AgentInactiveError):
                    await agent.me()
            await app.agents.resume(str(created.id))
            async with Agent(api_key=created.api_key) as agent:
                me = await agent.me()
            found = await app.agents.get_by_name(created.name)
            return me, found

    me, found = asyncio.run(run())
    assert me.status == "active" and found.id == me.id
