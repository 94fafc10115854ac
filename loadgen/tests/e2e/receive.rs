//! `loadgen receive` as a user runs it: what it prints as spans and log
//! records arrive over OTLP/HTTP, and when it stops.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::ChildStdout;

/// The first line that contains `needle`: among those already read (the
/// 5 s counts may come before or after the records they count), else read
/// into `seen` until one does.
async fn line_with(
    lines: &mut Lines<BufReader<ChildStdout>>,
    seen: &mut Vec<String>,
    needle: &str,
) -> String {
    if let Some(line) = seen.iter().find(|line| line.contains(needle)) {
        return line.clone();
    }
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout is readable") {
            seen.push(line.clone());
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    };
    match tokio::time::timeout(Duration::from_secs(15), read).await {
        Ok(Some(line)) => line,
        _ => panic!("no line with {needle:?} among {seen:#?}"),
    }
}

async fn post_json(url: String, body: &str) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds")
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("the receiver answers");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}

const LOGS: &str = r#"{"resourceLogs": [{
  "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payments"}}]},
  "scopeLogs": [{"logRecords": [
    {"severityNumber": 17, "severityText": "ERROR",
     "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0011223344556677",
     "body": {"stringValue": "payment provider failed"},
     "attributes": [
       {"key": "error", "value": {"stringValue": "connection refused"}},
       {"key": "destination", "value": {"stringValue": "provider"}}]},
    {"severityNumber": 5, "severityText": "DEBUG",
     "traceId": "5b8efff798038103d269b633813fc60c",
     "body": {"stringValue": "noisy detail"}},
    {"severityNumber": 9, "severityText": "INFO",
     "body": {"stringValue": "listening"}}
  ]}]
}]}"#;

const SPANS: &str = r#"{"resourceSpans": [{
  "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payments"}}]},
  "scopeSpans": [{"spans": [
    {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0011223344556677",
     "name": "POST /payments", "startTimeUnixNano": "1", "endTimeUnixNano": "2"}
  ]}]
}]}"#;

#[tokio::test]
async fn receive_prints_each_log_record_as_it_arrives_and_counts_spans() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["receive", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--print-logs", "info"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("loadgen receive starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut seen = Vec::new();

    // `receiving OTLP on http://127.0.0.1:N (gRPC) and http://127.0.0.1:M (HTTP); ...`
    let first = line_with(&mut lines, &mut seen, "receiving OTLP on").await;
    let words: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(words.get(7), Some(&"(HTTP);"), "{first}");
    let http = words[6].to_owned();

    post_json(format!("{http}/v1/logs"), LOGS).await;
    post_json(format!("{http}/v1/traces"), SPANS).await;

    let error = line_with(&mut lines, &mut seen, "payment provider failed").await;
    assert_eq!(
        error,
        "payments   ERROR 5b8efff7 payment provider failed destination=provider \
         error=\"connection refused\""
    );
    let info = line_with(&mut lines, &mut seen, "listening").await;
    assert_eq!(info, "payments   INFO  -        listening");
    // The counts, every 5 s, as before logs were received.
    line_with(
        &mut lines,
        &mut seen,
        "1 spans received (1 in the last 5 s)",
    )
    .await;
    line_with(
        &mut lines,
        &mut seen,
        "3 log records received (3 in the last 5 s)",
    )
    .await;

    let pid = nix::unistd::Pid::from_raw(child.id().expect("running") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signalled");
    line_with(&mut lines, &mut seen, "1 spans received in all").await;
    line_with(&mut lines, &mut seen, "3 log records received in all").await;
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("stops within the grace")
        .expect("exit status");
    assert!(status.success(), "{status}");
    assert!(
        !seen.iter().any(|l| l.contains("noisy detail")),
        "DEBUG is below --print-logs info: {seen:#?}"
    );
}
