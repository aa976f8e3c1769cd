//! The message and the transports: `.eml` files in a directory, or SMTP (rustls on
//! aws-lc-rs; `smtps://` or STARTTLS with `?tls=required`).

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::{
    Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use secrecy::ExposeSecret;

use crate::config::{InvitationsConfig, TransportKind};
use crate::error::InvitationError;

/// Which message of the schedule is going out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The first e-mail (or a resend).
    Invitation,
    /// A scheduled reminder.
    Reminder,
}

/// A send that failed.
pub(crate) struct SendError {
    /// What the transport said.
    pub(crate) reason: String,
    /// Retrying will not help (the server refused with a 5xx, the message cannot be built).
    pub(crate) permanent: bool,
}

/// What a message is built from.
pub(crate) struct Letter<'a> {
    pub(crate) email: &'a str,
    pub(crate) display_name: &'a str,
    pub(crate) link: &'a str,
    pub(crate) kind: Kind,
}

enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Builds and sends invitation e-mails.
pub(crate) struct Mailer {
    transport: Transport,
    from: Mailbox,
    institution: String,
    subject: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SMTP transport holds credentials: name the kind only.
        let kind = match self.transport {
            Transport::File(_) => "file",
            Transport::Smtp(_) => "smtp",
        };
        f.debug_struct("Mailer")
            .field("transport", &kind)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The transport of `config` (the file transport's directory is created).
    pub(crate) fn new(config: &InvitationsConfig) -> Result<Self, InvitationError> {
        let from: Mailbox =
            config.from.trim().parse().map_err(|_| {
                InvitationError::Config("invitations.from is not an e-mail address")
            })?;
        let transport = match config.transport {
            TransportKind::File => {
                std::fs::create_dir_all(&config.file_dir).map_err(|source| {
                    InvitationError::MailDirectory {
                        path: config.file_dir.clone(),
                        source,
                    }
                })?;
                Transport::File(AsyncFileTransport::<Tokio1Executor>::new(&config.file_dir))
            }
            TransportKind::Smtp => {
                let url = config.smtp_url.as_ref().ok_or(InvitationError::Config(
                    "invitations.smtp_url is missing while transport is \"smtp\"",
                ))?;
                // The error would describe the URL, which may hold a password: not kept.
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|_| {
                    InvitationError::Config(
                        "invitations.smtp_url is not a usable smtp:// or smtps:// URL",
                    )
                })?;
                Transport::Smtp(
                    builder
                        .timeout(Some(Duration::from_secs(config.smtp_timeout_secs)))
                        .build(),
                )
            }
        };
        Ok(Self {
            transport,
            from,
            institution: config.institution_name.trim().to_owned(),
            subject: config.subject_line(),
        })
    }

    /// Builds the message for `letter` and sends it.
    pub(crate) async fn send(&self, letter: &Letter<'_>) -> Result<(), SendError> {
        let message = self.message(letter).map_err(|reason| SendError {
            reason,
            permanent: true,
        })?;
        match &self.transport {
            Transport::File(t) => t.send(message).await.map(drop).map_err(|e| SendError {
                reason: e.to_string(),
                permanent: false,
            }),
            Transport::Smtp(t) => t.send(message).await.map(drop).map_err(|e| SendError {
                reason: e.to_string(),
                // A 5xx answer (unknown mailbox, refused sender) will not change by itself.
                permanent: e.is_permanent(),
            }),
        }
    }

    fn message(&self, letter: &Letter<'_>) -> Result<Message, String> {
        let address: Address = letter
            .email
            .trim()
            .parse()
            .map_err(|e| format!("the address is not valid ({e}); correct it and resend"))?;
        let name = letter.display_name.trim();
        let to = Mailbox::new((!name.is_empty()).then(|| name.to_owned()), address);
        let subject = match letter.kind {
            Kind::Invitation => self.subject.clone(),
            Kind::Reminder => format!("Reminder: {}", self.subject),
        };
        let text = self.text(letter);
        // Short ASCII lines go out as 7bit, the link readable as is; otherwise lettre picks
        // quoted-printable or base64, which every client decodes.
        let body = Body::new(text);
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(body),
            )
            .map_err(|e| format!("the message could not be built ({e})"))
    }

    fn text(&self, letter: &Letter<'_>) -> String {
        let institution = &self.institution;
        let greeting = match letter.display_name.trim() {
            "" => "Hello,".to_owned(),
            name => format!("Dear {name},"),
        };
        let opening = match letter.kind {
            Kind::Invitation => format!(
                "{institution} invites you to connect your ORCID iD with your institutional account."
            ),
            Kind::Reminder => format!(
                "This is a reminder: {institution} invited you to connect your ORCID iD with your institutional account, and you have not done so yet."
            ),
        };
        let paragraphs = [
            greeting,
            opening,
            format!(
                "ORCID gives every researcher a free, persistent identifier (an ORCID iD) and a \
                 record they own and control. When you connect yours, {institution} adds your \
                 affiliation (your position here, with its dates) to your ORCID record and \
                 keeps it up to date, so you do not have to type it yourself, and your work is \
                 correctly attributed to you wherever you publish or apply for funding."
            ),
            format!(
                "You decide: ORCID asks you which permissions to grant, you can revoke them at \
                 any time in your ORCID account settings, and the items {institution} adds are \
                 marked as coming from {institution}."
            ),
            "To connect, sign in with your institutional account here:".to_owned(),
        ];
        let closing = [
            "The link only starts the process: you sign in as usual, and nothing happens \
             without you. If you already have an ORCID iD, ORCID asks you to sign in; if not, \
             you can create one in a minute."
                .to_owned(),
            format!("Thank you,\n{institution}"),
        ];
        let mut text = paragraphs
            .iter()
            .map(|p| wrap(p))
            .collect::<Vec<_>>()
            .join("\n\n");
        // The link on a line of its own, never wrapped.
        text.push_str("\n\n");
        text.push_str(letter.link);
        text.push_str("\n\n");
        text.push_str(
            &closing
                .iter()
                .map(|p| wrap(p))
                .collect::<Vec<_>>()
                .join("\n\n"),
        );
        text.push('\n');
        text
    }
}

/// Greedy word wrap at 72 columns, keeping existing line breaks.
fn wrap(paragraph: &str) -> String {
    const WIDTH: usize = 72;
    paragraph
        .lines()
        .map(|line| {
            let mut out = String::new();
            let mut width = 0;
            for word in line.split_whitespace() {
                let len = word.chars().count();
                if width > 0 && width + 1 + len > WIDTH {
                    out.push('\n');
                    width = 0;
                } else if width > 0 {
                    out.push(' ');
                    width += 1;
                }
                out.push_str(word);
                width += len;
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_keeps_lines_short_and_words_whole() {
        let text = "word ".repeat(40);
        let wrapped = wrap(&text);
        assert!(wrapped.lines().all(|l| l.len() <= 72), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().count(), 40);
        assert_eq!(wrap("Thank you,\nBoston"), "Thank you,\nBoston");
    }
}
