//! One destination's resilience settings, read from the service's
//! [`OutboundConfig`]: the settings live apart from the layers they
//! configure.

use std::{collections::HashMap, time::Duration};

use super::{
    breaker::BreakerSettings, endpoint::Ejection, retry::RetrySettings, timeout::Deadlines,
};
use crate::config::OutboundConfig;

/// The resilience settings of one destination, from [`OutboundConfig`].
#[derive(Clone, Debug)]
pub struct Policy {
    pub deadlines: Deadlines,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
    pub ejection: Ejection,
    pub discovery_refresh: Duration,
}

impl Policy {
    /// The settings `config` gives `destination`.
    pub fn for_destination(config: &OutboundConfig, destination: &str) -> Self {
        let mut default = config.outbound_timeout;
        let mut routes = HashMap::new();
        for o in config
            .outbound_timeouts
            .iter()
            .filter(|o| o.destination == destination)
        {
            match &o.route {
                Some(route) => {
                    routes.insert(route.clone(), o.timeout);
                }
                None => default = o.timeout,
            }
        }
        Self {
            deadlines: Deadlines { default, routes },
            retry: RetrySettings {
                budget_ratio: config.retry_budget_ratio,
                min_per_second: config.retry_min_per_second,
                max_attempts: config.retry_max_attempts,
                min_backoff: config.retry_backoff,
                max_backoff: config.retry_backoff.saturating_mul(16),
            },
            breaker: BreakerSettings {
                consecutive_failures: config.breaker_consecutive_failures,
                failure_rate: config.breaker_failure_rate,
                min_requests: config.breaker_min_requests,
                window: config.breaker_window,
                open_for: config.breaker_open_for,
                max_open_for: config.breaker_open_for.saturating_mul(8),
                half_open_probes: config.breaker_half_open_probes,
            },
            ejection: Ejection {
                base: config.ejection_time,
                max: config.ejection_time.saturating_mul(16),
            },
            discovery_refresh: config.discovery_refresh,
        }
    }
}
