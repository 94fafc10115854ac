//! The learner web app at `/` (sources in `web/`, built into `web/dist`
//! and embedded here, so a gateway built with cargo alone serves it).
//! Hash routes (`/#/courses/c0001`) keep every page on the one document,
//! so the gateway serves three files and nothing else.

use axum::{Router, extract::State, http::HeaderMap, response::Response, routing::get};
use mesh::web::{Asset, Page};

use crate::config::WebConfig;

const INDEX: &str = include_str!("../../../web/dist/app/index.html");
const SCRIPT: &[u8] = include_bytes!("../../../web/dist/app/app.js");
const STYLE: &[u8] = include_bytes!("../../../web/dist/app/app.css");

#[derive(Clone)]
struct Site {
    page: Page,
    index: Asset,
    script: Asset,
    style: Asset,
}

/// `/`, `/index.html`, `/assets/app.js` and `/assets/app.css`, each
/// with the page's security headers (`mesh::web`). The document carries
/// `config`: where trace ids link to, and where spans go.
pub(crate) fn router(config: &WebConfig) -> Router {
    let otlp_url = config.otlp_traces_url.as_deref().filter(|u| !u.is_empty());
    let otlp_origin = otlp_url.and_then(mesh::web::origin_of);
    let index = Page::html(
        INDEX,
        &[
            ("learnsphere-jaeger-url", &config.jaeger_url),
            ("learnsphere-otlp-traces-url", otlp_url.unwrap_or("")),
        ],
    );
    let site = Site {
        page: Page::new(otlp_origin.as_deref()),
        index: Asset::html(index),
        script: Asset::javascript(SCRIPT),
        style: Asset::css(STYLE),
    };
    Router::new()
        .route("/", get(index_html))
        .route("/index.html", get(index_html))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
        .with_state(site)
}

async fn index_html(State(site): State<Site>, headers: HeaderMap) -> Response {
    site.index.respond(&headers, &site.page)
}

async fn script(State(site): State<Site>, headers: HeaderMap) -> Response {
    site.script.respond(&headers, &site.page)
}

async fn style(State(site): State<Site>, headers: HeaderMap) -> Response {
    site.style.respond(&headers, &site.page)
}

#[cfg(test)]
mod tests {
    use axum::{
        body::Body,
        http::{Request, StatusCode, header},
    };
    use tower::ServiceExt as _;

    use super::*;

    fn config(otlp: Option<&str>) -> WebConfig {
        WebConfig {
            jaeger_url: "http://jaeger.example:16686".into(),
            otlp_traces_url: otlp.map(str::to_owned),
        }
    }

    async fn get(router: &Router, path: &str) -> (StatusCode, HeaderMap, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_page_is_told_where_traces_go_and_may_send_them_there() {
        let router = router(&config(Some("http://127.0.0.1:4318/v1/traces")));
        let (status, headers, body) = get(&router, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(body.contains(
            r#"<meta name="learnsphere-otlp-traces-url" content="http://127.0.0.1:4318/v1/traces">"#
        ));
        assert!(body.contains(
            r#"<meta name="learnsphere-jaeger-url" content="http://jaeger.example:16686">"#
        ));
        assert!(!body.contains(mesh::web::CONFIG_MARKER));
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("connect-src 'self' http://127.0.0.1:4318;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

        // Without an endpoint (or an empty one) the page sends nothing
        // anywhere but here.
        for none in [None, Some("")] {
            let router = super::router(&config(none));
            let (_, headers, body) = get(&router, "/").await;
            assert!(body.contains(r#"<meta name="learnsphere-otlp-traces-url" content="">"#));
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.contains("connect-src 'self';"), "{csp}");
        }
    }

    #[tokio::test]
    async fn the_files_the_page_loads_are_served_with_their_types() {
        let router = router(&config(None));
        let (_, _, index) = get(&router, "/").await;
        for (path, content_type) in [
            ("/assets/app.js", "text/javascript; charset=utf-8"),
            ("/assets/app.css", "text/css; charset=utf-8"),
        ] {
            assert!(index.contains(path), "index.html loads {path}");
            let (status, headers, body) = get(&router, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
            assert!(!body.is_empty(), "{path}");
            assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
        }
        // No inline script or style: the policy would block them, so the
        // page must rely on none.
        let scripts: Vec<&str> = index
            .split("<script")
            .skip(1)
            .map(|tag| tag.split('>').next().unwrap_or_default())
            .collect();
        assert!(!scripts.is_empty(), "{index}");
        assert!(scripts.iter().all(|tag| tag.contains(" src=")), "{index}");
        assert!(
            !index.contains("<style") && !index.contains(" style="),
            "{index}"
        );
    }
}
