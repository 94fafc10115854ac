//! Discovery: which replicas a destination has right now.
//!
//! A destination is named by one string (`PAYMENTS_URL` and friends):
//!
//! - `http://payments:8083`: the host is re-resolved every refresh, and
//!   every address it resolves to is a replica. This is how Docker Compose
//!   `--scale` and Kubernetes headless services publish replicas: one DNS
//!   name, one A record per replica.
//! - `http://127.0.0.1:8083,http://127.0.0.1:9083`: a fixed list (names
//!   in it are resolved too).
//! - `file_sd:/path/targets.json`: a Prometheus `file_sd` file, re-read
//!   when it changes. Target groups whose `service` (or `job`) label is
//!   the destination's name are its replicas: the local launcher writes one
//!   file that Prometheus and every service read.
//!
//! The resolver runs as a task and feeds the balancer a stream of tower
//! [`Change`]s; it stops when the client is dropped.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use futures::Stream;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tower::discover::Change;

/// Where a destination's replicas come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `host:port` pairs from one URL or a comma-separated list; names are
    /// re-resolved on every refresh.
    Hosts(Vec<(String, u16)>),
    /// A Prometheus `file_sd` JSON file.
    FileSd(PathBuf),
}

/// A parsed destination: where its replicas come from, and the base URL
/// requests are built on (its authority is replaced by the chosen
/// replica's address).
#[derive(Clone, Debug)]
pub struct DestinationSpec {
    pub source: Source,
    pub base: reqwest::Url,
}

impl DestinationSpec {
    /// Parses `http://host:port[/base]`, a comma-separated list of such
    /// URLs (they must share scheme and base path), or `file_sd:PATH`.
    pub fn parse(destination: &str, spec: &str) -> anyhow::Result<Self> {
        let spec = spec.trim();
        if let Some(path) = spec.strip_prefix("file_sd:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            anyhow::ensure!(
                !path.is_empty(),
                "destination {destination}: `file_sd:` needs a file path"
            );
            let base = format!("http://{destination}/");
            return Ok(Self {
                source: Source::FileSd(PathBuf::from(path)),
                base: reqwest::Url::parse(&base)
                    .map_err(|e| anyhow::anyhow!("destination {destination}: {e}"))?,
            });
        }
        let mut hosts = Vec::new();
        let mut base: Option<reqwest::Url> = None;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let url = reqwest::Url::parse(part)
                .map_err(|e| anyhow::anyhow!("destination {destination}: bad URL {part:?}: {e}"))?;
            anyhow::ensure!(
                url.scheme() == "http" || url.scheme() == "https",
                "destination {destination}: {part:?} is not an http(s) URL or `file_sd:PATH`"
            );
            let host = url
                .host_str()
                .ok_or_else(|| anyhow::anyhow!("destination {destination}: {part:?} has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = url.port_or_known_default().unwrap_or(80);
            if let Some(first) = &base {
                anyhow::ensure!(
                    first.scheme() == url.scheme() && first.path() == url.path(),
                    "destination {destination}: the URLs in a list must share scheme and path"
                );
            } else {
                base = Some(url.clone());
            }
            hosts.push((host, port));
        }
        let base = base.ok_or_else(|| anyhow::anyhow!("destination {destination}: no URL"))?;
        Ok(Self {
            source: Source::Hosts(hosts),
            base,
        })
    }
}

/// The endpoint set as the balancer's wrapper sees it: `None` until the
/// first resolution finished, then the number of known endpoints.
pub(crate) type EndpointCount = watch::Receiver<Option<usize>>;

/// The tower discovery stream a resolver task feeds.
pub(crate) struct Changes<S> {
    rx: mpsc::UnboundedReceiver<Change<SocketAddr, S>>,
}

impl<S> Stream for Changes<S> {
    type Item = Result<Change<SocketAddr, S>, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|change| change.map(Ok))
    }
}

