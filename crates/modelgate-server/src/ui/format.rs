//! What every page shares: the navigation, rendering, and the way times, ages, numbers and digests are
//! written for people.

use super::session::Viewer;
use askama::Template;
use axum::response::Html;
use modelgate_core::Timestamp;

/// The navigation bar of the layout.
pub struct Nav {
    pub signed_in: bool,
    /// The page links without the person (error pages, which do not know who is asking).
    pub links: bool,
    pub username: String,
    pub printed_name: String,
    pub is_admin: bool,
    pub csrf_token: String,
    /// Requests waiting for the viewer's signature, when counted.
    pub waiting: Option<usize>,
    pub stylesheet: String,
    /// Which item is the current page (`inbox`, `models`, `audit`, `policy`, `admin`).
    pub current: &'static str,
}

impl Nav {
    pub fn signed_out() -> Self {
        Self {
            signed_in: false,
            links: false,
            username: String::new(),
            printed_name: String::new(),
            is_admin: false,
            csrf_token: String::new(),
            waiting: None,
            stylesheet: super::assets::stylesheet_href(),
            current: "",
        }
    }

    /// The navigation links alone: an error page answers signed-in and signed-out people alike.
    pub fn links_only() -> Self {
        Self {
            links: true,
            ..Self::signed_out()
        }
    }

    pub fn for_viewer(viewer: &Viewer, current: &'static str, waiting: Option<usize>) -> Self {
        let user = viewer.user();
        Self {
            signed_in: true,
            links: true,
            username: user.username.to_string(),
            printed_name: user.printed_name.clone(),
            is_admin: user.is_admin(),
            csrf_token: viewer.csrf_token().to_owned(),
            waiting,
            stylesheet: super::assets::stylesheet_href(),
            current,
        }
    }

    /// `aria-current="page"` for the current item.
    pub fn is(&self, item: &str) -> bool {
        self.current == item
    }
}

pub fn render(page: &impl Template) -> Html<String> {
    match page.render() {
        Ok(html) => Html(html),
        Err(error) => {
            tracing::error!(%error, "a page template failed to render");
            Html("<!doctype html><title>Error</title><p>The page could not be rendered.".to_owned())
        }
    }
}

/// `2026-12-01 19:35 UTC`.
pub fn time(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(clock)) => format!("{date} {clock} UTC"),
        _ => text,
    }
}

/// How long ago, coarsely: `45 min`, `5 h`, `3 d 4 h`.
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let minutes = (now.unix_millis() - since.unix_millis()).max(0) / 60_000;
    match minutes {
        0 => "just now".to_owned(),
        1..60 => format!("{minutes} min"),
        60..1440 => format!("{} h", minutes / 60),
        _ => format!("{} d {} h", minutes / 1440, (minutes % 1440) / 60),
    }
}

/// A metric for reading: 4 significant decimals.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.4}")
    }
}

/// Percent-encodes a query value.
pub fn url_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Bytes for people: `1.5 MiB`.
pub fn bytes(size: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{size} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_times_ages_and_sizes() {
        let at = Timestamp::from_unix_millis(1_764_617_700_000);
        assert_eq!(time(at), "2025-12-01 19:35 UTC");
        let later = |minutes: i64| Timestamp::from_unix_millis(at.unix_millis() + minutes * 60_000);
        assert_eq!(age(at, later(0)), "just now");
        assert_eq!(age(at, later(45)), "45 min");
        assert_eq!(age(at, later(300)), "5 h");
        assert_eq!(age(at, later(3 * 1440 + 250)), "3 d 4 h");
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(number(0.812345), "0.8123");
        assert_eq!(number(1200.0), "1200");
        assert_eq!(
            url_encode("/requests/4?x=a b&y"),
            "/requests/4%3Fx%3Da%20b%26y"
        );
    }
}
