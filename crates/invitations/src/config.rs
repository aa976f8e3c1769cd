//! The `[invitations]` configuration section: how mail leaves (a directory of `.eml` files
//! or an SMTP server), what the message says and links to, and the reminder schedule.
//!
//! [`DEFAULTS`] holds the embedded defaults of the section (file transport); a service that
//! embeds invitations appends them to its own defaults and adds an `invitations` field of
//! type [`InvitationsConfig`] to its configuration, calling [`Validate::validate`] on it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use idbridge_platform::config::{ConfigError, Problems, Sources, Validate};
use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The embedded defaults of the `[invitations]` section (a TOML document).
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// How messages leave.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// One `.eml` file per message in `file_dir` (development, demos, embedded mode).
    File,
    /// Through the SMTP server of `smtp_url`.
    Smtp,
}

/// `[invitations]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationsConfig {
    /// `transport`: `"file"` or `"smtp"`.
    pub transport: TransportKind,
    /// `file_dir`: where the file transport writes `<uuid>.eml` files (created if missing).
    pub file_dir: PathBuf,
    /// `smtp_url`: `smtps://user:password@host:465` (TLS from the first byte) or
    /// `smtp://user:password@host:587?tls=required` (STARTTLS). Secret: it may hold
    /// credentials; it is never logged nor quoted in errors.
    #[serde(default)]
    pub smtp_url: Option<SecretString>,
    /// `smtp_timeout_secs`: the longest an SMTP conversation may take.
    pub smtp_timeout_secs: u64,
    /// `from`: the sender, `Name <address>` or a bare address.
    pub from: String,
    /// `portal_url`: the portal's public base URL.
    pub portal_url: String,
    /// `institution_name`: who invites, as people know it.
    pub institution_name: String,
    /// `subject`: the subject line; `{institution}` is replaced by `institution_name`.
    pub subject: String,
    /// `reminder_after`: when reminders go out, measured from the first e-mail (or the last
    /// resend), as durations with a unit (`"7d"`, `"36h"`, `"90s"`, `"250ms"`), strictly
    /// increasing. Empty: no reminders.
    pub reminder_after: Vec<String>,
    /// `tick`: how often the scheduler looks for due e-mails (`"30s"`).
    pub tick: String,
    /// `retry_after`: how long after a failed send it is tried again (`"5m"`).
    pub retry_after: String,
    /// `batch_size`: e-mails sent per scheduler round at most.
    pub batch_size: u32,
}

impl fmt::Debug for InvitationsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvitationsConfig")
            .field("transport", &self.transport)
            .field("file_dir", &self.file_dir)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "[REDACTED]"))
            .field("smtp_timeout_secs", &self.smtp_timeout_secs)
            .field("from", &self.from)
            .field("portal_url", &self.portal_url)
            .field("institution_name", &self.institution_name)
            .field("subject", &self.subject)
            .field("reminder_after", &self.reminder_after)
            .field("tick", &self.tick)
            .field("retry_after", &self.retry_after)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// The section alone, for [`InvitationsConfig::from_sources`].
#[derive(Deserialize)]
struct Section {
    invitations: InvitationsConfig,
}

impl Validate for Section {
    fn validate(&self, problems: &mut Problems) {
        self.invitations.validate(problems);
    }
}

impl InvitationsConfig {
    /// Loads the `[invitations]` section from `sources` (start them from [`DEFAULTS`]),
    /// ignoring other sections.
    ///
    /// # Errors
    /// Every problem found, each with its key and fix.
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        sources.load::<Section>().map(|s| s.invitations)
    }

    /// The embedded defaults, validated (file transport).
    ///
    /// # Errors
    /// Never with the shipped defaults.
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::from_sources(&Sources::new(DEFAULTS))
    }

    /// The reminder schedule, parsed.
    ///
    /// # Errors
    /// A value that is not a duration (validation reports it at load).
    pub fn reminder_schedule(&self) -> Result<Vec<Duration>, DurationError> {
        self.reminder_after
            .iter()
            .map(|s| parse_duration(s))
            .collect()
    }

    /// The scheduler's tick, parsed.
    ///
    /// # Errors
    /// As [`InvitationsConfig::reminder_schedule`].
    pub fn tick_interval(&self) -> Result<Duration, DurationError> {
        parse_duration(&self.tick)
    }

    /// The delay before a failed send is tried again, parsed.
    ///
    /// # Errors
    /// As [`InvitationsConfig::reminder_schedule`].
    pub fn retry_delay(&self) -> Result<Duration, DurationError> {
        parse_duration(&self.retry_after)
    }

    /// The subject with `{institution}` filled in.
    pub fn subject_line(&self) -> String {
        self.subject
            .replace("{institution}", self.institution_name.trim())
    }
}