/// Starts the resolver task for `spec`: `make` builds the service for a
/// newly seen address. Returns the change stream for the balancer and a
/// watch on the endpoint count.
pub(crate) fn spawn<S, F>(
    destination: Arc<str>,
    source: Source,
    refresh: Duration,
    make: F,
    on_update: impl Fn(usize) + Send + 'static,
) -> (Changes<S>, EndpointCount)
where
    S: Send + 'static,
    F: Fn(SocketAddr) -> S + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let (count_tx, count_rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut known = BTreeSet::new();
        let mut file_stamp = None;
        let mut failing = false;
        loop {
            let resolved = match &source {
                Source::Hosts(hosts) => resolve_hosts(hosts).await,
                Source::FileSd(path) => {
                    // Re-read only when the file changed (or was never read).
                    let stamp = file_stamp_of(path).await;
                    if stamp.is_some() && stamp == file_stamp {
                        Ok(known.clone())
                    } else {
                        let read = read_file_sd(path, &destination).await;
                        if read.is_ok() {
                            file_stamp = stamp;
                        }
                        read
                    }
                }
            };
            match resolved {
                Ok(addrs) => {
                    if failing {
                        tracing::info!(%destination, endpoints = addrs.len() as i64, "discovery recovered");
                        failing = false;
                    }
                    for gone in known.difference(&addrs) {
                        tracing::info!(%destination, endpoint = %gone, "endpoint removed");
                        if tx.send(Change::Remove(*gone)).is_err() {
                            return;
                        }
                    }
                    for new in addrs.difference(&known) {
                        tracing::debug!(%destination, endpoint = %new, "endpoint added");
                        if tx.send(Change::Insert(*new, make(*new))).is_err() {
                            return;
                        }
                    }
                    if addrs.is_empty() && !known.is_empty() {
                        tracing::warn!(%destination, "destination has no endpoints left");
                    }
                    known = addrs;
                    on_update(known.len());
                    count_tx.send_replace(Some(known.len()));
                }
                // Keep the last known set: a resolver hiccup must not take
                // a healthy destination away. Warn once per outage.
                Err(error) => {
                    if !failing {
                        tracing::warn!(%destination, %error, "discovery failed; keeping the last known endpoints");
                        failing = true;
                    }
                    if count_tx.borrow().is_none() {
                        count_tx.send_replace(Some(known.len()));
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(refresh).await;
            if tx.is_closed() {
                return;
            }
        }
    });
    (Changes { rx }, count_rx)
}

async fn resolve_hosts(hosts: &[(String, u16)]) -> anyhow::Result<BTreeSet<SocketAddr>> {
    let mut addrs = BTreeSet::new();
    let mut last_error = None;
    for (host, port) in hosts {
        // An IP literal needs no lookup (and `lookup_host` would spend a
        // blocking-pool thread on it).
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            addrs.insert(SocketAddr::new(ip, *port));
            continue;
        }
        match tokio::net::lookup_host((host.as_str(), *port)).await {
            Ok(found) => addrs.extend(found),
            Err(e) => last_error = Some(anyhow::anyhow!("cannot resolve {host}: {e}")),
        }
    }
    match last_error {
        // Every name failed: that is a resolver problem, not "no replicas".
        Some(e) if addrs.is_empty() => Err(e),
        _ => Ok(addrs),
    }
}

async fn file_stamp_of(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// One Prometheus `file_sd` target group.
#[derive(Debug, Deserialize)]
struct TargetGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

async fn read_file_sd(
    path: &std::path::Path,
    destination: &str,
) -> anyhow::Result<BTreeSet<SocketAddr>> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let groups: Vec<TargetGroup> = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not file_sd JSON: {e}", path.display()))?;
    let mut hosts = Vec::new();
    for group in groups {
        let label = group.labels.get("service").or(group.labels.get("job"));
        if label.map(String::as_str) != Some(destination) {
            continue;
        }
        for target in group.targets {
            let (host, port) = target
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .ok_or_else(|| anyhow::anyhow!("target {target:?} is not host:port"))?;
            hosts.push((
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port,
            ));
        }
    }
    if hosts.is_empty() {
        return Ok(BTreeSet::new());
    }
    resolve_hosts(&hosts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_url_a_list_and_a_file() {
        let one = DestinationSpec::parse("courses", "http://courses:8082").unwrap();
        assert_eq!(one.source, Source::Hosts(vec![("courses".into(), 8082)]));
        let list =
            DestinationSpec::parse("payments", "http://127.0.0.1:1, http://127.0.0.1:2").unwrap();
        assert_eq!(
            list.source,
            Source::Hosts(vec![("127.0.0.1".into(), 1), ("127.0.0.1".into(), 2)])
        );
        let file = DestinationSpec::parse("users", "file_sd:/tmp/t.json").unwrap();
        assert_eq!(file.source, Source::FileSd("/tmp/t.json".into()));
        assert_eq!(file.base.as_str(), "http://users/");
    }

    #[test]
    fn rejects_what_is_not_a_destination() {
        for bad in [
            "",
            "payments",
            "ftp://x:1",
            "file_sd:",
            "http://a:1/x,http://b:1/y",
        ] {
            assert!(DestinationSpec::parse("payments", bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn file_sd_keeps_only_the_destinations_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("targets.json");
        std::fs::write(
            &path,
            r#"[{"targets":["127.0.0.1:1"],"labels":{"service":"payments","replica":"0"}},
                {"targets":["127.0.0.1:2"],"labels":{"job":"payments"}},
                {"targets":["127.0.0.1:3"],"labels":{"service":"users"}}]"#,
        )
        .unwrap();
        let addrs = read_file_sd(&path, "payments").await.unwrap();
        let ports: Vec<u16> = addrs.iter().map(SocketAddr::port).collect();
        assert_eq!(ports, [1, 2]);
        std::fs::write(&path, "not json").unwrap();
        assert!(read_file_sd(&path, "payments").await.is_err());
    }
}
