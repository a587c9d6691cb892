"""The key lifecycle through the official SDK: derived keys that die with their parent, and
rotation whose overlap keeps both keys working."""

import asyncio

import pytest
from alter_sdk import App
from alter_sdk.exceptions import KeyRevokedError


def test_a_derived_key_works_until_its_parent_is_revoked(portcullis, tenant, echo):
    parent = tenant.org.create_key(tenant.app_id)

    async def run():
        async with App(api_key=parent["api_key"]) as app:
            derived = await app.keys.derive(scopes=["tokens:retrieve"], expires_in=600)
        portcullis.remember(derived.api_key)
        assert derived.key_type == "dk" and derived.api_key.startswith("alter_dk_")
        assert str(derived.parent_key_id) == parent["id"]
        async with App(api_key=derived.api_key) as child:
            ok = await child.request("GET", echo.url + "/derived", grant_id=tenant.grant_id)
            assert ok.status_code == 200
        async with App(api_key=tenant.api_key) as admin:
            await admin.keys.revoke(key_id=parent["id"])
        async with App(api_key=derived.api_key) as child:
            with pytest.raises(KeyRevokedError):
                await child.request("GET", echo.url + "/derived", grant_id=tenant.grant_id)

    asyncio.run(run())


def test_rotation_keeps_both_keys_working_during_the_overlap(portcullis, tenant, echo):
    old = tenant.org.create_key(tenant.app_id)

    async def run():
        async with App(api_key=tenant.api_key) as admin:
            new = await admin.keys.rotate(key_id=old["id"], overlap_days=7)
        portcullis.remember(new.api_key)
        for key in (old["api_key"], new.api_key):
            async with App(api_key=key) as app:
                r = await app.request("GET", echo.url + "/rotated", grant_id=tenant.grant_id)
                assert r.status_code == 200
        return new

    new = asyncio.run(run())
    assert new.name == old["name"] and new.scopes == old["scopes"]


def test_rate_limits_surface_as_the_sdk_expects(portcullis, tenant, echo):
    limited = tenant.org.cli("keys", "create", "--app", tenant.app_id, "--name", "limited", "--rate-limit-rpm", "2")
    portcullis.remember(limited["api_key"])
    from alter_sdk.exceptions import RateLimitError

    async def run():
        async with App(api_key=limited["api_key"]) as app:
            await app.list_grants()
            snapshot = app.last_rate_limit
            await app.list_grants()
            with pytest.raises(RateLimitError) as refused:
                await app.list_grants()
            return snapshot, refused.value

    snapshot, refused = asyncio.run(run())
    assert snapshot.limit == 2 and snapshot.remaining == 1
    assert refused.limit == 2 and refused.window_seconds == 60 and refused.retry_after >= 1


def test_constraints_only_narrow_and_rules_deny(portcullis, tenant, echo):
    from alter_sdk.exceptions import BackendError, InsufficientScopeError, PolicyViolationError

    narrow_key = tenant.org.cli("keys", "create", "--app", tenant.app_id, "--name", "narrow", "--scope", "tokens:retrieve")
    portcullis.remember(narrow_key["api_key"])
    deny_posts = {"rule_type": "json_match", "rule_body": {"when": {"method": "POST"}, "effect": "deny"}}

    async def run():
        async with App(api_key=tenant.api_key) as app:
            narrowed = app.with_constraints(scopes=["tokens:retrieve"])
            ok = await narrowed.request("GET", echo.url + "/narrow", grant_id=tenant.grant_id)
            assert ok.status_code == 200
            with pytest.raises(InsufficientScopeError):
                await narrowed.list_grants()
            with pytest.raises(PolicyViolationError) as denied:
                await app.with_constraints(rule=deny_posts).request("POST", echo.url + "/deny", grant_id=tenant.grant_id)
            assert denied.value.policy_error == "request_rule_denied"
        async with App(api_key=narrow_key["api_key"]) as limited:
            with pytest.raises(BackendError) as broader:
                await limited.with_constraints(scopes=["grants:read"]).list_grants()
            assert broader.value.status_code == 400

    asyncio.run(run())
    assert "/deny" not in [path for path in echo.seen]
