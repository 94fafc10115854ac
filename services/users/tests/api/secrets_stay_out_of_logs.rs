//! Passwords, hashes and tokens never reach a log line or a span field.
//!
//! The test installs a global subscriber that records every event and
//! every span (with its fields) of the service, the mesh and sqlx at
//! TRACE; nextest runs it in a process of its own.

use std::{
    io,
    sync::{Arc, Mutex},
};

use tracing_subscriber::fmt::{MakeWriter, format::FmtSpan};
use users::model::LoginRequest;

use crate::helpers::{self, new_registration, spawn_app};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_password_hash_or_token_is_logged() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_env_filter("info,users=trace,mesh=trace,sqlx=trace")
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .init();

    let app = spawn_app().await;
    let registration = new_registration();
    let user = app
        .client
        .register(&registration)
        .await
        .expect("registered");
    let session = app
        .client
        .login(
            &LoginRequest {
                email: registration.email.clone(),
                password: registration.password.clone(),
            },
            None,
        )
        .await
        .expect("logged in");
    // A failed login, too.
    let _ = app
        .client
        .login(
            &LoginRequest {
                email: registration.email.clone(),
                password: "a wrong password".to_owned(),
            },
            None,
        )
        .await;
    let caller = helpers::Caller::verify(&app.tokens, &session.access_token).expect("a caller");
    app.client.get(&caller, &user.id).await.expect("profile");
    let hash: String = sqlx::query("SELECT password_hash FROM users")
        .fetch_one(&app.pool)
        .await
        .and_then(|row| sqlx::Row::try_get(&row, "password_hash"))
        .expect("hash");

    let logs =
        String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("UTF-8 logs");
    // The capture works: the hashing spans were recorded.
    assert!(logs.contains("argon2id hash"), "{logs}");
    assert!(logs.contains("argon2id verify"), "{logs}");
    for (what, secret) in [
        ("password", registration.password.as_str()),
        // Personal data, not a secret, but no more welcome in logs.
        ("email", registration.email.as_str()),
        ("wrong password", "a wrong password"),
        ("hash", hash.as_str()),
        // The salt and digest part alone, in case of reformatting.
        ("hash digest", hash.rsplit('$').next().unwrap_or_default()),
        ("token", session.access_token.as_str()),
        (
            "token signature",
            session.access_token.rsplit('.').next().unwrap_or_default(),
        ),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
}
