//! The JSON Schemas of `proto/schemas/`, embedded, and validation against them.

use std::{collections::HashMap, sync::OnceLock};

use jsonschema::{Draft, Validator};
use serde_json::Value;

/// One schema file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schema {
    /// Message type (`hr-event`), or `envelope`.
    pub name: &'static str,
    /// Version.
    pub version: u32,
    /// File name in `proto/schemas/`.
    pub file: &'static str,
    /// The schema text.
    pub text: &'static str,
}

macro_rules! schema {
    ($name:literal, $version:literal) => {
        Schema {
            name: $name,
            version: $version,
            file: concat!($name, ".v", $version, ".schema.json"),
            text: include_str!(concat!(
                "../../../proto/schemas/",
                $name,
                ".v",
                $version,
                ".schema.json"
            )),
        }
    };
}

/// The envelope (the AMQP body around every payload).
pub const ENVELOPE: Schema = schema!("envelope", 1);

/// Every payload schema.
pub const PAYLOADS: &[Schema] = &[
    schema!("id-connected", 1),
    schema!("connection-ready", 1),
    schema!("connection-lost", 1),
    schema!("hr-event", 1),
    schema!("work-event", 1),
    schema!("item-written", 1),
    schema!("item-failed", 1),
    schema!("record-changed", 1),
    schema!("record-updated", 1),
];

/// Why a document is not valid.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// No schema for this type and version.
    #[error("no schema for {0}@{1}")]
    Unknown(String, u32),
    /// The schema file itself does not parse or compile (a bug in `proto/`).
    #[error("schema {file} is broken: {reason}")]
    Broken {
        /// File name.
        file: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The document breaks the schema; one line per violation (`/path: message`).
    #[error("invalid {schema}: {}", .errors.join("; "))]
    Invalid {
        /// Schema file.
        schema: &'static str,
        /// Violations.
        errors: Vec<String>,
    },
}

type Compiled = HashMap<(&'static str, u32), Result<Validator, String>>;

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        PAYLOADS
            .iter()
            .chain(std::iter::once(&ENVELOPE))
            .map(|s| ((s.name, s.version), compile(s)))
            .collect()
    })
}

fn compile(schema: &Schema) -> Result<Validator, String> {
    let value: Value = serde_json::from_str(schema.text).map_err(|e| e.to_string())?;
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&value)
        .map_err(|e| e.to_string())
}

/// The schema of `name` at `version` (`envelope` included).
#[must_use]
pub fn find(name: &str, version: u32) -> Option<&'static Schema> {
    PAYLOADS
        .iter()
        .chain(std::iter::once(&ENVELOPE))
        .find(|s| s.name == name && s.version == version)
}

/// Validates `document` against the schema of `name` at `version`.
///
/// # Errors
/// [`SchemaError`] saying what is wrong.
pub fn validate(name: &str, version: u32, document: &Value) -> Result<(), SchemaError> {
    let schema = find(name, version).ok_or_else(|| SchemaError::Unknown(name.into(), version))?;
    let validator = compiled()
        .get(&(schema.name, schema.version))
        .ok_or_else(|| SchemaError::Unknown(name.into(), version))?
        .as_ref()
        .map_err(|reason| SchemaError::Broken {
            file: schema.file,
            reason: reason.clone(),
        })?;
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Invalid {
            schema: schema.file,
            errors,
        })
    }
}

/// Validates an envelope and its payload (the payload against the schema its `type` and
/// `schema_version` name).
///
/// # Errors
/// [`SchemaError`] for the envelope or the payload.
pub fn validate_message(envelope: &Value) -> Result<(), SchemaError> {
    validate(ENVELOPE.name, ENVELOPE.version, envelope)?;
    let name = envelope
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = envelope
        .get("schema_version")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or_default();
    validate(
        name,
        version,
        envelope.get("payload").unwrap_or(&Value::Null),
    )
}
