//! Object-level authorization in progress itself: every route needs the
//! bearer token of the user whose data it is, whoever calls it.

use mesh::testing::invalid_tokens;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, token_for};

#[tokio::test]
async fn only_the_owner_reaches_their_enrollments_progress_and_profile() {
    let app = spawn_app().await;
    let enrollment = app.enroll_ok("alice", "c0063").await;
    let before = app.row_counts().await;
    let requests = |token: Option<String>| {
        let with = |req: reqwest::RequestBuilder| match &token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        vec![
            with(app.http.get(app.url("/users/alice/enrollments"))),
            with(app.http.get(app.url("/users/alice/profile"))),
            with(app.http.get(app.url("/users/alice/courses/c0063/progress"))),
            with(
                app.http
                    .post(app.url("/users/alice/courses/c0063/lessons/c0063-l01/complete")),
            ),
            with(
                app.http
                    .post(app.url("/enrollments"))
                    .json(&json!({"user_id": "alice", "course_id": "c0093"})),
            ),
        ]
    };
    // Bob's valid token on Alice's data: 403, none of it in the answer.
    for req in requests(Some(token_for("bob"))) {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        assert!(
            !body
                .to_string()
                .contains(enrollment["id"].as_str().unwrap()),
            "{body}"
        );
    }
    // No token, or one that must not verify: 401 with the challenge.
    let mut unauthorized = vec![("none", None)];
    unauthorized.extend(
        invalid_tokens("alice")
            .into_iter()
            .map(|(k, t)| (k, Some(t))),
    );
    for (kind, token) in unauthorized {
        for req in requests(token.clone()) {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{kind}");
            assert!(res.headers().contains_key("www-authenticate"), "{kind}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{kind}");
        }
    }
    // Nothing was enrolled or completed for anyone.
    assert_eq!(app.row_counts().await, before);
}
