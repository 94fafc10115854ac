use super::*;
use crate::summary::CheckResult;

#[derive(Deserialize)]
struct File {
    expect: Vec<Expectation>,
}

fn expectation(toml_table: &str) -> Expectation {
    toml::from_str::<File>(&format!("[[expect]]\n{toml_table}"))
        .map(|mut f| f.expect.remove(0))
        .unwrap()
}

fn breaker(check: &str, during: &str) -> Expectation {
    expectation(&format!(
        r#"
        service = "gateway"
        metric = "transitions_total"
        labels = {{ destination = "payments", state = "open" }}
        check = "{check}"
        {during}
        "#
    ))
}

/// A scrape of one replica: `transitions_total` with `open` at `open`,
/// and a `closed` series always at 5.
fn text(instance: &str, open: Option<f64>) -> String {
    let mut text = format!(
        "# TYPE build_info gauge\nbuild_info{{service_instance_id=\"{instance}\"}} 1\n# TYPE transitions counter\n"
    );
    text.push_str("transitions_total{destination=\"payments\",state=\"closed\"} 5\n");
    if let Some(v) = open {
        text.push_str(&format!(
            "transitions_total{{destination=\"payments\",state=\"open\"}} {v}\n"
        ));
    }
    text.push_str("# EOF\n");
    text
}

/// Rounds at 0, 1, 2, ... s; `scrapes[round]` = (replica, instance, open).
fn observe(e: Expectation, scrapes: &[&[(&str, &str, Option<f64>)]]) -> CheckResult {
    let mut obs = Observations::new(vec![e]);
    for (t, round) in scrapes.iter().enumerate() {
        obs.begin_round(t as f64);
        for (replica, instance, open) in *round {
            obs.record("gateway", replica, Ok(&text(instance, *open)));
        }
    }
    obs.evaluate().remove(0)
}

#[test]
fn increase_sums_rises_across_replicas() {
    let result = observe(
        breaker("increase >= 3", ""),
        &[
            &[("g0", "a", Some(2.0)), ("g1", "b", Some(0.0))],
            &[("g0", "a", Some(3.0)), ("g1", "b", Some(1.0))],
            &[("g0", "a", Some(4.0)), ("g1", "b", Some(1.0))],
        ],
    );
    assert!(result.passed, "{result:?}");
    assert_eq!(
        result.observed,
        Some(3.0),
        "the 2 before the run is a baseline"
    );
    assert_eq!(
        result.detail,
        "increase = 3 over the run (2 replicas scraped, 3 scrapes); expected >= 3"
    );
    assert_eq!(
        result.name,
        "gateway: transitions_total{destination=\"payments\",state=\"open\"} increase >= 3"
    );
}

#[test]
fn a_label_the_metric_never_carries_fails_even_an_expected_zero() {
    let typo = expectation(
        r#"
        service = "gateway"
        metric = "transitions_total"
        labels = { destinaton = "payments" }
        check = "increase == 0"
        "#,
    );
    let result = observe(typo, &[&[("g0", "a", None)], &[("g0", "a", None)]]);
    assert!(!result.passed, "{result:?}");
    assert!(
        result.detail.contains("has no label destinaton"),
        "{}",
        result.detail
    );
    // The right label, a value not seen yet: nothing happened, a pass.
    let result = observe(
        breaker("increase == 0", ""),
        &[&[("g0", "a", None)], &[("g0", "a", None)]],
    );
    assert!(result.passed, "{result:?}");
}

#[test]
fn a_reset_or_a_new_process_counts_from_zero() {
    // g0 restarts in place (same instance id, counter drops), g1 is
    // replaced by a new process (new id), g2 appears mid-run.
    let result = observe(
        breaker("increase >= 1", ""),
        &[
            &[("g0", "a", Some(5.0)), ("g1", "b", Some(7.0))],
            &[
                ("g0", "a", Some(1.0)),
                ("g1", "c", Some(2.0)),
                ("g2", "d", Some(4.0)),
            ],
            &[
                ("g0", "a", Some(2.0)),
                ("g1", "c", Some(2.0)),
                ("g2", "d", Some(4.0)),
            ],
        ],
    );
    // g0: 1 (reset) + 1; g1: 2 (new instance); g2: 4.
    assert_eq!(result.observed, Some(8.0));
}

#[test]
fn a_series_that_appears_during_the_run_counts_from_zero() {
    // The breaker's `open` series does not exist until it first opens.
    let result = observe(
        breaker("increase >= 1", ""),
        &[
            &[("g0", "a", None)],
            &[("g0", "a", None)],
            &[("g0", "a", Some(1.0))],
        ],
    );
    assert!(result.passed, "{result:?}");
    assert_eq!(result.observed, Some(1.0));
}

