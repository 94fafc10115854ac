//! The catalog's read cache.
//!
//! The catalog is written once, when the first replica seeds it, and no
//! route changes it: a course, or a page of the listing, read once reads
//! the same ever after. So each replica reads it from the database once
//! and then serves it from memory, as the JSON it was first sent as: no
//! query, no row decoding, no encoding. docs/performance.md has what that
//! saves.
//!
//! The cache stays truthful about where the time goes:
//! - every read has its span, `catalog cache`, with `cache.name` and
//!   `cache.hit`; on a miss, the database spans are its children;
//! - hits and misses are counted in
//!   `courses_catalog_cache_requests_total{cache, result}`.
//!
//! It is bounded. A course that does not exist is never kept (anyone can
//! name any id); pages are kept up to the bound, because a page of an
//! unknown tag is an answer too. Past the bound, quick_cache's S3-FIFO
//! policy evicts first what was read only once, so a scan of one-off
//! pages does not push out the courses read all the time. While one
//! request loads a key, the others asking for it wait for its answer
//! instead of querying too. `CATALOG_CACHE_ENTRIES=0` turns the cache off,
//! to show the database under the full load.

use std::{fmt, future::Future, sync::Arc};

use bytes::Bytes;
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family},
};
use quick_cache::sync::Cache;
use tracing::{Instrument as _, field::Empty};

/// Which cache a read went to.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Name {
    course,
    page,
}

impl Name {
    /// As `cache.name` on the span and the label spell it.
    fn as_str(self) -> &'static str {
        match self {
            Self::course => "course",
            Self::page => "page",
        }
    }
}

/// Whether the answer was in memory.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Outcome {
    hit,
    miss,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    cache: Name,
    result: Outcome,
}

/// A page of the listing, as asked for.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct PageKey {
    pub page: u32,
    pub per_page: u32,
    pub tag: Option<String>,
    /// Lowercased, trimmed, never empty.
    pub search: Option<String>,
}

/// One cache's two series, looked up once: a read increments its counter
/// without a lock or a hash of the labels.
#[derive(Clone, Debug)]
struct Reads {
    name: Name,
    hit: Counter,
    miss: Counter,
}

impl Reads {
    /// Creates both series (at zero, so a hit ratio is defined from the
    /// first scrape) and keeps a handle on each.
    fn of(family: &Family<Labels, Counter>, name: Name) -> Self {
        let series = |result| {
            family
                .get_or_create(&Labels {
                    cache: name,
                    result,
                })
                .clone()
        };
        Self {
            name,
            hit: series(Outcome::hit),
            miss: series(Outcome::miss),
        }
    }
}

/// The courses and pages already sent, as their JSON; cheap to clone.
#[derive(Clone)]
pub struct CatalogCache {
    inner: Option<Arc<Caches>>,
    course_reads: Reads,
    page_reads: Reads,
}

struct Caches {
    courses: Cache<String, Bytes>,
    pages: Cache<PageKey, Bytes>,
}

impl fmt::Debug for CatalogCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("CatalogCache");
        match &self.inner {
            Some(c) => s
                .field("courses", &c.courses.len())
                .field("pages", &c.pages.len()),
            None => s.field("enabled", &false),
        };
        s.finish()
    }
}

impl CatalogCache {
    /// A cache of up to `entries` courses and as many pages (0: none), its
    /// counter registered in `metrics`.
    pub fn new(entries: usize, metrics: &mesh::Metrics) -> Self {
        let requests = Family::<Labels, Counter>::default();
        let course_reads = Reads::of(&requests, Name::course);
        let page_reads = Reads::of(&requests, Name::page);
        // prometheus-client appends `_total` to counters itself.
        metrics.register(
            "courses_catalog_cache_requests",
            "Catalog reads by cache (course, page) and result: hit (served from memory) or miss (read from the database)",
            requests.clone(),
        );
        let inner = (entries > 0).then(|| {
            Arc::new(Caches {
                courses: Cache::new(entries),
                pages: Cache::new(entries),
            })
        });
        Self {
            inner,
            course_reads,
            page_reads,
        }
    }

    /// The course `id`'s JSON, from memory or from `load` (`None`: no such
    /// course, and nothing kept).
    pub async fn course<E>(
        &self,
        id: &str,
        load: impl Future<Output = Result<Option<Bytes>, E>>,
    ) -> Result<Option<Bytes>, E> {
        match &self.inner {
            None => load.await,
            Some(caches) => read(&caches.courses, id, &self.course_reads, load).await,
        }
    }

    /// The page `key`'s JSON, from memory or from `load`.
    pub async fn page<E>(
        &self,
        key: &PageKey,
        load: impl Future<Output = Result<Bytes, E>>,
    ) -> Result<Bytes, E> {
        let load = async { load.await.map(Some) };
        let found = match &self.inner {
            None => load.await,
            Some(caches) => read(&caches.pages, key, &self.page_reads, load).await,
        }?;
        // `load` never answers `None`, so neither does `read`.
        Ok(found.unwrap_or_default())
    }
}

