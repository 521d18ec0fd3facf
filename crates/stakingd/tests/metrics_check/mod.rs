//! Reads a Prometheus text exposition and the Grafana dashboards in `deploy/grafana/`, and
//! checks that every dashboard query names a metric its service really exports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::collections::HashSet;
use std::path::PathBuf;

/// Every sample of an exposition as (sample name, `service` label, full line).
pub fn samples(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let name_end = l.find(['{', ' ']).unwrap();
            let service = l
                .split_once("service=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or(String::new(), |(s, _)| s.to_owned());
            (l[..name_end].to_owned(), service, l.to_owned())
        })
        .collect()
}

/// The sum of the values of the samples named `name` whose labels contain every one of `labels`
/// (written as in the exposition, e.g. `outcome="sent"`).
pub fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    samples(text)
        .iter()
        .filter(|(n, _, line)| n == name && labels.iter().all(|l| line.contains(l)))
        .map(|(_, _, line)| line.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

/// Metric names in a PromQL expression: identifiers directly followed by `{` (the dashboards
/// write every selector with its `{job=~"$job"}` matcher).
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut in_string = false;
    for c in expr.chars() {
        if c == '"' {
            in_string = !in_string;
            current.clear();
            continue;
        }
        if in_string {
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            current.push(c);
        } else {
            if c == '{' && current.chars().next().is_some_and(|f| !f.is_ascii_digit()) {
                names.push(current.clone());
            }
            current.clear();
        }
    }
    names
}

/// (dashboard file stem, every metric name its queries use).
pub fn dashboards() -> Vec<(String, Vec<String>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut names = Vec::new();
        for panel in json["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let found = metric_names(expr);
                assert!(!found.is_empty(), "{}: no metric in {expr}", path.display());
                names.extend(found);
            }
        }
        out.push((
            path.file_stem().unwrap().to_str().unwrap().to_owned(),
            names,
        ));
    }
    out.sort();
    out
}

/// The queue and outbox families: in the all-in-one devnet one transport (and its metrics)
/// serves every service, registered with the API's.
fn transport_family(name: &str) -> bool {
    [
        "events_",
        "event_processing_duration_seconds",
        "unprocessable_entity_total",
        "queue_operation_failure_total",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// Every dashboard query names a sample the dashboard's service exposes in `text` (the
/// devnet's merged exposition, `service`-labelled). Returns the problems.
pub fn unresolved(text: &str) -> Vec<String> {
    let exposed: HashSet<(String, String)> = samples(text)
        .into_iter()
        .map(|(name, service, _)| (name, service))
        .collect();
    let mut problems = Vec::new();
    let boards = dashboards();
    assert_eq!(boards.len(), 5, "one dashboard per service: {boards:?}");
    for (board, names) in boards {
        for name in names {
            let found = exposed.iter().any(|(n, service)| {
                n == &name
                    && (service == &board
                        || (board == "covenant-signer" && service.starts_with("signer-"))
                        || (transport_family(&name) && service == "api"))
            });
            if !found {
                problems.push(format!("{board}.json: {name} is not exported by {board}"));
            }
        }
    }
    problems
}

#[test]
fn metric_names_are_the_selectors_not_functions_labels_or_strings() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.95, sum by (le) (rate(a_b_bucket{job=~"$job", x="y{z"}[5m]))) + c{}"#
        ),
        ["a_b_bucket", "c"]
    );
}
