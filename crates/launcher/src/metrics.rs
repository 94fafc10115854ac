//! The launcher's own metrics, served by the control API's `/metrics` and
//! scraped as job `launcher`: what the services cannot say about
//! themselves (that a replica died and came back, how many run).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: &'static str,
}

#[derive(Debug)]
pub(crate) struct LauncherMetrics {
    registry: Registry,
    replicas: Family<ServiceLabel, Gauge>,
    desired: Family<ServiceLabel, Gauge>,
    restarts: Family<ServiceLabel, Counter>,
}

// === impl LauncherMetrics ===

impl LauncherMetrics {
    /// Every family has a series per service from the start, at zero: a
    /// dashboard's `increase(launcher_restarts_total[5m])` needs the
    /// series before the first restart to see it.
    pub(crate) fn new(services: impl IntoIterator<Item = &'static str>) -> Self {
        let mut registry = Registry::default();
        let replicas = Family::<ServiceLabel, Gauge>::default();
        registry.register(
            "launcher_replicas",
            "Replicas of the service that are ready and listed in the discovery targets",
            replicas.clone(),
        );
        let desired = Family::<ServiceLabel, Gauge>::default();
        registry.register(
            "launcher_desired_replicas",
            "Replicas of the service asked for (at start or by the last scale)",
            desired.clone(),
        );
        let restarts = Family::<ServiceLabel, Counter>::default();
        // prometheus-client appends `_total` to counters.
        registry.register(
            "launcher_restarts",
            "Restarts of the service's replicas after they died without being asked to",
            restarts.clone(),
        );
        for service in services {
            let label = ServiceLabel { service };
            let _ = replicas.get_or_create(&label);
            let _ = desired.get_or_create(&label);
            let _ = restarts.get_or_create(&label);
        }
        Self {
            registry,
            replicas,
            desired,
            restarts,
        }
    }

    pub(crate) fn set_replicas(&self, service: &'static str, ready: usize, desired: usize) {
        let label = ServiceLabel { service };
        self.replicas
            .get_or_create(&label)
            .set(i64::try_from(ready).unwrap_or(i64::MAX));
        self.desired
            .get_or_create(&label)
            .set(i64::try_from(desired).unwrap_or(i64::MAX));
    }

    pub(crate) fn restarted(&self, service: &'static str) {
        self.restarts.get_or_create(&ServiceLabel { service }).inc();
    }

    /// OpenMetrics text.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::LauncherMetrics;

    #[test]
    fn every_service_has_every_series_from_the_start() {
        let metrics = LauncherMetrics::new(["users", "payments"]);
        metrics.set_replicas("payments", 2, 3);
        metrics.restarted("payments");
        let text = metrics.encode();
        for line in [
            "launcher_replicas{service=\"payments\"} 2",
            "launcher_desired_replicas{service=\"payments\"} 3",
            "launcher_restarts_total{service=\"payments\"} 1",
            "launcher_replicas{service=\"users\"} 0",
            "launcher_restarts_total{service=\"users\"} 0",
            "# TYPE launcher_restarts counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
