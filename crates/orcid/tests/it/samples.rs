//! Every JSON document of ORCID's official model repository parses into its type, writes
//! back, parses back equal, and the written JSON says what the original said.
//!
//! The samples are read at test time from ORCID's model repository
//! ([`orcid_model_dir`](crate::reference::orcid_model_dir): `shared/reference/orcid-model`
//! next to the workspace, or `ORCID_MODEL_DIR`). Every `.json` file in that tree is mapped
//! to a type explicitly by its path: a new JSON sample without a mapping fails the test.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use orcid::model::{
    Address, Affiliation, AffiliationType, BulkWorks, Funding, GroupIdRecord, Keyword, OtherName,
    PeerReview, PersonExternalIdentifier, Record, ResearchResource, ResearcherUrl, UnknownFields,
    Work,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::reference::orcid_model_dir;

/// How strictly the written JSON must match the original.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fidelity {
    /// ORCID's own response: only `null` == absent is tolerated.
    Response,
    /// A hand-written request sample: additionally, a bare scalar in the original may come
    /// out wrapped as `{"value": …}` (canonical form), and a number may come out as a
    /// string holding it or the reverse (ORCID accepts both on input).
    WriteSample,
}

fn run<T>(path: &Path, fidelity: Fidelity) -> Result<(), String>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let original: Value =
        serde_json::from_str(&text).map_err(|e| format!("not JSON at all: {e}"))?;
    let (parsed, unknown) = UnknownFields::observe(|| serde_json::from_str::<T>(&text));
    let parsed = parsed.map_err(|e| format!("does not parse as {}: {e}", type_name::<T>()))?;
    if !unknown.is_empty() {
        return Err(format!(
            "keys not modelled by {} (they only survived in `extra`): {unknown:?}",
            type_name::<T>()
        ));
    }
    let written = serde_json::to_value(&parsed).map_err(|e| format!("does not serialize: {e}"))?;
    let reparsed: T = serde_json::from_value(written.clone())
        .map_err(|e| format!("own output does not parse back: {e}"))?;
    if reparsed != parsed {
        return Err("own output parses back to a different value".to_owned());
    }
    let mut differences = Vec::new();
    compare(&original, &written, "$", fidelity, &mut differences);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "written JSON differs from the original:\n  {}",
            differences.join("\n  ")
        ))
    }
}

fn type_name<T>() -> &'static str {
    std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("?")
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// Records every difference between `original` and `written` (ORCID's document and ours).
fn compare(
    original: &Value,
    written: &Value,
    path: &str,
    fidelity: Fidelity,
    out: &mut Vec<String>,
) {
    match (original, written) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let sub = format!("{path}.{key}");
                match (present(a.get(key)), present(b.get(key))) {
                    (None, None) => {}
                    (Some(x), None) => out.push(format!("{sub}: {x} was dropped")),
                    (None, Some(y)) => out.push(format!("{sub}: {y} was added")),
                    (Some(x), Some(y)) => compare(x, y, &sub, fidelity, out),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{path}: {} entries became {}", a.len(), b.len()));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(x, y, &format!("{path}[{i}]"), fidelity, out);
            }
        }
        (bare, Value::Object(b))
            if fidelity == Fidelity::WriteSample
                && !bare.is_object()
                && !bare.is_array()
                && b.len() == 1
                && b.contains_key("value") =>
        {
            compare(bare, &b["value"], &format!("{path}.value"), fidelity, out);
        }
        (a, b) if a == b => {}
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s))
            if fidelity == Fidelity::WriteSample && same_number(s, n) => {}
        (a, b) => out.push(format!("{path}: {a} became {b}")),
    }
}

