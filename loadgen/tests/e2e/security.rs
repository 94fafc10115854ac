//! Security, checked from outside on the running system: services enforce
//! object-level authorization themselves (not only the gateway), admin
//! routes need their token, nothing internal is reachable through the
//! gateway, no secret or personal data reaches telemetry, random paths do
//! not mint metric series, and every OpenAPI document holds up against
//! Schemathesis.

use std::{
    collections::BTreeSet,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::support::{self, Otlp, TestSystem};

const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";

async fn status_and_body(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A user-scoped route called with the wrong caller: its status, which
/// must be `want`, with the JSON error body and none of the owner's data.
async fn assert_refused(req: reqwest::RequestBuilder, want: u16, what: &str, owner: &str) {
    let (status, body) = status_and_body(req).await;
    assert_eq!(status, want, "{what}: {body}");
    let code = if want == 401 {
        "unauthorized"
    } else {
        "forbidden"
    };
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(
        !body.to_string().contains(&format!("\"{owner}\"")) || what.contains(owner),
        "{what}: the answer names the owner's data: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_refuse_other_users_objects_themselves_not_only_the_gateway() {
    let sys = TestSystem::start(
        Otlp::Grpc,
        &[("payments", &["--provider-decline-rate", "0"])],
    )
    .await;
    let (alice, alice_token) = sys.signed_up_user().await;
    let (bob, bob_token) = sys.signed_up_user().await;
    let course = sys.paid_course().await;
    let course_id = course["id"].as_str().unwrap();
    let res = sys
        .checkout(&alice_token, course_id, "alice-buys")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let bought: Value = res.json().await.unwrap();
    let payment_id = bought["payment"]["id"].as_str().unwrap().to_owned();

    let users = sys.url("users");
    let payments = sys.url("payments");
    let progress = sys.url("progress");
    let lesson = format!("{course_id}-l01");
    // Every user-scoped route of every service, called directly, bypassing
    // the gateway: Bob's valid token on Alice's objects, and no token.
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("{users}/users/{alice}"), None),
        ("GET", format!("{payments}/payments/{payment_id}"), None),
        (
            "POST",
            format!("{payments}/payments/{payment_id}/refund"),
            None,
        ),
        ("GET", format!("{payments}/users/{alice}/payments"), None),
        (
            "POST",
            format!("{payments}/payments"),
            Some(
                json!({"user_id": alice, "course_id": course_id, "amount_cents": 100, "currency": "USD"}),
            ),
        ),
        ("GET", format!("{progress}/users/{alice}/enrollments"), None),
        ("GET", format!("{progress}/users/{alice}/profile"), None),
        (
            "GET",
            format!("{progress}/users/{alice}/courses/{course_id}/progress"),
            None,
        ),
        (
            "POST",
            format!("{progress}/users/{alice}/courses/{course_id}/lessons/{lesson}/complete"),
            None,
        ),
        (
            "POST",
            format!("{progress}/enrollments"),
            Some(json!({"user_id": alice, "course_id": "c0002"})),
        ),
    ];
    for (method, url, body) in &routes {
        let request = |token: Option<&str>| {
            let mut req = match *method {
                "GET" => sys.http.get(url),
                _ => sys.http.post(url),
            };
            if let Some(body) = body {
                req = req.json(body);
            }
            if url.ends_with("/payments") && *method == "POST" {
                req = req.header("idempotency-key", format!("bob-{}", uuid::Uuid::new_v4()));
            }
            match token {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
        };
        assert_refused(
            request(Some(&bob_token)),
            403,
            &format!("{method} {url} as Bob"),
            &alice,
        )
        .await;
        let res = request(None).send().await.unwrap();
        assert_eq!(res.status(), 401, "{method} {url} without a token");
        assert!(
            res.headers().contains_key("www-authenticate"),
            "{method} {url}: 401 without WWW-Authenticate"
        );
    }

    // Nothing Bob tried changed Alice's state: her payment is captured,
    // she has one enrollment and no completed lesson; Bob bought nothing.
    let (status, payment) = status_and_body(
        sys.http
            .get(format!("{payments}/payments/{payment_id}"))
            .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(status, 200, "{payment}");
    assert_eq!(
        payment["status"], "captured",
        "Bob's refund went through: {payment}"
    );
    let (_, enrollments) = status_and_body(
        sys.http
            .get(format!("{progress}/users/{alice}/enrollments"))
            .bearer_auth(&alice_token),
    )
    .await;
    let items = enrollments["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{enrollments}");
    assert_eq!(items[0]["completed_lessons"], 0, "{enrollments}");
    let (_, list) = status_and_body(
        sys.http
            .get(format!("{payments}/users/{alice}/payments"))
            .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (_, bobs) = status_and_body(
        sys.http
            .get(format!("{payments}/users/{bob}/payments"))
            .bearer_auth(&bob_token),
    )
    .await;
    assert_eq!(bobs["items"].as_array().unwrap().len(), 0, "{bobs}");
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_their_token_and_the_gateway_exposes_only_the_api() {
    let sys = TestSystem::start_with_options(Otlp::Grpc, &[], &[], |options| {
        options.admin_token = Some(ADMIN_TOKEN.to_owned());
    })
    .await;
    let (_, user_token) = sys.signed_up_user().await;
    for service in ["gateway", "users", "courses", "payments", "progress"] {
        let base = sys.url(service);
        for (method, path) in [
            ("GET", "/admin/faults"),
            ("POST", "/admin/crash"),
            ("POST", "/admin/drain"),
            ("DELETE", "/admin/faults"),
        ] {
            let url = format!("{base}{path}");
            let req = |token: Option<&str>| {
                let req = sys
                    .http
                    .request(method.parse().unwrap(), &url)
                    .header("content-type", "application/json");
                match token {
                    Some(t) => req.bearer_auth(t),
                    None => req,
                }
            };
            for token in [None, Some(user_token.as_str()), Some("wrong-token")] {
                let (status, body) = status_and_body(req(token)).await;
                assert_eq!(
                    status, 401,
                    "{service} {method} {path} with {token:?}: {body}"
                );
                assert_eq!(body["error"]["code"], "unauthorized", "{body}");
            }
        }
        // The right token works (read-only: listing faults).
        let res = sys
            .http
            .get(format!("{base}/admin/faults"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{service}: the admin token is refused");
    }
    // The gateway routes only /api/* to the services: their metrics,
    // admin API and internal routes are not reachable through it. (Clients
    // resolve `..` before sending, so a path that climbs out of /api
    // reaches the gateway's own admin routes, which need the admin token
    // like every replica's; see docs/security.md for what a deployment
    // publishes.)
    let gw = sys.gateway();
    for path in [
        "/api/metrics",
        "/api/admin/faults",
        "/api/users/x/admin/faults",
        "/api/../admin/faults",
        "/payments",
        "/enrollments",
        "/users",
        "/sessions",
        "/courses",
    ] {
        let res = sys
            .http
            .get(format!("{gw}{path}"))
            .bearer_auth(&user_token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert!(
            [401, 403, 404, 405].contains(&status),
            "{path}: {status} {text}"
        );
        assert!(
            !text.contains("# TYPE") && !text.contains("faults\""),
            "{path}: {text}"
        );
    }
    sys.stop().await;
}

/// Drives sign-up, login, a failed login, checkout and requests that carry
/// personal data in the path, then searches every exported span (name,
/// attributes, events, status), every log line of every service and every
/// `/metrics` for the password, the token, the email and a card number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_token_email_or_card_number_reaches_telemetry() {
    let sys = TestSystem::start(
        Otlp::Grpc,
        &[("payments", &["--provider-decline-rate", "0"])],
    )
    .await;
    let gw = sys.gateway();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let email = format!("hygiene-{unique}@example.com");
    let password = format!("pw-{unique}-Secret!");
    let card = "4111 1111 1111 1111";
    let card_digits = "4111111111111111";

    let res = sys
        .http
        .post(format!("{gw}/api/users"))
        .json(&json!({"email": email, "display_name": "Hy Giene", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    let user_id = user["id"].as_str().unwrap().to_owned();
    // A wrong password, and a body that is wrong in a way whose error
    // message could echo a value.
    let res = sys
        .http
        .post(format!("{gw}/api/sessions"))
        .json(&json!({"email": email, "password": format!("{password}-wrong")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = sys
        .http
        .post(format!("{gw}/api/users"))
        .json(&json!({"email": email, "display_name": "Hy Giene", "password": password, "card": card}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    let res = sys
        .http
        .post(format!("{gw}/api/sessions"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let session: Value = res.json().await.unwrap();
    let token = session["access_token"].as_str().unwrap().to_owned();
    let course = sys.paid_course().await;
    let res = sys
        .checkout(
            &token,
            course["id"].as_str().unwrap(),
            &format!("card-{card_digits}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    // Personal data where a careless client puts it: in the path and the
    // query, and a token in a header no service reads.
    for url in [
        format!("{gw}/api/users/{email}/enrollments"),
        format!("{gw}/api/courses?tag={card_digits}"),
        format!("{gw}/api/courses/{card_digits}"),
        format!("{gw}/api/no-such-route/{email}/{password}"),
    ] {
        let res = sys
            .http
            .get(&url)
            .bearer_auth(&token)
            .header("x-api-key", &token)
            .send()
            .await
            .unwrap();
        assert!(res.status().as_u16() < 500, "{url}: {}", res.status());
    }
    let res = sys
        .http
        .get(format!("{gw}/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Everything the services export and write, once they have flushed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let secrets = [
        ("password", password.as_str()),
        ("token", token.as_str()),
        ("email", email.as_str()),
        ("card number", card),
        ("card number", card_digits),
    ];
    loop {
        let spans = sys.receiver.spans();
        // The checkout's spans reached the receiver (so the search below
        // searched something).
        let exported = spans.iter().any(|s| s.name == "POST /api/checkout")
            && spans.iter().any(|s| s.name == "POST /payments");
        if exported || Instant::now() > deadline {
            assert!(exported, "the checkout's spans were never exported");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut metrics = String::new();
    for service in ["gateway", "users", "courses", "payments", "progress"] {
        let res = sys
            .http
            .get(format!("{}/metrics", sys.url(service)))
            .header("accept", "application/openmetrics-text; version=1.0.0")
            .send()
            .await
            .unwrap();
        metrics.push_str(&res.text().await.unwrap());
    }
    // Stopped, not dropped: its spans and logs are searched below, and
    // stopping flushes both.
    let mut sys = sys;
    sys.system.stop(Duration::from_secs(10)).await;
    let spans = sys.receiver.spans();
    assert!(spans.len() > 20, "only {} spans exported", spans.len());
    let logs = read_logs(&sys.dir.path().join("logs"));
    assert!(
        logs.lines().count() > 10,
        "the services logged almost nothing"
    );
    // The log records exported over OTLP: the same events as the lines.
    let records = sys.receiver.logs();
    assert!(
        records
            .iter()
            .any(|r| r.body_text().contains("payment recorded")),
        "the checkout's log records were never exported: {records:#?}"
    );
    // The user id may appear (it is not personal data); the email the
    // path carried must have been redacted.
    for (what, secret) in secrets {
        for span in &spans {
            let text = format!("{span:?}");
            assert!(
                !text.contains(secret),
                "the {what} is in a span of {}: {} {text}",
                span.service_name,
                span.name
            );
        }
        for record in &records {
            let text = format!("{record:?}");
            assert!(
                !text.contains(secret),
                "the {what} is in a log record of {}: {text}",
                record.service_name
            );
        }
        assert!(!metrics.contains(secret), "the {what} is in /metrics");
        if let Some(line) = logs.lines().find(|l| l.contains(secret)) {
            panic!("the {what} is in a log line: {line}");
        }
    }
    // The search did look at the requests that carried them.
    assert!(
        spans.iter().any(|s| s
            .attr_str("url.path")
            .is_some_and(|p| p.contains("/enrollments"))),
        "no span of the request with the email in its path"
    );
    assert!(spans.iter().any(|s| format!("{s:?}").contains(&user_id)));
}

fn read_logs(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("the services write logs to files") {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    all
}

/// The distinct series of a scrape: metric name and labels, values cut.
fn series(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let end = l
                .find('}')
                .map(|i| i + 1)
                .unwrap_or_else(|| l.find(' ').unwrap_or(l.len()));
            l[..end].to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_paths_add_a_handful_of_series() {
    let sys = TestSystem::start_with_env(
        Otlp::Grpc,
        &[],
        // The flood is one client: the rate limit would answer it all
        // with 429 before the routes are looked at.
        &[("RATE_LIMIT_PER_SECOND", "0")],
    )
    .await;
    let gw = sys.gateway();
    let scrape = |http: reqwest::Client, url: String| async move {
        http.get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "FOO", "PURGE", "OPTIONS",
    ];
    // Every method once on an unknown path and on a known route, so the
    // series such requests can ever have exist before the flood: what is
    // measured is whether *paths* mint series.
    for method in methods {
        for path in ["/api/courses", "/nope/1", "/api/nope"] {
            let _ = sys
                .http
                .request(method.parse().unwrap(), format!("{gw}{path}"))
                .send()
                .await
                .unwrap();
        }
    }
    let before = series(&scrape(sys.http.clone(), gw.clone()).await);
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..10_000u32 {
        let http = sys.http.clone();
        let method = methods[(i as usize) % methods.len()];
        let path = format!(
            "{gw}/{}/{}/{:x}?q={i}",
            ["api", "x", "api/users", "api/courses"][(i % 4) as usize],
            uuid::Uuid::new_v4().simple(),
            u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        );
        pending.spawn(async move {
            let res = http
                .request(method.parse().unwrap(), &path)
                .send()
                .await
                .unwrap();
            assert!(
                res.status().as_u16() < 500,
                "{method} {path}: {}",
                res.status()
            );
        });
        if pending.len() >= 32 {
            pending.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = pending.join_next().await {
        done.unwrap();
    }
    let after = series(&scrape(sys.http.clone(), gw.clone()).await);
    let added: Vec<_> = after.difference(&before).collect();
    println!(
        "{} series before, {} after; added: {added:#?}",
        before.len(),
        after.len()
    );
    assert!(
        added.len() <= 5,
        "10,000 random paths added {} series: {added:#?}",
        added.len()
    );
    // Unmatched routes share one label value, whatever the path.
    assert!(
        after
            .iter()
            .filter(|s| s.starts_with("http_server_request_duration_seconds_count"))
            .all(|s| !s.contains("/x/") && !s.contains("api/users/")),
        "a raw path became a label"
    );
    sys.stop().await;
}

/// Schemathesis' `st`, if installed; CI installs it (`.ci/run`), so there
/// a missing one is a failure, elsewhere a skip.
fn schemathesis() -> Option<&'static str> {
    let found = Command::new("st")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "Schemathesis (`st`) is missing: pip install schemathesis"
        );
        eprintln!("skipping: Schemathesis is not installed (pip install schemathesis)");
    }
    found.then_some("st")
}

/// Schemathesis against every OpenAPI document: the gateway's (the public
/// contract) and each service's, with a real user's token, the generated
/// requests bounded per operation, and three checks: no 5xx, every status
/// documented, every body matching its schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_in_any_openapi_document() {
    let Some(st) = schemathesis() else {
        return;
    };
    if std::env::var_os("TEST_DATABASE_URL").is_some() {
        // The contracts do not depend on the database; once is enough.
        eprintln!("skipping on the PostgreSQL pass: the SQLite pass ran Schemathesis");
        return;
    }
    let sys = TestSystem::start_with_env(
        Otlp::Grpc,
        &[],
        // Thousands of requests from one client: with the limits on,
        // most would be 429 (documented, but they test nothing else).
        &[
            ("RATE_LIMIT_PER_SECOND", "0"),
            ("CREDENTIALS_RATE_LIMIT_PER_MINUTE", "0"),
            ("LOGIN_FAILURES_BURST", "0"),
            ("OTEL_SDK_DISABLED", "true"),
        ],
    )
    .await;
    let (_, token) = sys.signed_up_user().await;
    let reports = sys.dir.path().join("schemathesis");
    std::fs::create_dir_all(&reports).unwrap();
    // An invalid token on every request would pass the three checks with
    // 401s alone: make that a failure.
    let config = reports.join("schemathesis.toml");
    std::fs::write(&config, "[warnings]\nfail-on = [\"missing_auth\"]\n").unwrap();
    let mut total = 0u64;
    for service in ["gateway", "users", "courses", "payments", "progress"] {
        let base = sys.url(service);
        let report = reports.join(format!("{service}.json"));
        let started = Instant::now();
        let output = Command::new(st)
            // Its example database and cache go beside the reports, not
            // into the source tree.
            .current_dir(&reports)
            .arg("--config-file")
            .arg(&config)
            .args(["run", &format!("{base}/openapi.json"), "--url", &base])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,response_schema_conformance",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "100",
                "--seed",
                "7",
                "--request-timeout",
                "10",
                "--max-failures",
                "20",
                "--no-color",
                "--report",
                "json",
                "--report-json-path",
            ])
            .arg(&report)
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .output()
            .expect("st runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let summary: Value = std::fs::read_to_string(&report)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let generated = generated_requests(&summary);
        println!(
            "{service}: {generated} generated requests in {:.0?}, exit {:?}",
            started.elapsed(),
            output.status.code()
        );
        assert!(
            output.status.success(),
            "Schemathesis found failures in {service}'s API:\n{stdout}\n{stderr}"
        );
        total += generated;
    }
    println!("{total} generated requests in all");
    assert!(total >= 2000, "only {total} requests were generated");
    sys.stop().await;
}

/// How many test cases a Schemathesis JSON report says were generated;
/// the report's layout varies between versions, so this sums every
/// `generated` count it holds.
fn generated_requests(report: &Value) -> u64 {
    match report {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match (k.as_str(), v) {
                ("generated", Value::Number(n)) => n.as_u64().unwrap_or(0),
                _ => generated_requests(v),
            })
            .sum(),
        Value::Array(items) => items.iter().map(generated_requests).sum(),
        _ => 0,
    }
}

/// A system the launcher starts signs with a secret of its own, never the
/// public development default: a token minted offline with that default
/// (as anyone who has read the source can) reads nobody's payments,
/// through the gateway or on payments directly. The secret reaches every
/// replica through its environment, not its arguments (`ps` shows those
/// to every local user), and appears in no log; nor does the development
/// default's warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_minted_with_the_development_secret_is_refused() {
    let sys = TestSystem::start_with_options(
        Otlp::Grpc,
        &[("payments", &["--provider-decline-rate", "0"])],
        &[],
        |options| options.jwt_secret = None,
    )
    .await;
    let secret = sys.system.jwt_secret().to_owned();
    assert_eq!(secret.len(), 64, "a random secret");
    assert_ne!(secret, mesh::auth::DEV_JWT_SECRET);

    let (alice, alice_token) = sys.signed_up_user().await;
    let course = sys.paid_course().await;
    let res = sys
        .checkout(&alice_token, course["id"].as_str().unwrap(), "alice-buys")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let forged = support::token_for(&alice);
    let signed = mesh::auth::TokenKeys::new(secret.as_bytes())
        .unwrap()
        .issue(&alice, "Alice", Duration::from_secs(600))
        .unwrap();
    for url in [
        format!("{}/api/users/{alice}/payments", sys.gateway()),
        format!("{}/users/{alice}/payments", sys.url("payments")),
    ] {
        assert_refused(sys.http.get(&url).bearer_auth(&forged), 401, &url, &alice).await;
        for token in [&alice_token, &signed] {
            let (status, body) = status_and_body(sys.http.get(&url).bearer_auth(token)).await;
            assert_eq!(status, 200, "{url}: {body}");
            assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
        }
    }

    for service in ["gateway", "users", "courses", "payments", "progress"] {
        let pid = sys.system.pid(service).await.unwrap();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&secret),
            "{service}: the secret is in its arguments"
        );
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(
            environ
                .split(|b| *b == 0)
                .any(|kv| kv == format!("JWT_SECRET={secret}").as_bytes()),
            "{service} runs with the launcher's secret"
        );
    }
    let mut sys = sys;
    sys.system.stop(Duration::from_secs(10)).await;
    let logs = read_logs(&sys.dir.path().join("logs"));
    assert!(
        logs.lines().count() > 10,
        "the services logged almost nothing"
    );
    // The log records exported over OTLP: the same events as the lines.
    let records = sys.receiver.logs();
    assert!(
        records
            .iter()
            .any(|r| r.body_text().contains("payment recorded")),
        "the checkout's log records were never exported: {records:#?}"
    );
    assert!(!logs.contains(&secret), "the secret is in a log");
    assert!(
        !logs.contains("JWT_SECRET is the development default"),
        "a service ran with the development secret"
    );
}

/// The SQLite files hold password hashes and payments: each service's
/// file, and its WAL and shared memory, are their owner's only, and so is
/// the data directory the launcher makes for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        eprintln!("skipped on the PostgreSQL pass: no SQLite file there");
        return;
    }
    let sys = TestSystem::start(Otlp::Grpc, &[]).await;
    // A write to each file that has a writer at once: users.
    sys.signed_up_user().await;
    let data = sys.dir.path().join("data");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "{}: {:o}", data.display(), mode(&data));
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".db") || name.ends_with(".db-wal") || name.ends_with(".db-shm") {
            assert_eq!(mode(&path), 0o600, "{name}: {:o}", mode(&path));
            checked.push(name);
        }
    }
    for service in ["users", "courses", "payments", "progress"] {
        assert!(
            checked.contains(&format!("{service}.db")),
            "{service}.db was checked: {checked:?}"
        );
    }
    assert!(checked.contains(&"users.db-wal".to_owned()), "{checked:?}");
    sys.stop().await;
}
