//! Where ORCID's official model repository (samples and XSDs) is read from.
//!
//! By default `shared/reference/orcid-model` beside the workspace (CI provides `../shared`
//! next to the repository, and `scripts/test.sh` checks it is there); the environment
//! variable `ORCID_MODEL_DIR` points elsewhere.

use std::path::{Path, PathBuf};

/// The variable that overrides the default location.
pub const ORCID_MODEL_DIR: &str = "ORCID_MODEL_DIR";

/// The root of ORCID's model repository; panics, naming both the override and the default,
/// when it does not hold `record_3.0/samples`.
pub fn orcid_model_dir() -> PathBuf {
    let default =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/orcid-model");
    let from_env = std::env::var_os(ORCID_MODEL_DIR).filter(|v| !v.is_empty());
    let root = from_env
        .clone()
        .map(PathBuf::from)
        .unwrap_or_else(|| default.clone());
    assert!(
        root.join("record_3.0/samples").is_dir(),
        "ORCID's model samples are missing: no record_3.0/samples under {} ({}). Set {ORCID_MODEL_DIR} \
         to a checkout of https://github.com/ORCID/orcid-model, or provide it at the default \
         location {} (`../shared/reference/orcid-model` beside the repository).",
        root.display(),
        match from_env {
            Some(_) => format!("from {ORCID_MODEL_DIR}"),
            None => format!("{ORCID_MODEL_DIR} is not set, so the default"),
        },
        default.display(),
    );
    root
}

/// The text of one file of the model repository, by its path relative to the root.
pub fn read_sample(relative: &str) -> String {
    let path = orcid_model_dir().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read ORCID sample {}: {e}", path.display()))
}
