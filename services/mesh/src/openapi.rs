//! Each service's OpenAPI 3.1 document, served at `/openapi.json`.
//!
//! Services declare their routes with `utoipa_axum::OpenApiRouter` and
//! `#[utoipa::path]`, so a route and its operation are registered together
//! and the document cannot drift from the router. [`finish`] then adds what
//! every service shares and no handler should repeat: the error schema,
//! the bearer security scheme, and on each operation the answers the mesh
//! itself gives (malformed JSON, oversized bodies, load shedding, ...), so
//! that every status a client can see is documented with its body.

use utoipa::{
    PartialSchema as _, ToSchema as _,
    openapi::{
        ComponentsBuilder, ContentBuilder, Info, OpenApi, RefOr, ResponseBuilder,
        path::{Operation, ParameterIn},
        schema::Ref,
        security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    },
};

use crate::error::{ErrorBody, ErrorDetail};

/// The name of the bearer-token security scheme (`components.securitySchemes`).
pub const BEARER: &str = "bearer";

/// The security requirement of a route that needs a user's token, for
/// `#[utoipa::path(security(...))]`: `security(("bearer" = []))`.
pub fn bearer_required() -> Vec<SecurityRequirement> {
    vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]
}

/// A shared error answer: its status, its component name and what it means.
#[derive(Debug, Clone, Copy)]
pub struct SharedError {
    pub status: u16,
    pub name: &'static str,
    pub description: &'static str,
}

pub const BAD_REQUEST: SharedError = SharedError {
    status: 400,
    name: "BadRequest",
    description: "The request is malformed: `invalid_json`, `invalid_path`, `invalid_query`, or a header the operation names.",
};
pub const UNAUTHORIZED: SharedError = SharedError {
    status: 401,
    name: "Unauthorized",
    description: "`unauthorized`: no bearer token, or one that is malformed, expired, tampered with, or not issued for this API.",
};
pub const FORBIDDEN: SharedError = SharedError {
    status: 403,
    name: "Forbidden",
    description: "`forbidden`: the token is valid, but the object belongs to another user.",
};
pub const NOT_FOUND: SharedError = SharedError {
    status: 404,
    name: "NotFound",
    description: "No such object (`not_found` or a more specific code).",
};
pub const PAYLOAD_TOO_LARGE: SharedError = SharedError {
    status: 413,
    name: "PayloadTooLarge",
    description: "`body_too_large`: the body is over the service's `MAX_BODY_BYTES` (64 KiB by default).",
};
pub const UNSUPPORTED_MEDIA_TYPE: SharedError = SharedError {
    status: 415,
    name: "UnsupportedMediaType",
    description: "`unsupported_media_type`: the body is not sent as `application/json`.",
};
pub const UNPROCESSABLE: SharedError = SharedError {
    status: 422,
    name: "UnprocessableContent",
    description: "`invalid_body` (a missing, mistyped or unknown field, or not a JSON object) or `invalid_input` (a value out of range; the message says which).",
};
pub const TOO_MANY_REQUESTS: SharedError = SharedError {
    status: 429,
    name: "TooManyRequests",
    description: "`rate_limited`: over the client's rate limit; `concurrency_limited`: the client has as many requests in flight as it may. `Retry-After` says when to try again.",
};
pub const INTERNAL: SharedError = SharedError {
    status: 500,
    name: "InternalError",
    description: "`internal`: the service failed; details are logged, never sent.",
};
pub const BAD_GATEWAY: SharedError = SharedError {
    status: 502,
    name: "BadGateway",
    description: "`bad_gateway`: a service this one called failed.",
};
pub const UNAVAILABLE: SharedError = SharedError {
    status: 503,
    name: "ServiceUnavailable",
    description: "`overloaded` (this replica serves its `CONCURRENCY_LIMIT` already; `Retry-After: 1`) or `dependency_unavailable` (a service or database this one needs did not answer).",
};

const ALL: [SharedError; 11] = [
    BAD_REQUEST,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    UNPROCESSABLE,
    TOO_MANY_REQUESTS,
    INTERNAL,
    BAD_GATEWAY,
    UNAVAILABLE,
];

