//! Typed, layered configuration: defaults → TOML file → environment → validation.
//!
//! A service keeps its defaults in a TOML file compiled into the binary
//! (`include_str!("../config.default.toml")`), describes its settings as serde structs with
//! secrets as [`secrecy::SecretString`], and implements [`Validate`] for the rules serde
//! cannot express. Loading merges, in increasing precedence:
//!
//! 1. the embedded defaults,
//! 2. an optional TOML file (`--config /etc/idbridge/idbridge.toml`),
//! 3. environment variables `IDBRIDGE__SECTION__KEY` (`IDBRIDGE__VAULT__PORT=8081` sets
//!    `vault.port`; names are case-insensitive, `__` separates levels; values are read as
//!    TOML-like literals, so `8081` is a number, `true` a boolean and `["a","b"]` a list),
//! 4. explicit overrides ([`Sources::set`], for tests and command-line flags),
//!
//! then deserializes and validates. Every failure is a [`ConfigError`] listing each
//! offending key, where its value came from and how to fix it. Error messages never quote a
//! configured value, because the value may be a secret typed into the wrong key.
//!
//! ```
//! use idbridge_platform::config::{Problems, Sources, Validate};
//!
//! #[derive(serde::Deserialize)]
//! struct Settings { server: Server }
//! #[derive(serde::Deserialize)]
//! struct Server { host: String, port: u16 }
//!
//! impl Validate for Settings {
//!     fn validate(&self, problems: &mut Problems) {
//!         if self.server.host.is_empty() {
//!             problems.add("server.host", "is empty", "set it to the address to listen on");
//!         }
//!     }
//! }
//!
//! let settings: Settings = Sources::new("[server]\nhost = \"127.0.0.1\"\nport = 8080\n")
//!     .env([("IDBRIDGE__SERVER__PORT", "9090")])
//!     .load()
//!     .unwrap();
//! assert_eq!(settings.server.port, 9090);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Prefix of the environment variables read ([`Sources::process_env`]).
pub const ENV_PREFIX: &str = "IDBRIDGE__";
/// Separator between levels in an environment variable name.
pub const ENV_SEPARATOR: &str = "__";

/// The environment variable that sets `key` (`vault.port` → `IDBRIDGE__VAULT__PORT`).
pub fn env_var_name(key: &str) -> String {
    let mut name = String::from(ENV_PREFIX);
    name.push_str(&key.replace('.', ENV_SEPARATOR).to_ascii_uppercase());
    name
}

/// Rules a loaded configuration must satisfy beyond its types.
pub trait Validate {
    /// Adds one [`Problem`] per broken rule (all of them, not just the first).
    fn validate(&self, problems: &mut Problems);
}

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The key, dotted (`vault.callers.writer.token_sha256`).
    pub key: String,
    /// What is wrong, without quoting the value.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
    /// Where the value came from (a file, an environment variable), when known.
    pub origin: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)?;
        if let Some(origin) = &self.origin {
            write!(f, " (from {origin})")?;
        }
        write!(f, "; {}", self.fix)
    }
}

/// The problems found by [`Validate::validate`].
#[derive(Clone, Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Records that `key` is wrong: `problem` says how (never quote a value that may be
    /// secret), `fix` what to do.
    pub fn add(
        &mut self,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Problem {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
            origin: None,
        });
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems found so far.
    pub fn as_slice(&self) -> &[Problem] {
        &self.0
    }

    /// `Ok` when empty, otherwise [`ConfigError::Invalid`].
    pub fn into_result(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(self.0))
        }
    }
}

