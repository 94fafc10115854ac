use super::*;
use std::time::Duration;

use crate::{check::Op, journeys::DataSpec};

const MINIMAL: &str = r#"
name = "t"
duration = "10s"

[[executor]]
name = "a"
type = "constant-arrival-rate"
rate = 10
journeys = { browse = 1 }
"#;

fn err(text: &str) -> String {
    Scenario::parse(text, "t.toml").unwrap_err().to_string()
}

#[test]
fn every_shipped_scenario_parses() {
    for (name, text) in SHIPPED {
        let s = Scenario::parse(text, name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&s.name, name, "file name and scenario name agree");
        assert!(!s.thresholds.is_empty(), "{name} has thresholds");
        assert!(!s.expectations.is_empty(), "{name} has expectations");
        assert!(!s.description.is_empty(), "{name} says what it is");
    }
}

/// Scenarios shipped for Kubernetes (deploy/k8s/loadgen/scenarios, mounted
/// into the loadgen Job) parse, check something, and leave scaling to
/// the autoscalers (a `scale` event would fight them).
#[test]
fn every_kubernetes_scenario_parses() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/k8s/loadgen/scenarios"
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("deploy/k8s/loadgen/scenarios exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let s = Scenario::load(path.to_str().unwrap()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Some(s.name.as_str()),
            path.file_stem().and_then(|n| n.to_str())
        );
        assert!(
            !s.thresholds.is_empty() && !s.expectations.is_empty(),
            "{} checks something",
            s.name
        );
        assert!(
            s.timeline
                .iter()
                .all(|event| !matches!(event.action, crate::timeline::Action::Scale { .. })),
            "{} scales by hand",
            s.name
        );
        seen += 1;
    }
    assert!(seen >= 1, "no scenario in {dir}");
}

#[test]
fn a_minimal_scenario_gets_defaults() {
    let s = Scenario::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(s.duration, Duration::from_secs(10));
    let e = &s.executors[0];
    assert_eq!(e.duration, Duration::from_secs(10));
    assert_eq!(e.kind, ExecutorKind::ConstantArrivalRate { rate: 10.0 });
    assert_eq!(e.journeys, vec![("browse", 1)]);
    assert_eq!(s.data, DataSpec::default());
}

#[test]
fn syntax_errors_name_the_line() {
    let e = err("name = \"t\"\nduration = 10s\n");
    assert!(e.starts_with("t.toml:2:"), "{e}");
}

#[test]
fn unknown_keys_are_rejected_with_their_line() {
    let text = MINIMAL.replace("rate = 10", "rate = 10\nrat = 3");
    let e = err(&text);
    assert!(e.starts_with("t.toml:9:"), "{e}");
    assert!(e.contains("rat"), "{e}");
}

#[test]
fn an_unknown_journey_is_named_with_its_line() {
    let e = err(&MINIMAL.replace("browse = 1", "brows = 1"));
    assert!(e.starts_with("t.toml:9:"), "{e}");
    assert!(e.contains("unknown journey \"brows\""), "{e}");
    assert!(e.contains("browse, signup, checkout, study"), "{e}");
}

#[test]
fn fields_of_another_executor_type_are_refused() {
    let e = err(&MINIMAL.replace("rate = 10", "rate = 10\nvus = 3"));
    assert!(e.contains("`vus` does not apply"), "{e}");
    let e = err(&MINIMAL.replace("rate = 10", ""));
    assert!(e.contains("needs `rate`"), "{e}");
}