/// What a service says about itself in its document.
#[derive(Debug, Clone, Copy)]
pub struct ApiInfo {
    pub title: &'static str,
    pub description: &'static str,
    /// Errors every operation of this service can answer with, beyond the
    /// mesh's own (the gateway: 429, 502, 503).
    pub every_operation: &'static [SharedError],
}

/// Completes a service's document: title, version, the `ErrorBody` schema,
/// the bearer scheme, and on each operation the answers the mesh gives
/// whatever the handler does:
///
/// - 400 on operations with parameters (a path or query that does not parse);
/// - 413, 415 and 422 on operations with a body;
/// - 401 on operations that need a token;
/// - 500 and 503 everywhere;
///
/// plus `info.every_operation`. A status the operation declares itself is
/// kept as declared.
pub fn finish(mut api: OpenApi, info: &ApiInfo) -> OpenApi {
    api.info = Info::new(info.title, env!("CARGO_PKG_VERSION"));
    api.info.description = Some(info.description.to_owned());
    let mut components = ComponentsBuilder::new()
        .schema(ErrorBody::name(), ErrorBody::schema())
        .schema(ErrorDetail::name(), ErrorDetail::schema())
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /api/sessions` (HS256 JWT, `iss` learnsphere-users, `aud` learnsphere).",
                    ))
                    .build(),
            ),
        );
    for error in ALL {
        components = components.response(error.name, error_response(error.description));
    }
    let mut components = components.build();
    if let Some(theirs) = api.components.take() {
        components.schemas.extend(theirs.schemas);
        components.responses.extend(theirs.responses);
        components.security_schemes.extend(theirs.security_schemes);
    }
    api.components = Some(components);

    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_shared_errors(operation, info);
        }
    }
    api
}

fn add_shared_errors(operation: &mut Operation, info: &ApiInfo) {
    let parameters = operation.parameters.iter().flatten().any(|p| match p {
        RefOr::T(p) => matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query),
        RefOr::Ref(_) => true,
    });
    let body = operation.request_body.is_some();
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let mut wanted = vec![INTERNAL, UNAVAILABLE];
    if parameters {
        wanted.push(BAD_REQUEST);
    }
    if body {
        wanted.extend([
            BAD_REQUEST,
            PAYLOAD_TOO_LARGE,
            UNSUPPORTED_MEDIA_TYPE,
            UNPROCESSABLE,
        ]);
    }
    if secured {
        wanted.push(UNAUTHORIZED);
    }
    wanted.extend(info.every_operation.iter().copied());
    for error in wanted {
        operation
            .responses
            .responses
            .entry(error.status.to_string())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(error.name)));
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
}

/// The document as `/openapi.json` serves it.
pub fn to_json(api: &OpenApi) -> bytes::Bytes {
    serde_json::to_vec(api)
        .expect("an OpenAPI document serializes")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::{HttpMethod, PathItem, path::OperationBuilder};

    #[test]
    fn shared_errors_are_added_by_what_an_operation_takes() {
        let get = PathItem::new(HttpMethod::Get, OperationBuilder::new().build());
        let mut api = OpenApi::new(Info::new("t", "1"), utoipa::openapi::Paths::new());
        api.paths.paths.insert("/x".into(), get);
        let api = finish(
            api,
            &ApiInfo {
                title: "test",
                description: "d",
                every_operation: &[TOO_MANY_REQUESTS],
            },
        );
        let json = serde_json::to_value(&api).unwrap();
        let responses = &json["paths"]["/x"]["get"]["responses"];
        for status in ["500", "503", "429"] {
            assert_eq!(
                responses[status]["$ref"],
                format!(
                    "#/components/responses/{}",
                    ALL.iter()
                        .find(|e| e.status.to_string() == status)
                        .unwrap()
                        .name
                )
            );
        }
        // No body, no parameters, no security: none of their errors.
        for status in ["400", "401", "413", "415", "422"] {
            assert!(responses.get(status).is_none(), "{status}: {responses}");
        }
        assert_eq!(json["openapi"], "3.1.0");
        assert!(json["components"]["schemas"]["ErrorBody"].is_object());
        assert_eq!(
            json["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
    }
}
