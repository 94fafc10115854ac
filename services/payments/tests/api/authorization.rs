//! Object-level authorization in payments itself: every route needs the
//! bearer token of the user whose payment it is, whoever calls it.

use mesh::testing::invalid_tokens;
use serde_json::Value;

use crate::helpers::{charge_body, new_key, spawn_app, token_for};

#[tokio::test]
async fn only_the_owner_reaches_a_payment_and_nothing_changes_for_anyone_else() {
    let app = spawn_app().await;
    let res = app.charge(Some(&new_key()), &charge_body("alice")).await;
    assert_eq!(res.status(), 201);
    let payment: Value = res.json().await.unwrap();
    let id = payment["id"].as_str().unwrap().to_owned();
    let before = app.snapshot().await;

    let requests = |token: Option<String>| {
        let with = |req: reqwest::RequestBuilder| match &token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        vec![
            with(app.http.get(app.url(&format!("/payments/{id}")))),
            with(app.http.post(app.url(&format!("/payments/{id}/refund")))),
            with(app.http.get(app.url("/users/alice/payments"))),
            with(
                app.http
                    .post(app.url("/payments"))
                    .header("Idempotency-Key", new_key())
                    .json(&charge_body("alice")),
            ),
        ]
    };
    // Bob's valid token on Alice's objects: 403, none of her data.
    for req in requests(Some(token_for("bob"))) {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        assert!(!body.to_string().contains(&id), "{body}");
    }
    // No token, or a bad one: 401 with the challenge.
    let mut unauthorized = vec![("none", None)];
    unauthorized.extend(
        invalid_tokens("alice")
            .into_iter()
            .map(|(k, t)| (k, Some(t))),
    );
    for (kind, token) in unauthorized {
        for req in requests(token.clone()) {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 401, "{kind}");
            assert_eq!(
                res.headers()["www-authenticate"],
                r#"Bearer realm="learnsphere""#
            );
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{kind}");
        }
    }
    // Nothing was charged, refunded or reserved.
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.stored(&id).await.0, "captured");
    assert_eq!(app.count("outbox").await, 1, "only the capture's event");
}
