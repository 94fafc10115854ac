//! A test service for the W3C Trace Context validation suite (the `test/`
//! folder of github.com/w3c/trace-context), built on the mesh the way a
//! LearnSphere service is: `POST /test` is served through the real inbound
//! stack (`Mesh::bind`), and every callback goes out through a real
//! `MeshClient`, whose outbound stack injects `traceparent`/`tracestate`.
//! Nothing here touches a propagation header: what the suite sees is what
//! the mesh does.
//!
//! ```text
//! OTEL_TRACES_EXPORTER=none cargo run -p mesh --example tracecontext -- --port 5000
//! python test.py http://127.0.0.1:5000/test
//! ```
//!
//! The harness listens on 7777 itself, hence another default port here.
//! See docs/architecture.md, "W3C Trace Context conformance".

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    response::{IntoResponse as _, Response},
    routing::post,
};
use clap::Parser as _;
use http::StatusCode;
use mesh::{
    BadRequest, Mesh, MeshClient, ServeConfig, ServiceIdentity, TelemetryConfig, error_response,
};
use serde::Deserialize;

#[derive(Debug, clap::Parser)]
struct Config {
    /// Port to serve `POST /test` on (0 picks a free one). Not 7777: the
    /// suite's harness listens there.
    #[arg(long, env = "PORT", default_value_t = 5000)]
    port: u16,

    #[command(flatten)]
    serve: ServeConfig,

    #[command(flatten)]
    telemetry: TelemetryConfig,
}

/// One entry of the harness's JSON array: POST `arguments` to `url`.
#[derive(Debug, Deserialize)]
struct Callback {
    url: String,
    #[serde(default)]
    arguments: serde_json::Value,
}

/// The outbound clients, one per callback directory (the URL without its
/// last path segment): the harness sends all its callbacks to one, so
/// this makes a single client, with its connection pool, breaker and
/// discovery task, for the whole run.
#[derive(Clone)]
struct Callbacks {
    mesh: Mesh,
    clients: Arc<Mutex<HashMap<String, MeshClient>>>,
}

impl Callbacks {
    /// The client for `url`'s directory and `url`'s last path segment,
    /// decoded (the client encodes route parameters itself).
    fn client_for(&self, url: &str) -> Result<(MeshClient, String), BadRequest> {
        let bad =
            |message: String| BadRequest::new(StatusCode::BAD_REQUEST, "invalid_url", message);
        let url = reqwest::Url::parse(url).map_err(|error| bad(format!("{url}: {error}")))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(format!("{url}: a query or fragment is not supported")));
        }
        let segment = url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .filter(|segment| !segment.is_empty())
            .ok_or_else(|| bad(format!("{url}: no path to call")))?;
        let segment = percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| bad(format!("{url}: the last segment is not UTF-8")))?
            .into_owned();
        let mut directory = url.clone();
        directory
            .path_segments_mut()
            .map_err(|()| bad(format!("{url}: not a URL with a path")))?
            .pop();
        let directory = directory.as_str();
        let mut clients = self.clients.lock().expect("no panics while held");
        let client = match clients.get(directory) {
            Some(client) => client.clone(),
            None => {
                let client = self
                    .mesh
                    .client("harness", directory)
                    .map_err(|error| bad(format!("{url}: {error:#}")))?;
                clients.insert(directory.to_owned(), client.clone());
                client
            }
        };
        Ok((client, segment))
    }
}

/// `POST /test`: makes each callback in order, then answers 200; 502 if a
/// callback got no answer.
async fn test(State(callbacks): State<Callbacks>, body: Bytes) -> Response {
    let calls: Vec<Callback> = match serde_json::from_slice(&body) {
        Ok(calls) => calls,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("expected [{{\"url\": ..., \"arguments\": [...]}}, ...]: {error}"),
            );
        }
    };
    let mut answered = Vec::with_capacity(calls.len());
    for call in calls {
        let (client, segment) = match callbacks.client_for(&call.url) {
            Ok(found) => found,
            Err(bad) => return bad.into_response(),
        };
        match client
            .post("/{callback}", &[&segment])
            .json(&call.arguments)
            .send()
            .await
        {
            Ok(res) => answered.push(res.status().as_u16()),
            Err(error) => {
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    "callback_failed",
                    error.to_string(),
                );
            }
        }
    }
    axum::Json(serde_json::json!({ "callbacks": answered })).into_response()
}

async fn build(config: Config, identity: ServiceIdentity) -> anyhow::Result<mesh::server::Server> {
    let mesh = Mesh::new(identity, &config.serve);
    let callbacks = Callbacks {
        mesh: mesh.clone(),
        clients: Arc::default(),
    };
    let api = Router::new()
        .route("/test", post(test))
        .with_state(callbacks);
    Ok(mesh.bind(api, None, config.port).await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let identity =
        ServiceIdentity::resolve("tracecontext", env!("CARGO_PKG_VERSION"), &config.telemetry);
    let telemetry = config.telemetry.clone();
    mesh::server::run_process(identity, &telemetry, |identity| build(config, identity)).await
}
