"""Managed-secret Connect through the official alter-sdk and a real browser: the app asks a user
for their own key (`create_managed_secret_connect_session`), the user signs in at the app's
identity provider on the hosted page (headless Chromium), types the key and confirms; the
agent the user delegated to then calls the API with it, and loses it when the app withdraws
the delegation."""

import asyncio
import json
import os
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest
from alter_sdk import Agent, App
from alter_sdk.exceptions import ConnectConfigError, NoDelegatedGrantError
from conftest import ROOT
from test_connect_browser import CHROMIUM
from test_identity import AUDIENCE, id_token

SIGNIN = {"client_id": "portcullis-test", "client_secret": "portcullis-test-secret"}


def use_idp_with_signin(tenant, provider) -> dict:
    body = {"preset": "oidc", "issuer": provider.issuer, "audience": AUDIENCE, "signin": SIGNIN}
    return tenant.org.cli("idp", "set", "--app", tenant.app_id, stdin=body)


def browse(connect_url: str, return_prefix: str, key: str) -> dict:
    done = subprocess.run(
        ["node", str(ROOT / "tests" / "browser" / "secret-connect.mjs"), connect_url, return_prefix, key],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in seen, seen
    return seen


def test_a_user_enters_their_key_for_an_agent_in_the_browser(portcullis, tenant, oauth_provider, echo):
    use_idp_with_signin(tenant, oauth_provider)
    slug = tenant.org.cli("secrets", "get", "--app", tenant.app_id, tenant.secret_id)["slug"]
    user_token = id_token(oauth_provider, "user-1")
    user_key = portcullis.new_secret_value("users-own-key")
    return_url = f"{echo.url}/back"

    async def ask():
        async with App(api_key=tenant.api_key) as app:
            created = await app.agents.create(name="mail-bot", scopes={"managed_secret_slugs": [slug]})
            portcullis.remember(created.api_key)
            with pytest.raises(ConnectConfigError):
                await app.create_managed_secret_connect_session(provider="no-such-secret", user_token=user_token)
            session = await app.create_managed_secret_connect_session(
                provider=slug,
                user_token=user_token,
                agent="mail-bot",
                requested_grant={"label": "personal"},
                return_url=return_url,
            )
            return created, session

    agent, session = asyncio.run(ask())
    assert (session.path, session.secret_slug, session.existing_grant_id) == ("key_entry", slug, None)
    assert str(session.agent_id) == str(agent.id)

    seen = browse(session.connect_url, return_url, user_key)
    assert seen["signin"]["form"] == 0, "nothing is asked before the user signs in"
    assert "mail-bot" in seen["consent"]["title"] and not seen["consent"]["url_has_token"]
    assert seen["console_errors"] == []
    result = {k: v[0] for k, v in parse_qs(urlsplit(seen["final_url"]).query).items()}
    assert result["alter_connect_success"] == "true" and result["agent_id"] == str(agent.id)
    delegation = result["delegation_id"]

    async def use():
        async with Agent(api_key=agent.api_key) as bot:
            used = await bot.proxy_request("GET", f"{echo.url}/as-the-user", grant_id=delegation)
            listed = await bot.list_grants()
            async with App(api_key=tenant.api_key) as app:
                await app.revoke_delegation(result["grant_id"], str(agent.id))
            with pytest.raises(NoDelegatedGrantError):
                await bot.proxy_request("GET", f"{echo.url}/as-the-user", grant_id=delegation)
            return used, listed

    used, listed = asyncio.run(use())
    assert used.body_json()["headers"]["authorization"] == f"Bearer {user_key}"
    [mine] = listed.grants
    assert (mine.grant_id, mine.credential_kind) == (delegation, "end_user")
    rows = tenant.audit(action="web_secret_connect_confirm")
    assert len(rows) == 1 and user_key not in str(rows)