#[test]
fn only_the_window_counts() {
    let rounds: &[&[(&str, &str, Option<f64>)]] = &[
        &[("g0", "a", Some(0.0))],
        &[("g0", "a", Some(1.0))],
        &[("g0", "a", Some(1.0))],
        &[("g0", "a", Some(3.0))],
        &[("g0", "a", Some(10.0))],
    ];
    let result = observe(breaker("increase == 2", r#"during = ["2s", "3s"]"#), rounds);
    assert_eq!(result.observed, Some(2.0), "{result:?}");
    assert!(result.passed);
    assert!(
        result
            .detail
            .contains("over 2s–3s (1 replicas scraped, 2 scrapes)"),
        "{}",
        result.detail
    );
    let max = observe(breaker("max <= 3", r#"during = ["1s", "3s"]"#), rounds);
    assert_eq!(max.observed, Some(3.0));
    let min = observe(breaker("min >= 1", r#"during = ["1s", "4s"]"#), rounds);
    assert_eq!(min.observed, Some(1.0));
    let last = observe(breaker("last == 3", r#"during = ["0s", "3s"]"#), rounds);
    assert_eq!(last.observed, Some(3.0));
    assert!(last.passed);
    let late = observe(
        breaker("increase >= 1", r#"during = ["30s", "40s"]"#),
        rounds,
    );
    assert!(!late.passed);
    assert!(
        late.detail
            .contains("no scrape of gateway fell over 30s–40s"),
        "{}",
        late.detail
    );
}

#[test]
fn last_sums_the_replicas_at_the_last_scrape() {
    let result = observe(
        breaker("last == 3", ""),
        &[
            &[("g0", "a", Some(9.0)), ("g1", "b", Some(9.0))],
            &[("g0", "a", Some(1.0)), ("g1", "b", Some(2.0))],
        ],
    );
    assert_eq!(result.observed, Some(3.0));
}

#[test]
fn no_match_says_why() {
    let mut typo = breaker("increase >= 1", "");
    typo.metric = "transitons_total".into();
    let result = observe(typo, &[&[("g0", "a", Some(1.0))]]);
    assert!(!result.passed);
    assert_eq!(result.observed, None);
    assert!(
        result.detail.starts_with(
            "no series matched `transitons_total{destination=\"payments\",state=\"open\"}` on gateway: is the metric name right?"
        ),
        "{}",
        result.detail
    );

    // The family is there, never with these labels: nothing happened.
    let never = observe(breaker("increase == 0", ""), &[&[("g0", "a", None)]]);
    assert!(never.passed, "{never:?}");
    assert_eq!(never.observed, Some(0.0));
    let max = observe(breaker("max >= 1", ""), &[&[("g0", "a", None)]]);
    assert!(!max.passed);
    assert!(
        max.detail
            .contains("seen: {destination=\"payments\",state=\"closed\"}"),
        "{}",
        max.detail
    );
}

#[test]
fn scrape_failures_are_counted_not_fatal() {
    let mut obs = Observations::new(vec![breaker("increase >= 1", "")]);
    for t in 0..3 {
        obs.begin_round(f64::from(t));
        obs.record("gateway", "g0", Ok(&text("a", Some(f64::from(t)))));
        obs.record("gateway", "g1", Err("connection refused".into()));
    }
    obs.begin_round(3.0);
    obs.record_discovery_failure("gateway", "the launcher is gone".into());
    let result = obs.evaluate().remove(0);
    assert!(result.passed);
    assert!(
        result.detail.ends_with(
            "(2 replicas scraped, 3 scrapes; 4 scrapes failed (discovery: 1, last: the launcher is gone; g1: 3, last: connection refused)); expected >= 1"
        ),
        "{}",
        result.detail
    );

    let mut down = Observations::new(vec![breaker("increase >= 1", "")]);
    down.begin_round(0.0);
    down.record("gateway", "g0", Err("connection refused".into()));
    let result = down.evaluate().remove(0);
    assert!(!result.passed);
    assert_eq!(
        result.detail,
        "could not scrape any gateway replica (1 attempts failed; last: connection refused)"
    );
}

#[test]
fn mistakes_in_the_file_are_named() {
    let parse = |table: &str| {
        toml::from_str::<File>(&format!("[[expect]]\n{table}"))
            .map(drop)
            .unwrap_err()
            .to_string()
    };
    let base = "service = \"gateway\"\nmetric = \"x_total\"\n";
    for (rest, expected) in [
        ("check = \"rate >= 1\"", "unknown aggregate \"rate\""),
        ("check = \"increase >= lots\"", "\"lots\" is not a number"),
        (
            "check = \"increase 1\"",
            "expected `<subject> <op> <value>`",
        ),
        (
            "check = \"max < 1\"\nduring = [\"40s\", \"10s\"]",
            "must end after it starts",
        ),
        ("check = \"max < 1\"\nwhen = 1", "unknown field `when`"),
    ] {
        let err = parse(&format!("{base}{rest}"));
        assert!(err.contains(expected), "{rest}\n→ {err}");
    }
    let err = parse("service = \"gateway\"\nmetric = \"x-total\"\ncheck = \"max < 1\"");
    assert!(err.contains("is not a metric name"), "{err}");
}

#[test]
fn scaling_moves_the_window() {
    let e = breaker("increase >= 1", r#"during = ["10s", "40s"]"#).scaled(0.5);
    assert_eq!(
        e.during,
        Some(Window {
            start: Duration::from_secs(5),
            end: Duration::from_secs(20)
        })
    );
    assert_eq!(breaker("max < 1", "").scaled(0.5).during, None);
}