fn same_number(s: &str, n: &serde_json::Number) -> bool {
    match (s.trim().parse::<f64>(), n.as_f64()) {
        (Ok(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The type each sample must parse into, by its path inside the model repository.
/// `None`: no mapping (fails the test).
fn check_sample(relative: &str, path: &Path) -> Option<Result<(), String>> {
    use Fidelity::{Response, WriteSample};
    if relative == "record_3.0/samples/read_samples/record-full-3.0.json" {
        return Some(run::<Record>(path, Response));
    }
    let file = relative.strip_prefix("record_3.0/samples/write_samples/")?;
    let affiliation_samples: Vec<String> = AffiliationType::ALL
        .iter()
        .map(|t| format!("{}-3.0.json", t.path_segment()))
        .collect();
    Some(match file {
        f if affiliation_samples.iter().any(|a| a == f) => run::<Affiliation>(path, WriteSample),
        "work-full-3.0.json"
        | "work-51-contributors-3.0.json"
        | "work-with-NISO-roles-51-contributors-3.0.json" => run::<Work>(path, WriteSample),
        "bulk-work-3.0.json" | "bulk-works-3-works-3.0.json" | "bulk-works-100-works-3.0.json" => {
            run::<BulkWorks>(path, WriteSample)
        }
        "funding-3.0-simple.json" | "funding-3.0-with-NISO-roles.json" => {
            run::<Funding>(path, WriteSample)
        }
        "peer-review-simple-3.0.json"
        | "peer-review-full-3.0.json"
        | "peer-review-full-3.0-award-subject-type.json"
        | "peer-review-full-3.0-research-resource.json" => run::<PeerReview>(path, WriteSample),
        "peer-review-group-id.json" => run::<GroupIdRecord>(path, WriteSample),
        "research-resource-3.0.json" => run::<ResearchResource>(path, WriteSample),
        "address-3.0.json" => run::<Address>(path, WriteSample),
        "keywords-3.0.json" => run::<Keyword>(path, WriteSample),
        "other-names-3.0.json" => run::<OtherName>(path, WriteSample),
        "researcher-url-3.0.json" | "researcher-url-no-name-3.0.json" => {
            run::<ResearcherUrl>(path, WriteSample)
        }
        "external-identifier-3.0.json" => run::<PersonExternalIdentifier>(path, WriteSample),
        _ => return None,
    })
}

/// Every `.json` file under `dir`, recursively, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(json_files(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn every_official_json_sample_parses_round_trips_and_keeps_every_field() {
    let root = orcid_model_dir();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in json_files(&root) {
        let relative = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        match check_sample(&relative, &path) {
            None => failures.push(format!(
                "{relative}: no type mapped to this sample; add it to check_sample"
            )),
            Some(Err(e)) => failures.push(format!("{relative}: {e}")),
            Some(Ok(())) => checked += 1,
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // 27 write samples and record-full at the time of writing; fewer means files vanished.
    assert!(checked >= 28, "only {checked} samples were checked");
}

/// The comparison itself must catch what it is meant to catch, or the test above proves
/// nothing.
#[test]
fn the_comparison_reports_dropped_changed_and_unwrapped_fields() {
    let original = serde_json::json!({
        "a": {"value": "x"}, "b": "kept", "c": null, "d": [1, 2], "e": "5", "f": "bare"
    });
    let written = serde_json::json!({
        "a": "x", "d": [1], "e": 5, "f": {"value": "bare"}, "g": true
    });
    let mut response = Vec::new();
    compare(&original, &written, "$", Fidelity::Response, &mut response);
    let mut write = Vec::new();
    compare(&original, &written, "$", Fidelity::WriteSample, &mut write);

    // Unwrapping a wrapped value is never canonical; a dropped key, a shorter list and an
    // added key are always differences.
    for diffs in [&response, &write] {
        assert!(diffs.iter().any(|d| d.starts_with("$.a:")), "{diffs:?}");
        assert!(diffs.iter().any(|d| d.starts_with("$.b:")), "{diffs:?}");
        assert!(diffs.iter().any(|d| d.starts_with("$.d:")), "{diffs:?}");
        assert!(diffs.iter().any(|d| d.starts_with("$.g:")), "{diffs:?}");
        assert!(
            !diffs.iter().any(|d| d.starts_with("$.c")),
            "null == absent: {diffs:?}"
        );
    }
    // Wrapping a bare value and number-vs-string are tolerated for write samples only.
    assert!(
        response.iter().any(|d| d.starts_with("$.e:")),
        "{response:?}"
    );
    assert!(
        response.iter().any(|d| d.starts_with("$.f:")),
        "{response:?}"
    );
    assert!(
        !write
            .iter()
            .any(|d| d.starts_with("$.e") || d.starts_with("$.f")),
        "{write:?}"
    );
}
