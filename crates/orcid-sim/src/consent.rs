//! The server-rendered HTML of the sign-in and consent page (no JavaScript, so plain form
//! posts work in any browser, headless Chromium included).

use std::fmt::Write as _;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// What a scope lets the client do, in the words of ORCID's consent screen.
pub fn scope_words(scope: &str) -> &'static str {
    match scope {
        "/authenticate" | "openid" => "Get your ORCID iD",
        "/read-limited" => "Read your information with visibility set to Trusted Organizations",
        "/activities/read-limited" => {
            "Read your research activities with visibility set to Trusted Organizations"
        }
        "/person/read-limited" => {
            "Read your personal information with visibility set to Trusted Organizations"
        }
        "/activities/update" => "Add/update your research activities (works, affiliations, etc)",
        "/person/update" => "Add/update other information about you (country, keywords, etc.)",
        _ => "Access your ORCID record",
    }
}

const STYLE: &str = "body{font-family:sans-serif;max-width:34em;margin:2em auto;color:#222}\
h1{font-size:1.4em}.ids{color:#555}ul{padding-left:1.2em}label{display:block;margin:.6em 0 .2em}\
input[type=text],input[type=password]{width:100%;padding:.4em}.error{color:#b00}\
.buttons{margin-top:1.2em}button{padding:.5em 1.2em;margin-right:.6em}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

/// The data of one rendering of the page.
#[derive(Debug, Clone)]
pub struct ConsentPage {
    /// The client's display name.
    pub client_name: String,
    /// Requested scopes (listed in words).
    pub scopes: Vec<String>,
    /// OAuth parameters carried through the form as hidden fields.
    pub hidden: Vec<(String, String)>,
    /// `(display name, iD URI)` when a session is signed in: no sign-in fields then.
    pub signed_in: Option<(String, String)>,
    /// Value for the sign-in box (`orcid` or `email` parameter).
    pub prefill_login: String,
    /// A message from a failed attempt.
    pub error: Option<String>,
}

impl ConsentPage {
    /// The whole HTML document.
    pub fn render(&self) -> String {
        let mut b = String::new();
        let _ = write!(
            b,
            "<h1>Authorize access</h1>\n<p><strong id=\"client-name\">{}</strong> has asked for the \
following access to your ORCID record:</p>\n<ul id=\"scopes\">",
            escape(&self.client_name)
        );
        for s in &self.scopes {
            let _ = write!(
                b,
                "<li data-scope=\"{}\">{}</li>",
                escape(s),
                escape(scope_words(s))
            );
        }
        b.push_str("</ul>\n");
        if let Some(e) = &self.error {
            let _ = writeln!(
                b,
                "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>",
                escape(e)
            );
        }
        b.push_str("<form method=\"post\" action=\"/oauth/authorize\" id=\"authorize-form\">\n");
        for (k, v) in &self.hidden {
            let _ = writeln!(
                b,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            );
        }
        match &self.signed_in {
            Some((name, uri)) => {
                let _ = writeln!(
                    b,
                    "<p id=\"signed-in\">Signed in as <strong>{}</strong> \
<span class=\"ids\">{}</span>. <a href=\"/signout\">Not you? Sign out</a></p>",
                    escape(name),
                    escape(uri)
                );
            }
            None => {
                let _ = write!(
                    b,
                    "<h2>Sign in</h2>\n<label for=\"username\">Email or ORCID iD</label>\
<input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" value=\"{}\">\n\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\">\n",
                    escape(&self.prefill_login)
                );
            }
        }
        b.push_str(
            "<div class=\"buttons\">\
<button type=\"submit\" name=\"action\" value=\"authorize\" id=\"authorize-button\">Authorize</button>\
<button type=\"submit\" name=\"action\" value=\"deny\" id=\"deny-button\">Deny</button>\
</div>\n</form>\n<p class=\"ids\">This is orcid-sim, an offline stand-in for the ORCID sandbox.</p>",
        );
        document("ORCID: Authorize access", &b)
    }
}

/// The page shown for a request ORCID refuses at its own site (bad client or redirect URI).
pub fn error_page(message: &str) -> String {
    document(
        "ORCID: Error",
        &format!(
            "<h1>Oops! Something went wrong</h1>\n<p id=\"error\" role=\"alert\">{}</p>",
            escape(message)
        ),
    )
}

/// The page after `/signout`.
pub fn signed_out_page() -> String {
    document("ORCID: Signed out", "<h1>You are signed out</h1>")
}
