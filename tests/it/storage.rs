//! Storage against the real endpoint: what lands in the table, envelope encryption bound to
//! its app and item, all-or-nothing writes, and the DynamoDB round trips of a token call.

use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::store::{Condition, Write, keys, sequential_depth, to_item};
use portcullis_tests::*;
use serde_json::json;
use uuid::Uuid;

/// Every item of the table as JSON text.
async fn dump(env: &Env) -> String {
    let mut out = String::new();
    let mut start = None;
    loop {
        let page = env
            .ctx
            .store
            .client()
            .scan()
            .table_name(env.ctx.store.table_name())
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for item in page.items() {
            out.push_str(&format!("{item:?}\n"));
        }
        match page.last_evaluated_key {
            Some(k) => start = Some(k),
            None => return out,
        }
    }
}

#[tokio::test]
async fn no_key_or_secret_is_stored_in_clear() {
    let env = env().await;
    let app = app_fixture().await;
    app.sdk(env, "POST", "/sdk/token", app.token_body(&app.grant_id))
        .await
        .ok();
    let table = dump(env).await;
    assert!(
        table.contains(&app.grant_id),
        "the dump is of the right table"
    );
    for secret in [
        &app.key,
        &app.token,
        &app.org.operator_key,
        &ROOT_SECRET.to_string(),
    ] {
        assert!(
            !table.contains(secret.as_str()),
            "{}… found in the table",
            &secret[..6]
        );
    }
}

#[tokio::test]
async fn sealed_values_open_only_for_their_app_and_item() {
    let env = env().await;
    let sealer = &env.ctx.sealer;
    let (app_a, app_b) = (Uuid::new_v4(), Uuid::new_v4());
    let sealed = sealer
        .seal(app_a, "secret:1", b"plaintext-value")
        .await
        .unwrap();
    assert_eq!(
        &sealer.open(app_a, "secret:1", &sealed).await.unwrap()[..],
        b"plaintext-value"
    );
    assert!(
        sealer.open(app_a, "secret:2", &sealed).await.is_err(),
        "other item"
    );
    assert!(
        sealer.open(app_b, "secret:1", &sealed).await.is_err(),
        "other app"
    );
    let mut tampered = sealed.clone();
    tampered.ct = tampered.ct.replacen(&tampered.ct[..2], "AA", 1);
    assert!(
        sealer.open(app_a, "secret:1", &tampered).await.is_err(),
        "tampered"
    );
    // A fresh sealer (a cold instance) has no cached data key: KMS unwraps it.
    let cold = portcullis::crypto::Sealer::new(sealer.kms().clone(), "alias/portcullis");
    assert_eq!(
        &cold.open(app_a, "secret:1", &sealed).await.unwrap()[..],
        b"plaintext-value"
    );
    assert!(
        cold.open(app_b, "secret:1", &sealed).await.is_err(),
        "KMS context binds the data key to the app"
    );
}

#[tokio::test]
async fn a_secret_copied_to_another_app_fails_to_decrypt() {
    let env = env().await;
    let a = app_fixture().await;
    let b = app_fixture().await;
    // Copy A's stored secret item over B's, keeping B's keys: the ciphertext is A's.
    let a_item = env
        .ctx
        .store
        .get(
            &keys::secret(a.app_id.parse().unwrap(), a.secret_id.parse().unwrap()),
            true,
        )
        .await
        .unwrap()
        .unwrap();
    let mut forged = a_item.clone();
    let b_key = keys::secret(b.app_id.parse().unwrap(), b.secret_id.parse().unwrap());
    forged.insert("pk".into(), AttributeValue::S(b_key.pk.clone()));
    forged.insert("app_id".into(), AttributeValue::S(b.app_id.clone()));
    forged.insert("secret_id".into(), AttributeValue::S(b.secret_id.clone()));
    env.ctx.store.put(forged, None).await.unwrap();
    let r = b
        .sdk(env, "POST", "/sdk/token", b.token_body(&b.grant_id))
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(!r.body.to_string().contains(&a.token));
}

#[tokio::test]
async fn transactions_are_all_or_nothing() {
    let env = env().await;
    let first = keys::ItemKey {
        pk: format!("t#{}", Uuid::new_v4()),
        sk: "X".into(),
    };
    let missing = keys::ItemKey {
        pk: format!("t#{}", Uuid::new_v4()),
        sk: "X".into(),
    };
    let result = env
        .ctx
        .store
        .transact(vec![
            Write::Put {
                item: to_item(&json!({"v": 1}), &first, &[]),
                condition: None,
            },
            Write::Check {
                key: missing,
                condition: Condition::present(),
            },
        ])
        .await;
    assert!(
        matches!(result, Err(portcullis::store::TxError::ConditionFailed(ref i)) if i == &vec![1])
    );
    assert!(
        env.ctx.store.get(&first, true).await.unwrap().is_none(),
        "nothing half-written"
    );
}

