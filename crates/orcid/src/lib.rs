#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod client;
pub mod error;
pub mod id;
pub mod model;

pub use client::OrcidClient;
pub use error::{Error, OAuthErrorKind};
pub use id::{OrcidId, OrcidIdError, Registry, UncheckedOrcidId};
