//! Who is running: the service's name, version and replica, as every
//! span and metric of the process reports them.

use std::sync::Arc;

use crate::config::TelemetryConfig;

/// Who is running: reported as OpenTelemetry resource attributes and in
/// the `build_info` metric.
#[derive(Debug, Clone)]
pub struct ServiceIdentity {
    /// `service.name`.
    pub name: Arc<str>,
    /// `service.version`.
    pub version: &'static str,
    /// `service.instance.id`: unique per replica, so traces and metrics
    /// of one replica can be told from its siblings'.
    pub instance_id: Arc<str>,
}

impl ServiceIdentity {
    /// The identity of this process: `OTEL_SERVICE_NAME` (via `config`)
    /// overrides `default_name`; a `service.instance.id` from
    /// `OTEL_RESOURCE_ATTRIBUTES` is kept, otherwise a fresh UUID is used.
    pub fn resolve(default_name: &str, version: &'static str, config: &TelemetryConfig) -> Self {
        let from_env = opentelemetry_sdk::Resource::builder().build();
        let instance_id = from_env
            .get(&opentelemetry::Key::from_static_str(
                opentelemetry_semantic_conventions::resource::SERVICE_INSTANCE_ID,
            ))
            .map(|v| v.to_string())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Self {
            name: config
                .service_name
                .as_deref()
                .unwrap_or(default_name)
                .into(),
            version,
            instance_id: instance_id.into(),
        }
    }
}