#[tokio::test]
async fn a_grant_for_a_secret_deleted_meanwhile_is_not_written() {
    let env = env().await;
    let app = app_fixture().await;
    let secret = env
        .ctx
        .store
        .get(
            &keys::secret(app.app_id.parse().unwrap(), app.secret_id.parse().unwrap()),
            true,
        )
        .await
        .unwrap()
        .unwrap();
    let secret: portcullis::model::ManagedSecret = portcullis::store::from_item(secret).unwrap();
    let grant = portcullis::service::grants::new_managed_secret_grant(
        &secret,
        portcullis::model::Principal::System,
        None,
        None,
        None,
        "test".into(),
        time::OffsetDateTime::now_utc(),
    );
    app.org
        .op(
            env,
            "DELETE",
            &format!("/v1/apps/{}/secrets/{}", app.app_id, app.secret_id),
            serde_json::Value::Null,
        )
        .await
        .ok();
    let result = env
        .ctx
        .store
        .transact(portcullis::service::grants::create_writes(&grant, &secret))
        .await;
    assert!(result.is_err());
    assert!(
        env.ctx
            .store
            .get(&keys::grant(grant.app_id, grant.grant_id), true)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_warm_token_call_makes_two_dynamodb_round_trips() {
    let env = env().await;
    let app = app_fixture().await;
    // First call warms the instance caches (key directory, grant → secret).
    app.sdk(env, "POST", "/sdk/token", app.token_body(&app.grant_id))
        .await
        .ok();
    // Calls of concurrently running tests would mix in: measure from a private context.
    let ctx = portcullis::Ctx::new(
        env.ctx.config.clone(),
        &portcullis::context::aws_config().await,
    );
    let send = || {
        signed_at(
            &app.key,
            "POST",
            "/sdk/token",
            &body_bytes(&app.token_body(&app.grant_id)),
            now(),
        )
    };
    use portcullis_functions::routes::dispatch;
    assert_eq!(dispatch(&ctx, send()).await.status, 200);
    let cold = ctx.store.calls.drain();
    assert_eq!(dispatch(&ctx, send()).await.status, 200);
    let warm = ctx.store.calls.drain();
    let apis: Vec<&str> = warm.iter().map(|c| c.api).collect();
    assert_eq!(
        apis,
        vec!["BatchGetItem", "TransactWriteItems"],
        "warm path"
    );
    assert_eq!(sequential_depth(&warm), 2);
    assert!(
        cold.len() <= 4,
        "cold path: {:?}",
        cold.iter().map(|c| c.api).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn nonces_expire_through_ttl() {
    let env = env().await;
    let app = app_fixture().await;
    let req = signed_at(&app.key, "GET", "/sdk/scopes", b"", now());
    let nonce = req.header("x-alter-nonce").unwrap().to_string();
    env.send(req).await.ok();
    let key_id = app.audit(env, "action=sdk_scopes").await[0]["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let item = env
        .ctx
        .store
        .get(
            &keys::nonce(&app.app_id, key_id.parse().unwrap(), &nonce),
            true,
        )
        .await
        .unwrap()
        .expect("nonce remembered");
    let ttl: i64 = item["ttl"].as_n().unwrap().parse().unwrap();
    assert!(
        ttl > now() + 600,
        "remembered longer than the signature window"
    );
}

#[tokio::test]
async fn a_batch_read_of_more_than_a_hundred_keys_answers_each_in_order() {
    let env = env().await;
    let run = Uuid::new_v4();
    let key = |i: usize| keys::ItemKey {
        pk: format!("batch#{run}#{i}"),
        sk: "X".into(),
    };
    // Every third key exists; the request repeats one key and runs past DynamoDB's 100.
    let present: Vec<usize> = (0..250).step_by(3).collect();
    for chunk in present.chunks(25) {
        let writes = chunk
            .iter()
            .map(|i| Write::Put {
                item: to_item(&json!({ "i": i }), &key(*i), &[]),
                condition: None,
            })
            .collect();
        env.ctx.store.transact(writes).await.unwrap();
    }
    let mut asked: Vec<keys::ItemKey> = (0..250).map(key).collect();
    asked.push(key(3));
    let got = env.ctx.store.get_many(&asked).await.unwrap();
    assert_eq!(got.len(), 251);
    for (i, item) in got.iter().enumerate().take(250) {
        assert_eq!(item.is_some(), i % 3 == 0, "key {i}");
    }
    assert!(got[250].is_some(), "a repeated key is answered again");
}
