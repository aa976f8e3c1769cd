//! What can go wrong, each with what to do about it.

use std::path::PathBuf;

use sea_orm::DbErr;

/// An invitations operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    /// The database refused or is unreachable.
    #[error(
        "invitations database error: {0}; check the database connection and that invitations::migrate ran"
    )]
    Database(#[from] DbErr),
    /// The configuration cannot be used (validation normally reports this at load).
    #[error("{0}; fix the [invitations] configuration section")]
    Config(&'static str),
    /// The file transport's directory cannot be created.
    #[error(
        "cannot create the mail directory {} ({source}); set invitations.file_dir to a writable directory",
        path.display()
    )]
    MailDirectory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A caller passed something unusable (an empty person id, an invalid address).
    #[error("invalid invitation input: {0}")]
    InvalidInput(String),
    /// Nobody with this person id was ever invited.
    #[error("no invitation for person {person_id}; invite them first")]
    UnknownPerson {
        /// The person id asked about.
        person_id: String,
    },
    /// The person already connected their ORCID iD: there is nothing to invite them to.
    #[error("person {person_id} has already connected their ORCID iD; no invitation is needed")]
    AlreadyConnected {
        /// The person id.
        person_id: String,
    },
    /// Another replica is sending this person's e-mail at this moment.
    #[error("an e-mail to person {person_id} is being sent right now; try again in a minute")]
    Busy {
        /// The person id.
        person_id: String,
    },
    /// The e-mail could not be sent; the invitation is recorded as failed and the scheduler
    /// tries again after `retry_after`.
    #[error(
        "the invitation e-mail to person {person_id} could not be sent ({reason}); it is recorded as failed and will be retried"
    )]
    SendFailed {
        /// The person id.
        person_id: String,
        /// What the transport said.
        reason: String,
    },
}
