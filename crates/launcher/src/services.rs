//! The service catalogue: LearnSphere's services, in start order, with
//! what each needs (its port, a database, the services it calls) and how
//! many replicas one may run. The launcher starts them; loadgen's
//! platforms find them and its scenarios name them, from this one list.

use std::collections::BTreeMap;

/// The services in start order: each one's dependencies come before it.
pub const SERVICES: [ServiceSpec; 5] = [
    ServiceSpec {
        name: "courses",
        default_port: 8082,
        database: true,
        depends_on: &[],
    },
    ServiceSpec {
        name: "users",
        default_port: 8081,
        database: true,
        depends_on: &[],
    },
    ServiceSpec {
        name: "payments",
        default_port: 8083,
        database: true,
        // Charges are priced from the catalog.
        depends_on: &["courses"],
    },
    ServiceSpec {
        name: "progress",
        default_port: 8084,
        database: true,
        depends_on: &["courses"],
    },
    ServiceSpec {
        name: "gateway",
        default_port: 8080,
        database: false,
        depends_on: &["users", "courses", "payments", "progress"],
    },
];

/// The most replicas one service may have: enough to show load balancing
/// and scaling on a laptop, few enough that a typo cannot fork-bomb it.
pub const MAX_REPLICAS: usize = 16;

/// What the launcher knows about a service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    pub name: &'static str,
    pub default_port: u16,
    /// Whether it owns a database (and reads `DATABASE_URL`).
    pub database: bool,
    /// Services whose URLs it is given (`--<name>-url`).
    pub depends_on: &'static [&'static str],
}

pub(crate) fn spec(service: &str) -> Option<&'static ServiceSpec> {
    SERVICES.iter().find(|s| s.name == service)
}

/// `payments=3,users=2` → `{payments: 3, users: 2}`: every name a known
/// service, every count within 1..=[`MAX_REPLICAS`], no name twice.
pub fn parse_replicas(spec: &str) -> Result<BTreeMap<&'static str, usize>, String> {
    let mut counts = BTreeMap::new();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, count) = item
            .split_once('=')
            .ok_or_else(|| format!("expected SERVICE=COUNT, got {item:?}"))?;
        let service = spec_named(name.trim())?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| format!("{item:?}: the count must be a whole number"))?;
        check_replicas(count).map_err(|e| format!("{item:?}: {e}"))?;
        if counts.insert(service.name, count).is_some() {
            return Err(format!("{} is listed twice", service.name));
        }
    }
    if counts.is_empty() {
        return Err("expected SERVICE=COUNT[,SERVICE=COUNT...]".into());
    }
    Ok(counts)
}

pub(crate) fn spec_named(name: &str) -> Result<&'static ServiceSpec, String> {
    spec(name).ok_or_else(|| {
        let known: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        format!("unknown service {name:?} (known: {})", known.join(", "))
    })
}

pub(crate) fn check_replicas(count: usize) -> Result<(), String> {
    if (1..=MAX_REPLICAS).contains(&count) {
        Ok(())
    } else {
        Err(format!(
            "a service runs 1 to {MAX_REPLICAS} replicas, not {count}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_counts_parse() {
        let counts = parse_replicas("payments=3, users=2").unwrap();
        assert_eq!(counts.get("payments"), Some(&3));
        assert_eq!(counts.get("users"), Some(&2));
        assert_eq!(counts.len(), 2);
        assert_eq!(parse_replicas("gateway=16").unwrap()["gateway"], 16);
    }

    #[test]
    fn bad_replica_counts_say_what_is_wrong() {
        let err = parse_replicas("billing=2").unwrap_err();
        assert!(err.contains("unknown service \"billing\""), "{err}");
        assert!(err.contains("payments"), "lists the known services: {err}");
        let err = parse_replicas("payments=0").unwrap_err();
        assert!(err.contains("1 to 16"), "{err}");
        assert!(parse_replicas("payments=17").is_err());
        assert!(parse_replicas("payments=-1").is_err());
        assert!(
            parse_replicas("payments")
                .unwrap_err()
                .contains("SERVICE=COUNT")
        );
        assert!(
            parse_replicas("payments=2,payments=3")
                .unwrap_err()
                .contains("twice")
        );
        assert!(parse_replicas("").is_err());
    }
}
