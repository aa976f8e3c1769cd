//! The `idbridge` and `orcid-sim` executables: built once per process with
//! `cargo build -p idbridge -p orcid-sim --bins [--release]`, their paths read from cargo's
//! JSON messages (so `CARGO_TARGET_DIR` and `build.target-dir` are respected).
//!
//! Executables already in the target directory that are newer than every source file of
//! the workspace (`crates/`, `services/`, `proto/`, `Cargo.toml`, `Cargo.lock`) are used
//! without calling cargo: a workspace test run (`cargo nextest run --workspace`) has just
//! built them, with the test run's feature set, and rebuilding them with the narrower set
//! of `-p idbridge -p orcid-sim` would recompile most of the workspace a second time.
//! `IDBRIDGE_E2E_BUILD=always` calls cargo anyway.
//!
//! `IDBRIDGE_E2E_BIN_DIR=/path/to/dir` skips all of that and uses `dir/idbridge` and
//! `dir/orcid-sim` as they are.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

use anyhow::{Context, bail};

/// Which cargo profile the executables are built with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// `cargo build` (the tests).
    #[default]
    Debug,
    /// `cargo build --release` (the benchmark).
    Release,
}

/// Paths of the built executables.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// `idbridge`.
    pub idbridge: PathBuf,
    /// `orcid-sim`.
    pub orcid_sim: PathBuf,
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

/// The cargo target directory: `CARGO_TARGET_DIR` (relative to the workspace root when
/// relative), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

static DEBUG: OnceLock<Result<Binaries, String>> = OnceLock::new();
static RELEASE: OnceLock<Result<Binaries, String>> = OnceLock::new();

/// The executables for `profile`, built on the first call in this process.
///
/// # Errors
/// The build failed (cargo's diagnostics went to stderr) or an executable is missing.
pub fn binaries(profile: Profile) -> anyhow::Result<Binaries> {
    let cell = match profile {
        Profile::Debug => &DEBUG,
        Profile::Release => &RELEASE,
    };
    cell.get_or_init(|| locate(profile).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn locate(profile: Profile) -> anyhow::Result<Binaries> {
    if let Some(dir) = std::env::var_os("IDBRIDGE_E2E_BIN_DIR") {
        let dir = PathBuf::from(dir);
        let found = Binaries {
            idbridge: dir.join("idbridge"),
            orcid_sim: dir.join("orcid-sim"),
        };
        for path in [&found.idbridge, &found.orcid_sim] {
            if !path.is_file() {
                bail!(
                    "IDBRIDGE_E2E_BIN_DIR is set but {} does not exist",
                    path.display()
                );
            }
        }
        return Ok(found);
    }
    let always = std::env::var("IDBRIDGE_E2E_BUILD").is_ok_and(|v| v == "always");
    if !always && let Some(fresh) = fresh_in_target(profile) {
        return Ok(fresh);
    }
    build(profile)
}

/// The newest modification time of the workspace's sources (`None`: none found).
fn newest_source() -> Option<SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                walk(&path, newest);
            } else if let Ok(modified) = meta.modified() {
                *newest = Some(newest.map_or(modified, |n| n.max(modified)));
            }
        }
    }
    let root = workspace_root();
    let mut newest = None;
    for dir in ["crates", "services", "proto"] {
        walk(&root.join(dir), &mut newest);
    }
    for file in ["Cargo.toml", "Cargo.lock"] {
        if let Ok(modified) = std::fs::metadata(root.join(file)).and_then(|m| m.modified()) {
            newest = Some(newest.map_or(modified, |n: SystemTime| n.max(modified)));
        }
    }
    newest
}

/// The executables in `<target>/<profile>/` when both are newer than every source.
fn fresh_in_target(profile: Profile) -> Option<Binaries> {
    let dir = target_dir().join(match profile {
        Profile::Debug => "debug",
        Profile::Release => "release",
    });
    let found = Binaries {
        idbridge: dir.join("idbridge"),
        orcid_sim: dir.join("orcid-sim"),
    };
    let newest = newest_source()?;
    let built = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let fresh = [&found.idbridge, &found.orcid_sim]
        .iter()
        .all(|path| built(path).is_some_and(|at| at > newest));
    fresh.then_some(found)
}

fn build(profile: Profile) -> anyhow::Result<Binaries> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args([
            "build",
            "-p",
            "idbridge",
            "-p",
            "orcid-sim",
            "--bins",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if profile == Profile::Release {
        command.arg("--release");
    }
    let output = command
        .output()
        .context("running `cargo build -p idbridge -p orcid-sim --bins`")?;
    if !output.status.success() {
        bail!(
            "`cargo build -p idbridge -p orcid-sim --bins` failed ({}); its diagnostics are above",
            output.status
        );
    }
    let mut idbridge = None;
    let mut orcid_sim = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(executable) = message["executable"].as_str() else {
            continue;
        };
        match message["target"]["name"].as_str() {
            Some("idbridge") => idbridge = Some(PathBuf::from(executable)),
            Some("orcid-sim") => orcid_sim = Some(PathBuf::from(executable)),
            _ => {}
        }
    }
    match (idbridge, orcid_sim) {
        (Some(idbridge), Some(orcid_sim)) => Ok(Binaries {
            idbridge,
            orcid_sim,
        }),
        _ => bail!(
            "cargo built the packages but did not name the idbridge and orcid-sim executables"
        ),
    }
}
