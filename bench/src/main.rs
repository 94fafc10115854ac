//! One endpoint, served bare or through the mesh, so `mesh-overhead.sh`
//! can measure what the mesh costs per request against a baseline taken in
//! the same run.
//!
//! `--mode plain`: an axum router, nothing else. `--mode mesh`: the same
//! router in `Mesh::router` (request id, server span, RED metrics,
//! in-flight gauge, JSON fallbacks) with telemetry initialised as a service
//! does it, so spans are really built and handed to the batch exporter
//! (`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT` decide where they go).
#![forbid(unsafe_code)]

use axum::{Json, Router, extract::Path, routing::get};
use clap::{Parser, ValueEnum};
use mesh::{Mesh, ServeConfig, ServiceIdentity, TelemetryConfig};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Plain,
    Mesh,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, default_value_t = 18090)]
    port: u16,
    #[command(flatten)]
    serve: ServeConfig,
    #[command(flatten)]
    telemetry: TelemetryConfig,
}

/// A response the size of a course summary.
#[derive(Serialize)]
struct Item {
    id: String,
    title: &'static str,
    summary: &'static str,
    tags: [&'static str; 3],
    price_cents: i64,
}

async fn item(Path(id): Path<String>) -> Json<Item> {
    Json(Item {
        id,
        title: "SQL for Data Analysis Masterclass",
        summary: "A masterclass in SQL for Data Analysis, distilled from years of real-world experience.",
        tags: ["sql", "databases", "career"],
        price_cents: 17999,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let api = Router::new().route("/items/{id}", get(item));
    match args.mode {
        Mode::Plain => {
            let listener = tokio::net::TcpListener::bind((args.serve.host, args.port)).await?;
            axum::serve(listener, api)
                .with_graceful_shutdown(mesh::server::shutdown_signal())
                .await?;
        }
        Mode::Mesh => {
            let identity =
                ServiceIdentity::resolve("bench", env!("CARGO_PKG_VERSION"), &args.telemetry);
            let serve = args.serve.clone();
            mesh::server::run_process(identity, &args.telemetry, |identity| async move {
                let mesh = Mesh::new(identity, &serve);
                Ok(mesh.bind(api, None, args.port).await?)
            })
            .await?;
        }
    }
    Ok(())
}