/// Loading the configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A configuration file was named but does not exist.
    #[error(
        "configuration file {} does not exist; create it, or start without naming a file to use the defaults and the environment",
        path.display()
    )]
    FileMissing {
        /// The path given.
        path: PathBuf,
    },
    /// Values are missing, of the wrong type, or break a rule.
    #[error("invalid configuration:\n{}", render(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems, for [`ConfigError::Invalid`].
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            ConfigError::FileMissing { .. } => &[],
        }
    }
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where configuration comes from, in increasing precedence: defaults, file, environment,
/// overrides. Build it, then [`load`](Self::load) a typed configuration from it.
#[derive(Clone)]
pub struct Sources {
    defaults: Cow<'static, str>,
    file: Option<PathBuf>,
    env: Vec<(String, String)>,
    overrides: Vec<(String, Value)>,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: values may be secrets.
        f.debug_struct("Sources")
            .field("file", &self.file)
            .field(
                "env",
                &self.env.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .field(
                "overrides",
                &self
                    .overrides
                    .iter()
                    .map(|(key, _)| key)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Sources {
    /// Starts from `defaults`, a TOML document (usually `include_str!`'d).
    pub fn new(defaults: impl Into<Cow<'static, str>>) -> Self {
        Self {
            defaults: defaults.into(),
            file: None,
            env: Vec::new(),
            overrides: Vec::new(),
        }
    }

    /// Adds a TOML file over the defaults; it must exist when [`load`](Self::load) runs.
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.file = Some(path.as_ref().to_path_buf());
        self
    }

    /// Adds a TOML file when `path` is `Some`.
    pub fn file_opt(self, path: Option<impl AsRef<Path>>) -> Self {
        match path {
            Some(path) => self.file(path),
            None => self,
        }
    }

    /// Adds the process's `IDBRIDGE__…` environment variables over the file.
    pub fn process_env(self) -> Self {
        self.env(std::env::vars())
    }

    /// Adds these variables as if they were the environment (only names starting with
    /// [`ENV_PREFIX`], case-insensitively, are read). Tests use this instead of mutating the
    /// process environment.
    pub fn env<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Sets `key` (dotted) to `value` over everything else.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when `value` does not serialize.
    pub fn set(mut self, key: &str, value: impl Serialize) -> Result<Self, ConfigError> {
        let value = Value::serialize(value).map_err(|e| {
            ConfigError::Invalid(vec![Problem {
                key: key.to_owned(),
                problem: format!("the override cannot be represented ({})", e.kind),
                fix: "pass a string, number, boolean, list or table".to_owned(),
                origin: Some("an override".to_owned()),
            }])
        })?;
        self.overrides.push((key.to_owned(), value));
        Ok(self)
    }

    /// Merges the sources, deserializes `T` and validates it.
    ///
    /// # Errors
    /// [`ConfigError::FileMissing`] for a named file that does not exist;
    /// [`ConfigError::Invalid`] listing every key that is missing, mistyped or breaks a
    /// [`Validate`] rule.
    pub fn load<T: DeserializeOwned + Validate>(&self) -> Result<T, ConfigError> {
        let mut figment = Figment::from(Toml::string(&self.defaults));
        if let Some(path) = &self.file {
            if !path.is_file() {
                return Err(ConfigError::FileMissing { path: path.clone() });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(EnvVars {
            vars: self.env.clone(),
        });
        for (key, value) in &self.overrides {
            figment = figment.merge(Serialized::default(key, value.clone()));
        }
        let config: T = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(problems_from(e)))?;
        let mut problems = Problems::default();
        config.validate(&mut problems);
        problems.into_result()?;
        Ok(config)
    }
}

/// `IDBRIDGE__…` variables as a figment provider, read from a snapshot rather than the live
/// environment.
struct EnvVars {
    vars: Vec<(String, String)>,
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable")
            .interpolater(|_: &Profile, keys: &[&str]| env_var_name(&keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (name, text) in &self.vars {
            let name = name.trim();
            let Some(head) = name.get(..ENV_PREFIX.len()) else {
                continue;
            };
            if !head.eq_ignore_ascii_case(ENV_PREFIX) {
                continue;
            }
            let path: Vec<String> = name[ENV_PREFIX.len()..]
                .split(ENV_SEPARATOR)
                .map(str::to_ascii_lowercase)
                .collect();
            if path
                .iter()
                .any(|part| part.is_empty() || part.contains('.'))
            {
                continue;
            }
            let value: Value = match text.parse() {
                Ok(value) => value,
                Err(never) => match never {},
            };
            insert(&mut root, &path, value);
        }
        Ok(Profile::Default.collect(root))
    }
}

/// Sets `path` in `dict`, creating tables on the way; a later variable replaces an earlier
/// scalar at the same place.
fn insert(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if entry.as_dict().is_none() {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

fn problems_from(error: figment::Error) -> Vec<Problem> {
    error.into_iter().map(problem_from).collect()
}

fn problem_from(error: figment::Error) -> Problem {
    let mut path = error.path.clone();
    if let Kind::MissingField(field) = &error.kind
        && path.last().map(String::as_str) != Some(field.as_ref())
    {
        path.push(field.to_string());
    }
    let key = if path.is_empty() {
        "(top level)".to_owned()
    } else {
        path.join(".")
    };
    let origin = match (&error.metadata, &error.profile) {
        (Some(md), Some(profile)) if !error.path.is_empty() => {
            let source = md
                .source
                .as_ref()
                .map(|s| format!(" {s}"))
                .unwrap_or_default();
            let name = md.interpolate(profile, &error.path);
            Some(format!("{}{source} `{name}`", md.name))
        }
        (Some(md), _) => Some(md.name.to_string()),
        _ => None,
    };
    let env = env_var_name(&key);
    let (problem, fix) = match &error.kind {
        Kind::MissingField(_) => (
            "is required but not set".to_owned(),
            format!("set `{key}` in the configuration file or the environment variable {env}"),
        ),
        Kind::InvalidType(actual, expected) => (
            format!("expected {expected}, found {}", kind_of(actual)),
            format!("set `{key}` to {expected}"),
        ),
        Kind::InvalidValue(actual, expected) => (
            format!("expected {expected}, found {}", kind_of(actual)),
            format!("set `{key}` to {expected}"),
        ),
        Kind::InvalidLength(len, expected) => (
            format!("has {len} elements, expected {expected}"),
            format!("give `{key}` {expected}"),
        ),
        Kind::UnknownVariant(_, expected) => (
            "is not one of the accepted values".to_owned(),
            format!("use one of: {}", expected.join(", ")),
        ),
        Kind::UnknownField(field, expected) => (
            format!("unknown key `{field}`"),
            if expected.is_empty() {
                "remove it".to_owned()
            } else {
                format!(
                    "remove it or fix its spelling; known keys: {}",
                    expected.join(", ")
                )
            },
        ),
        Kind::DuplicateField(field) => (
            format!("`{field}` appears twice"),
            "keep one of them".to_owned(),
        ),
        // Parser messages (e.g. TOML syntax) quote the offending line below their first line;
        // that line may hold a secret, so only the first line is kept.
        Kind::Message(message) => (
            message.lines().next().unwrap_or("invalid").to_owned(),
            "correct the value or the file's syntax".to_owned(),
        ),
        other => (
            "has a value that cannot be used".to_owned(),
            format!("check `{key}` ({})", kind_name(other)),
        ),
    };
    Problem {
        key,
        problem,
        fix,
        origin,
    }
}

/// The kind of a value, never the value: a mistyped secret must not end up in an error.
fn kind_of(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) => "a character",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit => "nothing",
        Actual::Option => "an option",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        _ => "another kind of value",
    }
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "number out of range",
        Kind::Unsupported(_) => "unsupported kind of value",
        Kind::UnsupportedKey(..) => "unsupported kind of key",
        _ => "invalid value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        assert_eq!(env_var_name("vault.port"), "IDBRIDGE__VAULT__PORT");
        assert_eq!(
            env_var_name("vault.callers.writer.rights"),
            "IDBRIDGE__VAULT__CALLERS__WRITER__RIGHTS"
        );
    }
}
