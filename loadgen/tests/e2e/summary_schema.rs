//! `docs/summary.schema.json` describes `summary.json` exactly: what
//! loadgen writes validates, and documents missing a field, with a wrong
//! type, or with a field the schema does not know are rejected — so the
//! schema cannot drift from the `Summary` type unnoticed.

use serde_json::{Value, json};

use crate::report_fixture;

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/summary.schema.json");
    let text = std::fs::read_to_string(path).expect("docs/summary.schema.json is readable");
    serde_json::from_str(&text).expect("the schema is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema()).expect("the schema compiles as draft 2020-12")
}

fn populated() -> Value {
    serde_json::to_value(report_fixture::summary()).expect("a summary serialises")
}

fn errors(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    if let Err(error) = jsonschema::meta::validate(&schema) {
        panic!("the schema fails its meta-schema: {error}");
    }
}

#[test]
fn a_populated_summary_validates() {
    let validator = validator();
    let document = populated();
    let errors = errors(&validator, &document);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn an_empty_run_validates() {
    // A run aborted before anything started: every list empty, every
    // optional field null.
    let mut summary = report_fixture::summary();
    summary.verdict.aborted = Some("the gateway never became ready".into());
    summary.journeys.clear();
    summary.requests.clear();
    summary.executors.clear();
    summary.timeline.clear();
    summary.thresholds.clear();
    summary.expectations.clear();
    summary.series.clear();
    summary.slowest.clear();
    summary.failed.clear();
    summary.links.jaeger = None;
    let document = serde_json::to_value(summary).expect("serialises");
    let errors = errors(&validator(), &document);
    assert!(errors.is_empty(), "{errors:#?}");
}

/// Applies `break_it` to a valid document and expects the schema to reject
/// it, with an error pointing at `path`.
fn assert_rejected(what: &str, path: &str, break_it: impl FnOnce(&mut Value)) {
    let validator = validator();
    let mut document = populated();
    break_it(&mut document);
    let errors: Vec<_> = validator
        .iter_errors(&document)
        .map(|e| e.instance_path().to_string())
        .collect();
    assert!(!errors.is_empty(), "{what}: accepted");
    assert!(
        errors.iter().any(|p| p == path),
        "{what}: expected an error at {path}, got {errors:?}"
    );
}

#[test]
fn missing_fields_are_rejected() {
    assert_rejected("no verdict.passed", "/verdict", |d| {
        d["verdict"].as_object_mut().unwrap().remove("passed");
    });
    assert_rejected("no trace_id on a sample", "/slowest/0", |d| {
        d["slowest"][0].as_object_mut().unwrap().remove("trace_id");
    });
    assert_rejected("no name on a journey", "/journeys/0", |d| {
        d["journeys"][0].as_object_mut().unwrap().remove("name");
    });
    assert_rejected(
        "no p99 in the overall latency",
        "/overall/latency_ms",
        |d| {
            d["overall"]["latency_ms"]
                .as_object_mut()
                .unwrap()
                .remove("p99");
        },
    );
}

#[test]
fn wrong_types_are_rejected() {
    assert_rejected("duration as a string", "/duration_s", |d| {
        d["duration_s"] = json!("60");
    });
    assert_rejected("negative count", "/journeys/1/count", |d| {
        d["journeys"][1]["count"] = json!(-1);
    });
    assert_rejected("status beyond u16", "/failed/0/status", |d| {
        d["failed"][0]["status"] = json!(70000);
    });
    assert_rejected(
        "error count as a string",
        "/requests/0/errors_by_kind/timeout",
        |d| {
            d["requests"][0]["errors_by_kind"]["timeout"] = json!("2");
        },
    );
    assert_rejected("trace id not hex", "/slowest/0/trace_id", |d| {
        d["slowest"][0]["trace_id"] = json!("not-a-trace-id");
    });
    assert_rejected("another schema version", "/schema_version", |d| {
        d["schema_version"] = json!(2);
    });
}

#[test]
fn unknown_fields_are_rejected() {
    assert_rejected("extra top-level field", "", |d| {
        d["extra"] = json!(1);
    });
    // NamedStats flattens Stats: closed through unevaluatedProperties.
    assert_rejected("extra journey field", "/journeys/0", |d| {
        d["journeys"][0]["p42"] = json!(1);
    });
    assert_rejected("name on the overall stats", "/overall", |d| {
        d["overall"]["name"] = json!("all");
    });
}
