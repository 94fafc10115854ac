//! Web pages built into a binary: the learner app the gateway serves at
//! `/`, and the operator console loadgen serves at `/console` (both from
//! `web/`, whose built files are committed under `web/dist` and embedded
//! with `include_bytes!`, so a build with cargo alone serves them).
//!
//! Every answer carries the headers a public page needs
//! ([`Page::headers`]): a Content-Security-Policy that allows scripts,
//! styles and requests only from the page's own origin (plus the OTLP
//! endpoint the page exports its spans to), no framing, no sniffing, no
//! referrer. `docs/security.md` ("The web pages") says why each is there.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Response, StatusCode, header},
};

/// The marker in a built `index.html` that [`Page::html`] replaces with
/// the page's settings (`<meta>` elements).
pub const CONFIG_MARKER: &str = "<!--learnsphere-config-->";

/// One embedded file, with the validator browsers revalidate it with.
#[derive(Debug, Clone)]
pub struct Asset {
    body: bytes::Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    pub fn new(body: impl Into<bytes::Bytes>, content_type: &'static str) -> Self {
        let body = body.into();
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish()))
            .expect("hex in quotes is a valid header value");
        Self {
            body,
            content_type,
            etag,
        }
    }

    pub fn javascript(body: &'static [u8]) -> Self {
        Self::new(body, "text/javascript; charset=utf-8")
    }

    pub fn css(body: &'static [u8]) -> Self {
        Self::new(body, "text/css; charset=utf-8")
    }

    pub fn html(body: String) -> Self {
        Self::new(body, "text/html; charset=utf-8")
    }

    /// The file, or 304 when the browser's copy is this one. `no-cache`:
    /// the names carry no hash, so a browser must ask each time whether a
    /// new build changed them (a 304 is a few bytes).
    pub fn respond(&self, request: &HeaderMap, page: &Page) -> Response<Body> {
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tags| tags.as_bytes() == self.etag.as_bytes());
        let mut response = if fresh {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        } else {
            let mut r = Response::new(Body::from(self.body.clone()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
            r
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        page.headers(headers);
        response
    }
}

/// A page's security policy: where it may connect besides its own origin.
#[derive(Debug, Clone)]
pub struct Page {
    csp: HeaderValue,
}

impl Page {
    /// `connect_to`: origins (`http://host:port`) the page's scripts may
    /// send requests to besides its own.
    pub fn new<'a>(connect_to: impl IntoIterator<Item = &'a str>) -> Self {
        let mut connect = String::from("'self'");
        for origin in connect_to {
            connect.push(' ');
            connect.push_str(origin);
        }
        // No inline script or style anywhere, so no 'unsafe-inline' and no
        // nonce: injected markup cannot run. Forms are handled by script
        // (`form-action 'none'`), and nothing embeds the page.
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        Self {
            csp: HeaderValue::from_str(&csp).expect("origins were checked to be header-safe"),
        }
    }

    /// The headers every answer of the page carries.
    pub fn headers(&self, headers: &mut HeaderMap) {
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        // Older browsers that ignore `frame-ancestors`.
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        // Links to Jaeger and Grafana carry no URL of ours (it holds ids).
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(
            "permissions-policy",
            HeaderValue::from_static(
                "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
            ),
        );
    }

    /// `index` with [`CONFIG_MARKER`] replaced by one `<meta name content>`
    /// per setting, escaped.
    pub fn html(index: &str, settings: &[(&str, &str)]) -> String {
        let meta: String = settings
            .iter()
            .map(|(name, content)| {
                format!(
                    "<meta name=\"{}\" content=\"{}\">",
                    escape(name),
                    escape(content)
                )
            })
            .collect();
        index.replacen(CONFIG_MARKER, &meta, 1)
    }
}

/// Text safe as HTML element content and inside a quoted attribute value
/// (either quote).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The origin (`scheme://host:port`) of an absolute `http` or `https`
/// URL, for a Content-Security-Policy; `None` for anything else (a
/// relative URL, another scheme, characters a header cannot hold).
pub fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = uri.authority()?;
    // No credentials in a policy (nor in a URL a page is given).
    if authority.as_str().contains('@') {
        return None;
    }
    let origin = format!("{scheme}://{authority}");
    HeaderValue::from_str(&origin).ok()?;
    Some(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_escaped_into_meta_elements() {
        let html = Page::html(
            "<head><!--learnsphere-config--></head>",
            &[("learnsphere-jaeger-url", "http://x/\"><script>")],
        );
        assert_eq!(
            html,
            "<head><meta name=\"learnsphere-jaeger-url\" content=\"http://x/&quot;&gt;&lt;script&gt;\"></head>"
        );
    }

    #[test]
    fn only_http_origins_are_taken() {
        assert_eq!(
            origin_of("http://127.0.0.1:4318/v1/traces").as_deref(),
            Some("http://127.0.0.1:4318")
        );
        assert_eq!(
            origin_of("https://otel.example.com/v1/traces").as_deref(),
            Some("https://otel.example.com")
        );
        for bad in [
            "/v1/traces",
            "javascript:alert(1)",
            "ftp://x/",
            "http://user:pw@x/",
            "http://x y/",
        ] {
            assert_eq!(origin_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_fresh_copy_is_not_sent_again() {
        let page = Page::new(["http://127.0.0.1:4318"]);
        let asset = Asset::javascript(b"console.log(1)");
        let first = asset.respond(&HeaderMap::new(), &page);
        assert_eq!(first.status(), StatusCode::OK);
        let tag = first.headers()[header::ETAG].clone();
        let csp = first.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("connect-src 'self' http://127.0.0.1:4318;"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self';"), "{csp}");
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(
            asset.respond(&again, &page).status(),
            StatusCode::NOT_MODIFIED
        );
    }
}
