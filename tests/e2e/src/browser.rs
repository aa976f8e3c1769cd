//! A browser without a browser: reqwest with a cookie jar per origin, redirects followed
//! by hand so each hop can be checked, hidden form fields read from the HTML.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};

/// One answer.
#[derive(Clone, Debug)]
pub struct Page {
    /// The URL asked.
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body.
    pub body: String,
}

impl Page {
    /// The `Location` header, absolute (resolved against [`Page::url`]).
    ///
    /// # Errors
    /// There is none.
    pub fn location(&self) -> anyhow::Result<String> {
        let raw = self
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .with_context(|| {
                format!("no Location in the {} answer of {}", self.status, self.url)
            })?;
        let base = url::Url::parse(&self.url).context("the page URL")?;
        Ok(base.join(raw).context("the Location")?.to_string())
    }

    /// The raw `Location` header.
    pub fn raw_location(&self) -> Option<String> {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The `value` of the first hidden input named `name`.
    pub fn hidden(&self, name: &str) -> Option<String> {
        hidden_inputs(&self.body)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Cookies per origin (`http://host:port`), like a browser profile.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, BTreeMap<String, String>>,
    /// Every URL requested, in order.
    pub history: Vec<String>,
}

fn origin_of(url: &str) -> anyhow::Result<String> {
    let u = url::Url::parse(url).with_context(|| format!("not a URL: {url}"))?;
    Ok(u.origin().ascii_serialization())
}

impl Browser {
    /// An empty profile.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .context("an HTTP client")?,
            cookies: BTreeMap::new(),
            history: Vec::new(),
        })
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let jar = self.cookies.get(&origin_of(url).ok()?)?;
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    async fn finish(&mut self, url: &str, response: reqwest::Response) -> anyhow::Result<Page> {
        let origin = origin_of(url)?;
        for value in response.headers().get_all("set-cookie") {
            let Ok(raw) = value.to_str() else { continue };
            let pair = raw.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                let jar = self.cookies.entry(origin.clone()).or_default();
                let expired = raw.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
                if expired {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.context("reading the body")?;
        Ok(Page {
            url: url.to_owned(),
            status,
            headers,
            body,
        })
    }

    /// `GET url`.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn get(&mut self, url: &str) -> anyhow::Result<Page> {
        self.history.push(url.to_owned());
        let mut request = self.http.get(url);
        if let Some(cookies) = self.cookie_header(url) {
            request = request.header("cookie", cookies);
        }
        let response = request.send().await.with_context(|| format!("GET {url}"))?;
        self.finish(url, response).await
    }

    /// `POST url` with a form.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn post(&mut self, url: &str, form: &[(String, String)]) -> anyhow::Result<Page> {
        self.history.push(format!("POST {url}"));
        let mut request = self.http.post(url).form(form);
        if let Some(cookies) = self.cookie_header(url) {
            request = request.header("cookie", cookies);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        self.finish(url, response).await
    }

    /// `GET url`, following redirects (at most 10) like a browser.
    ///
    /// # Errors
    /// Transport failures or a redirect loop.
    pub async fn follow(&mut self, url: &str) -> anyhow::Result<Page> {
        let mut page = self.get(url).await?;
        for _ in 0..10 {
            if !matches!(page.status, 301 | 302 | 303 | 307 | 308) {
                return Ok(page);
            }
            let next = page.location()?;
            page = self.get(&next).await?;
        }
        bail!("more than 10 redirects from {url}")
    }
}

/// The hidden inputs of an HTML page (attributes `name` then `value`, as both the portal
/// and the simulator write them).
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in html.split("<input").skip(1) {
        let tag = chunk.split('>').next().unwrap_or("");
        if !tag.contains("type=\"hidden\"") {
            continue;
        }
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            let at = tag.find(&key)? + key.len();
            let end = tag[at..].find('"')?;
            Some(unescape(&tag[at..at + end]))
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}