#[test]
fn ramps_and_closed_models_parse() {
    let text = r#"
name = "t"
duration = "1m"
[[executor]]
name = "ramp"
type = "ramping-arrival-rate"
start_rate = 5
stages = [{ duration = "10s", target = 50 }, { duration = "20s", target = 0 }]
journeys = { signup = 1, checkout = 3 }
[[executor]]
name = "learners"
type = "constant-vus"
vus = 4
think_time = ["500ms", "2s"]
start = "10s"
journeys = { study = 1 }
"#;
    let s = Scenario::parse(text, "t.toml").unwrap();
    assert_eq!(s.executors[1].duration, Duration::from_secs(50));
    assert_eq!(
        s.executors[1].kind,
        ExecutorKind::ConstantVus {
            vus: 4,
            think_time: (Duration::from_millis(500), Duration::from_secs(2))
        }
    );
    let ExecutorKind::RampingArrivalRate { start_rate, stages } = &s.executors[0].kind else {
        panic!("a ramp")
    };
    assert_eq!(*start_rate, 5.0);
    assert_eq!(stages.len(), 2);
    let e = err(&text.replace("\"20s\", target = 0", "\"2m\", target = 0"));
    assert!(e.contains("longer than the executor runs"), "{e}");
}

#[test]
fn thresholds_parse_their_units() {
    let text = format!(
        "{MINIMAL}
[[threshold]]
journey = \"browse\"
check = \"p99 < 800ms\"
[[threshold]]
check = \"error_rate <= 2%\"
during = [\"2s\", \"8s\"]
abort_on_fail = true
grace = \"3s\"
[[threshold]]
executor = \"a\"
check = \"achieved_ratio >= 0.95\"
[[threshold]]
check = \"uncorrected_p99.9 < 1s\"
"
    );
    let s = Scenario::parse(&text, "t.toml").unwrap();
    let t = &s.thresholds;
    assert_eq!(t[0].name, "browse: p99 < 800ms");
    assert_eq!(
        t[0].stat,
        Stat::Latency {
            quantile: 0.99,
            corrected: true
        }
    );
    assert_eq!(t[0].limit, 800.0);
    assert_eq!(t[1].limit, 0.02);
    assert_eq!(t[1].op, Op::Le);
    assert_eq!(
        t[1].during,
        Some((Duration::from_secs(2), Duration::from_secs(8)))
    );
    assert!(t[1].abort_on_fail);
    assert_eq!(t[2].scope, Scope::Executor("a".into()));
    assert_eq!(t[2].limit, 0.95);
    assert_eq!(
        t[3].stat,
        Stat::Latency {
            quantile: 0.999,
            corrected: false
        }
    );
    assert_eq!(t[3].limit, 1000.0);
}

#[test]
fn bad_thresholds_say_what_is_wrong() {
    let with = |check: &str| err(&format!("{MINIMAL}\n[[threshold]]\ncheck = \"{check}\"\n"));
    assert!(with("p98 < 1s").contains("unknown statistic"));
    assert!(with("p99 < fast").contains("not a duration"));
    assert!(with("error_rate < lots").contains("not a ratio"));
    assert!(with("p99 1s").contains("expected `<subject> <op> <value>`"));
    assert!(with("dropped < 1").contains("applies to executors"));
    let e = with("p99 < fast");
    assert!(e.starts_with("t.toml:12:"), "{e}");
}

#[test]
fn windows_and_durations_have_limits() {
    let with = |extra: &str| err(&format!("{MINIMAL}\n{extra}"));
    let e = with("[[threshold]]\ncheck = \"uncorrected_p99 < 1s\"\nduring = [\"1s\", \"2s\"]\n");
    assert!(e.contains("`during` applies to"), "{e}");
    let e = with(
        "[[threshold]]\nrequest = \"GET /api/courses\"\ncheck = \"error_rate < 1%\"\nduring = [\"1s\", \"2s\"]\n",
    );
    assert!(e.contains("`during` applies to"), "{e}");
    let e = err(&MINIMAL.replace("\"10s\"", "\"100000y\""));
    assert!(e.contains("longer than a scenario may run"), "{e}");
    let e = with("[[timeline]]\nat = \"10s\"\naction = \"clear-faults\"\nservice = \"payments\"\n");
    assert!(e.contains("would never fire"), "{e}");
}

#[test]
fn scaling_shortens_every_duration() {
    let s = Scenario::parse(MINIMAL, "t.toml").unwrap().scaled(0.1);
    assert_eq!(s.duration, Duration::from_secs(1));
    assert_eq!(s.executors[0].duration, Duration::from_secs(1));
    assert_eq!(s.duration_scale, 0.1);
}

#[test]
fn line_and_column_are_one_based() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
}