/// One read through `cache`, in its span and counted.
async fn read<K, Q, E>(
    cache: &Cache<K, Bytes>,
    key: &Q,
    reads: &Reads,
    load: impl Future<Output = Result<Option<Bytes>, E>>,
) -> Result<Option<Bytes>, E>
where
    K: Eq + std::hash::Hash + Clone,
    Q: std::hash::Hash + quick_cache::Equivalent<K> + ToOwned<Owned = K> + ?Sized,
{
    let span = tracing::info_span!(
        "catalog cache",
        otel.kind = "internal",
        cache.name = reads.name.as_str(),
        cache.hit = Empty,
    );
    async {
        match cache.get_value_or_guard_async(key).await {
            Ok(body) => {
                tracing::Span::current().record("cache.hit", true);
                reads.hit.inc();
                Ok(Some(body))
            }
            Err(guard) => {
                tracing::Span::current().record("cache.hit", false);
                reads.miss.inc();
                // An error or a missing course leaves the key empty: the
                // next read (and any waiting now) tries the database again.
                let found = load.await?;
                if let Some(body) = &found {
                    let _ = guard.insert(body.clone());
                }
                Ok(found)
            }
        }
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache and the registry its counter is in.
    fn cache(entries: usize) -> (CatalogCache, mesh::Metrics) {
        let identity = mesh::ServiceIdentity {
            name: "courses".into(),
            version: "test",
            instance_id: "test".into(),
        };
        let metrics = mesh::Metrics::new(&identity);
        (CatalogCache::new(entries, &metrics), metrics)
    }

    /// What the registry exports for `courses_catalog_cache_requests_total`
    /// with these labels, read from the text a scrape gets.
    fn count(metrics: &mesh::Metrics, name: Name, result: Outcome) -> u64 {
        let result = match result {
            Outcome::hit => "hit",
            Outcome::miss => "miss",
        };
        let series = format!(
            "courses_catalog_cache_requests_total{{cache=\"{}\",result=\"{result}\"}} ",
            name.as_str()
        );
        let text = metrics.encode_openmetrics();
        let line = text
            .lines()
            .find(|l| l.starts_with(&series))
            .unwrap_or_else(|| panic!("no {series}in\n{text}"));
        line[series.len()..].trim().parse().expect("a count")
    }

    #[tokio::test]
    async fn a_course_is_loaded_once_then_served_from_memory() {
        let (cache, metrics) = cache(8);
        let loads = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..3 {
            let body = cache
                .course("c0001", async {
                    loads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok::<_, ()>(Some(Bytes::from_static(b"{\"id\":\"c0001\"}")))
                })
                .await
                .unwrap();
            assert_eq!(body.as_deref(), Some(&b"{\"id\":\"c0001\"}"[..]));
        }
        assert_eq!(loads.into_inner(), 1);
        assert_eq!(count(&metrics, Name::course, Outcome::miss), 1);
        assert_eq!(count(&metrics, Name::course, Outcome::hit), 2);
    }

    #[tokio::test]
    async fn readers_of_a_key_being_loaded_wait_for_that_load() {
        let (cache, metrics) = cache(8);
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let read = || {
            cache.course("c0001", async {
                loads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Ok::<_, ()>(Some(Bytes::from_static(b"{}")))
            })
        };
        let (a, b, c) = tokio::join!(read(), read(), read());
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert_eq!(loads.into_inner(), 1);
        assert_eq!(count(&metrics, Name::course, Outcome::miss), 1);
        assert_eq!(count(&metrics, Name::course, Outcome::hit), 2);
    }

    #[tokio::test]
    async fn a_missing_course_or_a_failed_load_is_not_kept() {
        let (cache, metrics) = cache(8);
        let none = cache.course("nope", async { Ok::<_, ()>(None) }).await;
        assert_eq!(none, Ok(None));
        let failed = cache
            .course("c0002", async { Err::<Option<Bytes>, _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        // Both are asked of the database again.
        let again = cache
            .course("c0002", async {
                Ok::<_, &str>(Some(Bytes::from_static(b"{}")))
            })
            .await;
        assert_eq!(again, Ok(Some(Bytes::from_static(b"{}"))));
        assert_eq!(count(&metrics, Name::course, Outcome::miss), 3);
        assert_eq!(count(&metrics, Name::course, Outcome::hit), 0);
    }

    #[tokio::test]
    async fn pages_are_kept_per_query_and_bounded() {
        let (cache, metrics) = cache(4);
        for page in 1..=50u32 {
            let key = PageKey {
                page,
                per_page: 20,
                tag: Some("rust".into()),
                search: None,
            };
            let body = cache
                .page(
                    &key,
                    async move { Ok::<_, ()>(Bytes::from(page.to_string())) },
                )
                .await
                .unwrap();
            assert_eq!(body, Bytes::from(page.to_string()));
        }
        let inner = cache.inner.as_ref().unwrap();
        assert!(inner.pages.len() <= 4, "{} pages kept", inner.pages.len());
        // The same numbers with another tag are another page.
        let key = PageKey {
            page: 50,
            per_page: 20,
            tag: None,
            search: None,
        };
        let body = cache
            .page(&key, async { Ok::<_, ()>(Bytes::from_static(b"untagged")) })
            .await
            .unwrap();
        assert_eq!(body, Bytes::from_static(b"untagged"));
        assert_eq!(count(&metrics, Name::page, Outcome::miss), 51);
    }

    #[tokio::test]
    async fn turned_off_every_read_loads() {
        let (cache, metrics) = cache(0);
        for _ in 0..2 {
            let body = cache
                .course("c0001", async {
                    Ok::<_, ()>(Some(Bytes::from_static(b"{}")))
                })
                .await
                .unwrap();
            assert!(body.is_some());
        }
        assert_eq!(count(&metrics, Name::course, Outcome::miss), 0);
        assert_eq!(count(&metrics, Name::course, Outcome::hit), 0);
    }
}