const SMTP_URL_FIX: &str = "set it to smtps://user:password@host:465 (TLS) or smtp://user:password@host:587?tls=required (STARTTLS), e.g. through IDBRIDGE__INVITATIONS__SMTP_URL";

impl Validate for InvitationsConfig {
    fn validate(&self, problems: &mut Problems) {
        match self.transport {
            TransportKind::File => {
                if self.file_dir.as_os_str().is_empty() {
                    problems.add(
                        "invitations.file_dir",
                        "is empty while transport is \"file\"",
                        "set it to a writable directory, or use transport = \"smtp\"",
                    );
                }
            }
            TransportKind::Smtp => match &self.smtp_url {
                None => problems.add(
                    "invitations.smtp_url",
                    "is missing while transport is \"smtp\"",
                    SMTP_URL_FIX,
                ),
                Some(url) => {
                    // Never quote the value: it may hold a password.
                    match url::Url::parse(url.expose_secret()) {
                        Ok(u) if matches!(u.scheme(), "smtp" | "smtps") => {
                            let plaintext = u.scheme() == "smtp"
                                && !u.query_pairs().any(|(k, v)| k == "tls" && v == "required");
                            if plaintext && u.password().is_some() {
                                problems.add(
                                    "invitations.smtp_url",
                                    "would send the SMTP password unencrypted",
                                    "use smtps://…:465, or add ?tls=required to an smtp:// URL",
                                );
                            }
                        }
                        _ => problems.add(
                            "invitations.smtp_url",
                            "is not an smtp:// or smtps:// URL",
                            SMTP_URL_FIX,
                        ),
                    }
                }
            },
        }
        if self.smtp_timeout_secs == 0 {
            problems.add(
                "invitations.smtp_timeout_secs",
                "is 0",
                "use a few seconds (30 by default)",
            );
        }
        if self.from.trim().parse::<Mailbox>().is_err() {
            problems.add(
                "invitations.from",
                "is not an e-mail address",
                "use \"Name <address@example.org>\" or a bare address",
            );
        }
        let portal_ok = url::Url::parse(self.portal_url.trim())
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .unwrap_or(false);
        if !portal_ok {
            problems.add(
                "invitations.portal_url",
                "is not an http(s) URL",
                "set it to the portal's public base URL, e.g. https://orcid.example.edu",
            );
        }
        if self.institution_name.trim().is_empty() {
            problems.add(
                "invitations.institution_name",
                "is empty",
                "set it to the institution's name as people know it",
            );
        }
        if self.subject.trim().is_empty() {
            problems.add(
                "invitations.subject",
                "is empty",
                "set a subject line; {institution} is replaced by institution_name",
            );
        }
        match self.reminder_schedule() {
            Err(e) => problems.add("invitations.reminder_after", e.to_string(), DURATION_FIX),
            Ok(schedule) => {
                if schedule.iter().any(Duration::is_zero)
                    || schedule.windows(2).any(|w| w[0] >= w[1])
                {
                    problems.add(
                        "invitations.reminder_after",
                        "is not strictly increasing and positive",
                        "list increasing durations, e.g. [\"7d\", \"14d\"], or [] for no reminders",
                    );
                }
            }
        }
        match self.tick_interval() {
            Err(e) => problems.add("invitations.tick", e.to_string(), DURATION_FIX),
            Ok(d) if d.is_zero() => {
                problems.add("invitations.tick", "is zero", "use e.g. \"30s\"");
            }
            Ok(_) => {}
        }
        if let Err(e) = self.retry_delay() {
            problems.add("invitations.retry_after", e.to_string(), DURATION_FIX);
        }
        if self.batch_size == 0 {
            problems.add(
                "invitations.batch_size",
                "is 0",
                "use at least 1 (50 by default)",
            );
        }
    }
}

const DURATION_FIX: &str = "write a number and a unit: ms, s, m, h or d (\"7d\", \"90s\")";

/// A duration that does not parse.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a duration (a number followed by ms, s, m, h or d)")]
pub struct DurationError(pub String);

/// Parses `"250ms"`, `"90s"`, `"30m"`, `"12h"`, `"7d"` (whole numbers, one unit).
///
/// # Errors
/// Anything else.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    let err = || DurationError(s.to_owned());
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| err())?;
    let millis_per = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(err()),
    };
    n.checked_mul(millis_per)
        .map(Duration::from_millis)
        .ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
