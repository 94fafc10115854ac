//! The console's state, shared by its routes (`faults`, `runs` and the
//! page's own in `mod.rs`), and how they refuse a request.

use std::{
    path::PathBuf,
    sync::{Arc, OnceLock},
};

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use mesh::{
    error::error_response,
    web::{Asset, Page},
};

use crate::platform::{Platform, faults::AdminClient};

const INDEX: &str = include_str!("../../../web/dist/console/index.html");
const SCRIPT: &[u8] = include_bytes!("../../../web/dist/console/console.js");
const STYLE: &[u8] = include_bytes!("../../../web/dist/console/console.css");

/// What the console is told when it starts.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Grafana and Jaeger as the operator's browser reaches them.
    pub grafana_url: String,
    pub jaeger_url: String,
    /// The services' admin token: the console's API asks for it, and
    /// hands it to the runs it starts.
    pub admin_token: String,
    /// Where each run writes its summary and report (a directory per run).
    pub runs_dir: PathBuf,
    /// The `loadgen` executable runs start (this one by default).
    pub exe: Option<PathBuf>,
    /// Every run serves its `/metrics` here (one run at a time, so one
    /// port), for a Prometheus that scrapes loadgen.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// A scenario run again and again while no operator run is on (the
    /// load that keeps the dashboards alive in Compose), and its duration
    /// scale. An operator's run stops it first and it resumes after.
    pub background: Option<(String, f64)>,
}

/// The running system, known once it is up.
#[derive(Debug, Clone)]
pub struct Target {
    /// The gateway the learner app and the runs use.
    pub gateway_url: String,
    /// The platform flags of the `loadgen run` the console starts
    /// (`--platform local --control URL`: [`PlatformArgs::flags`]).
    pub run_flags: Vec<std::ffi::OsString>,
    /// Whether the console sits beside the launcher's control API, whose
    /// `/services`, scale and kill the page uses. Elsewhere the console
    /// answers `GET /services` itself, from the platform, and the page
    /// offers no scaling or killing.
    ///
    /// [`PlatformArgs::flags`]: crate::platform::args::PlatformArgs::flags
    pub launcher: bool,
}

/// The console's state, shared by its handlers.
#[derive(Clone)]
pub struct Console {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) settings: Settings,
    target: OnceLock<(Target, Arc<dyn Platform>)>,
    pub(super) admin: AdminClient,
    /// Asks replicas `/readyz` (`GET /services` without a launcher): a
    /// replica that takes longer is not ready.
    pub(super) probe: reqwest::Client,
    pub(super) runs: super::run_view::Runs,
    pub(super) page: Page,
    pub(super) index: Asset,
    pub(super) script: Asset,
    pub(super) style: Asset,
}

impl Console {
    pub fn new(settings: Settings) -> Self {
        let index = Page::html(INDEX, &[]);
        let inner = Inner {
            admin: AdminClient::new(Some(settings.admin_token.clone())),
            probe: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
            runs: super::run_view::Runs::default(),
            settings,
            target: OnceLock::new(),
            // The page talks to its own origin only.
            page: Page::new([]),
            index: Asset::html(index),
            script: Asset::javascript(SCRIPT),
            style: Asset::css(STYLE),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Sets the system the API acts on (once).
    pub(super) fn set_target(&self, target: Target, platform: Arc<dyn Platform>) -> bool {
        self.inner.target.set((target, platform)).is_ok()
    }

    /// The system, or the answer saying it is not up yet.
    pub(super) fn target(&self) -> Result<&(Target, Arc<dyn Platform>), Refusal> {
        self.inner.target.get().ok_or_else(|| {
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "starting",
                "the system is still starting; try again in a few seconds",
            )
        })
    }
}

/// A request refused: the `{"error": {"code", "message"}}` answer every
/// LearnSphere API gives.
#[derive(Debug)]
pub(super) struct Refusal {
    status: StatusCode,
    code: String,
    message: String,
}

impl Refusal {
    pub(super) fn new(
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error_response(self.status, &self.code, self.message)
    }
}

/// What the console's handlers answer.
pub(super) type Answer = Result<Response, Refusal>;
