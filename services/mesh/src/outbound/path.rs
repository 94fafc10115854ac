//! Request paths from route templates: each `{...}` is filled with a
//! percent-encoded parameter, so a caller's id can never change which
//! route is called.

/// `route` with each `{...}` replaced by the next parameter, encoded.
pub(crate) fn fill_route(route: &str, params: &[&str]) -> String {
    debug_assert_eq!(
        route.matches('{').count(),
        params.len(),
        "route {route} takes as many parameters as it has placeholders"
    );
    let mut path = String::with_capacity(route.len() + 32);
    let mut params = params.iter();
    let mut rest = route;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        path.push_str(&encode_path_segment(
            params.next().copied().unwrap_or_default(),
        ));
        rest = &rest[close..];
    }
    path.push_str(rest);
    path
}

/// Everything but RFC 3986 unreserved characters is escaped in a segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment, so a caller's id can never add
/// segments or a query to the route, nor remove any.
///
/// `.` and `..` are the exception percent-encoding cannot cover: URL
/// parsing removes them with the segment before (RFC 3986 section 5.2.4),
/// and the WHATWG URL standard the `url` crate follows treats `%2e` as a
/// dot too, so `/courses/..` would be sent as `/`. No URL can carry them
/// as a value; their dots are sent double-encoded instead, so the call
/// still reaches the route it names (with an id, `%2E`, that matches
/// nothing).
pub fn encode_path_segment(segment: &str) -> String {
    if segment == "." || segment == ".." {
        return segment.replace('.', "%252E");
    }
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::fill_route;

    #[test]
    fn routes_are_filled_in_order_and_encoded() {
        assert_eq!(fill_route("/payments", &[]), "/payments");
        assert_eq!(
            fill_route("/courses/{course_id}", &["c0001"]),
            "/courses/c0001"
        );
        assert_eq!(
            fill_route(
                "/users/{user_id}/courses/{course_id}/progress",
                &["u/1", "c?2"]
            ),
            "/users/u%2F1/courses/c%3F2/progress"
        );
    }
}
