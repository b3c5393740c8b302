//! The browser tests' harness: a headless Debian Chromium driven over WebDriver (`fantoccini` talking to a
//! `chromedriver` this harness starts on a free loopback port), with the checks every page is held to —
//! an accessibility check made from the DOM, the page weight, screenshots at 1280 px and 390 px — and the
//! browser's own smoke test.
//!
//! Each test gets its own chromedriver and Chromium (fresh profile), started in a process group of their
//! own that is killed when the `Browser` is dropped, also when the test panics. Browser tests take turns:
//! at most two browsers run at a time (Chromium is heavy on a 2-core machine, and the rest of the suite
//! runs beside it); a test that needs two people at once takes both turns together.

use crate::support::TestApp;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a wait for something on a page lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(25);

/// Two browsers at a time, across the tests' threads (each test has its own runtime, so the turns are a
/// runtime-independent async semaphore).
static BROWSER_TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The chromedriver process group and the browser profile; dropping it kills every process of the group
/// (chromedriver and the Chromium it started, with Chromium's helpers).
struct Processes {
    driver: Child,
    profile: tempfile::TempDir,
}

impl Processes {
    fn kill(&mut self) {
        let group = self.driver.id();
        // The group was made with chromedriver as its leader (process_group(0)); `kill -- -PGID` reaches
        // every process in it, Chromium included, even after chromedriver itself exited.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A killed process takes a moment to go (longer on a busy machine), and one that left the group
        // would be missed: until none is left, kill each process that names this browser's profile.
        let profile = self.profile.path().display().to_string();
        for _ in 0..200 {
            let left = processes_naming(&profile);
            if left.is_empty() {
                return;
            }
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(left.iter().map(u32::to_string))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromedriver.log")).unwrap_or_default()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A headless Chromium for one test.
pub struct Browser {
    pub client: Client,
    processes: Processes,
    _turn: std::sync::Arc<tokio::sync::SemaphorePermit<'static>>,
}

/// Fails the test, loudly, when Chromium or chromedriver is not installed: the browser tests never skip.
fn require_installed() {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "the browser tests need Chromium and ChromeDriver, and {} missing: install Debian's packages with \
         `apt-get install chromium chromium-driver` (scripts/test does this when they are absent)",
        missing.join(" and ") + if missing.len() == 1 { " is" } else { " are" }
    );
}

fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Chromium arguments: headless, and quiet on the network (without the background-networking flags
/// Chromium keeps trying to reach Google's services).
fn chromium_arguments(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--lang=en-GB",
        "--window-size=1280,900",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!(
        "--user-data-dir={}",
        profile.join("chromium").display()
    )])
    .collect()
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a fresh headless Chromium through it.
    pub async fn start() -> Browser {
        require_installed();
        let turn = BROWSER_TURNS.acquire().await.unwrap();
        Browser::launch(std::sync::Arc::new(turn)).await
    }

    /// Two browsers for two people at once (separate profiles, so separate sessions), started when both
    /// turns are free.
    pub async fn start_two() -> (Browser, Browser) {
        require_installed();
        let turns = std::sync::Arc::new(BROWSER_TURNS.acquire_many(2).await.unwrap());
        let first = Browser::launch(turns.clone()).await;
        (first, Browser::launch(turns).await)
    }

    async fn launch(turn: std::sync::Arc<tokio::sync::SemaphorePermit<'static>>) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let port = free_loopback_port();
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).unwrap();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|error| panic!("{CHROMEDRIVER} did not start: {error}"))
        };
        let mut processes = Processes { driver, profile };
        let webdriver = format!("http://127.0.0.1:{port}");
        wait_until_ready(&mut processes, &webdriver).await;

        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": chromium_arguments(processes.profile.path()),
            }),
        );
        let client = match ClientBuilder::rustls()
            .unwrap()
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
        {
            Ok(client) => client,
            Err(error) => panic!(
                "Chromium did not start through chromedriver: {error}\nchromedriver's log:\n{}",
                processes.log()
            ),
        };
        Browser {
            client,
            processes,
            _turn: turn,
        }
    }

    /// The browser's profile folder; every Chromium process of this browser names it on its command line.
    pub fn profile(&self) -> PathBuf {
        self.processes.profile.path().join("chromium")
    }

    /// Opens `path` of the app and waits until the document has loaded.
    pub async fn open(&self, app: &TestApp, path: &str) {
        self.client.goto(&app.url(path)).await.unwrap();
        self.wait_until(
            "the document has loaded",
            "document.readyState === 'complete'",
        )
        .await;
    }

    /// The path (with query) of the page shown now.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|error| panic!("script failed: {error}\n{script}"))
    }

    /// Waits until the JavaScript expression `condition` is true in the page.
    pub async fn wait_until(&self, what: &str, condition: &str) {
        let script = format!("return Boolean({condition});");
        let polled = tokio::time::timeout(WAIT, async {
            // A navigation in progress can make a script fail; that is "not yet".
            while !matches!(
                self.client.execute(&script, vec![]).await,
                Ok(Value::Bool(true))
            ) {
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        if polled.is_err() {
            panic!(
                "timed out after {WAIT:?} waiting until {what} ({condition}) on {}",
                self.path().await
            );
        }
    }

    /// Waits until an element matching `css` is in the page and returns it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => panic!(
                "no element {css:?} on {} within {WAIT:?}: {error}\n{}",
                self.path().await,
                self.body_text().await
            ),
        }
    }

    /// Whether an element matching `css` is in the page now (no wait).
    pub async fn exists(&self, css: &str) -> bool {
        self.count(css).await > 0
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.run(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(css)],
        )
        .await
        .as_u64()
        .unwrap() as usize
    }

    /// The text of the first element matching `css` (waiting for it), as `textContent`, whitespace
    /// collapsed.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await;
        let text = self
            .run(
                "return document.querySelector(arguments[0]).textContent;",
                vec![json!(css)],
            )
            .await;
        collapse(text.as_str().unwrap_or_default())
    }

    /// The whole page's visible text (for failure messages and literal-text checks).
    pub async fn body_text(&self) -> String {
        match self
            .client
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
        {
            Ok(Value::String(text)) => text,
            _ => String::new(),
        }
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks the element matching `css` and waits until the page it leads to has loaded.
    pub async fn click_and_wait(&self, css: &str) {
        let element = self.find(css).await;
        self.run("window.__modelgate_previous_page = true;", vec![])
            .await;
        element.click().await.unwrap();
        self.wait_until(
            &format!("the page after clicking {css} has loaded"),
            "window.__modelgate_previous_page === undefined && document.readyState === 'complete'",
        )
        .await;
    }

    /// Signs in through `/login` (opening it unless it is shown already) and waits for the next page.
    pub async fn sign_in(&self, app: &TestApp, username: &str, password: &str) {
        if !self.path().await.starts_with("/login") {
            self.open(app, "/login").await;
        }
        self.fill("form#login input[name=username]", username).await;
        self.fill("form#login input[name=password]", password).await;
        self.click_and_wait("form#login [type=submit]").await;
    }

    /// Signs out through the navigation's form.
    pub async fn sign_out(&self) {
        self.click_and_wait("form#logout [type=submit]").await;
    }

    /// Presses Tab up to `presses` times from the top of the page (stopping when focus leaves the page's
    /// elements or comes round again) and returns, for each element reached, its description and whether
    /// its focus shows (an outline or a box shadow while focused).
    pub async fn tab_through(&self, presses: usize) -> Vec<(String, bool)> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        use fantoccini::key::Key;
        self.run(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
            vec![],
        )
        .await;
        let mut reached: Vec<(String, bool)> = Vec::new();
        for _ in 0..presses {
            let tab = KeyActions::new("keyboard".to_owned())
                .then(KeyAction::Down {
                    value: Key::Tab.into(),
                })
                .then(KeyAction::Up {
                    value: Key::Tab.into(),
                });
            self.client.perform_actions(tab).await.unwrap();
            let focused = self.run(FOCUSED_ELEMENT, vec![]).await;
            let Some(description) = focused[0].as_str() else {
                break;
            };
            if reached
                .first()
                .is_some_and(|(first, _)| first == description)
            {
                break;
            }
            reached.push((description.to_owned(), focused[1] == json!(true)));
        }
        reached
    }

    /// The value of the session cookie, as the browser holds it.
    pub async fn session_cookie(&self) -> Option<String> {
        self.client
            .get_named_cookie("modelgate_session")
            .await
            .ok()
            .map(|cookie| cookie.value().to_owned())
    }

    /// The CSRF token of the first form matching `form_css`.
    pub async fn csrf_token(&self, form_css: &str) -> String {
        self.find(&format!("{form_css} input[name=csrf_token]"))
            .await
            .prop("value")
            .await
            .unwrap()
            .filter(|token| !token.is_empty())
            .unwrap_or_else(|| panic!("{form_css} has an empty csrf_token"))
    }

    /// Screenshots of the whole page at 1280 px and at 390 px wide, written to
    /// `target/ui-screenshots/<name>-1280.png` and `<name>-390.png`. Returns the layout problems seen
    /// on the way: a page wider than the window (it scrolls sideways on a phone), with what sticks out,
    /// and text wrapped to a few letters a line (unreadable, as in a table column squeezed to nothing).
    pub async fn screenshot(&self, name: &str) -> Vec<String> {
        let folder = screenshot_folder();
        std::fs::create_dir_all(&folder).unwrap();
        let mut problems = Vec::new();
        for width in [1280_u32, 390] {
            self.client.set_window_size(width, 900).await.unwrap();
            self.wait_until(
                &format!("the viewport is {width} px wide"),
                &format!("window.innerWidth === {width}"),
            )
            .await;
            let sizes = self
                .run(
                    "const e = document.documentElement; \
                     return [e.scrollWidth, Math.max(e.scrollHeight, document.body.scrollHeight), \
                             window.outerHeight - window.innerHeight];",
                    vec![],
                )
                .await;
            let scroll_width = sizes[0].as_u64().unwrap();
            let height = sizes[1].as_u64().unwrap().clamp(600, 8000) as u32;
            // The window's frame takes part of its height (headless Chromium has one too).
            let frame = sizes[2].as_u64().unwrap_or(0) as u32;
            if scroll_width > u64::from(width) {
                let culprits = self.run(WIDER_THAN_THE_WINDOW, vec![]).await;
                problems.push(format!(
                    "at {width} px the page is {scroll_width} px wide: it scrolls sideways; \
                     past the window's edge: {culprits}"
                ));
            }
            let squeezed = self.run(SQUEEZED_TEXT, vec![]).await;
            if squeezed.as_array().is_some_and(|found| !found.is_empty()) {
                problems.push(format!(
                    "at {width} px text is squeezed into a column a few letters wide: {squeezed}"
                ));
            }
            // The viewport as tall as the page, so the screenshot holds all of it.
            self.client
                .set_window_size(width, height + frame)
                .await
                .unwrap();
            self.wait_until(
                &format!("the viewport is {height} px high"),
                &format!("window.innerHeight >= {height}"),
            )
            .await;
            let png = self.client.screenshot().await.unwrap();
            assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
            let path = folder.join(format!("{name}-{width}.png"));
            std::fs::write(&path, png).unwrap();
        }
        self.client.set_window_size(1280, 900).await.unwrap();
        problems
    }

    /// The accessibility problems of the page shown now, found from its DOM (see `ACCESSIBILITY_CHECK`).
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let found = self.run(ACCESSIBILITY_CHECK, vec![]).await;
        found
            .as_array()
            .unwrap_or_else(|| panic!("the check returns a list: {found}"))
            .iter()
            .map(|problem| problem.as_str().unwrap().to_owned())
            .collect()
    }

    /// Asserts the page shown now has no accessibility problem the DOM check finds.
    pub async fn assert_accessible(&self, page: &str) {
        let violations = self.accessibility_violations().await;
        assert!(
            violations.is_empty(),
            "{page} ({}) has accessibility problems:\n  {}",
            self.path().await,
            violations.join("\n  ")
        );
    }

    /// The bytes of the page shown now as the server sends it (fetched again with the browser's session
    /// cookie) plus its same-origin style sheets and scripts; images are not counted.
    pub async fn page_weight(&self, app: &TestApp) -> (usize, Vec<(String, usize)>) {
        let page = self.client.current_url().await.unwrap();
        let assets = self
            .run(
                "return [...document.querySelectorAll('link[rel~=stylesheet][href], link[rel~=preload][href], \
                 link[rel~=modulepreload][href], script[src]')] \
                 .map(e => e.href || e.src) \
                 .filter(u => new URL(u).origin === location.origin);",
                vec![],
            )
            .await;
        let cookie = self.session_cookie().await;
        let mut parts = Vec::new();
        let mut urls = vec![page.to_string()];
        urls.extend(
            assets
                .as_array()
                .unwrap()
                .iter()
                .map(|url| url.as_str().unwrap().to_owned()),
        );
        urls.dedup();
        for url in urls {
            let mut request = app.http.get(&url);
            if let Some(cookie) = &cookie {
                request = request.header("cookie", format!("modelgate_session={cookie}"));
            }
            let response = request.send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            parts.push((url, response.bytes().await.unwrap().len()));
        }
        (parts.iter().map(|(_, size)| size).sum(), parts)
    }

    /// The problem, if any, of the page shown now weighing 150 KB or more with its same-origin CSS and
    /// JS.
    pub async fn weight_problem(&self, app: &TestApp) -> Option<String> {
        let (total, parts) = self.page_weight(app).await;
        (total >= 150_000)
            .then(|| format!("weighs {total} bytes with its CSS and JS (limit 150 KB): {parts:?}"))
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Waits (bounded) until chromedriver answers `/status` with ready; fails with its log if it exits or
/// never becomes ready.
async fn wait_until_ready(processes: &mut Processes, webdriver: &str) {
    let http = reqwest::Client::new();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(Some(status)) = processes.driver.try_wait() {
                return Err(status);
            }
            if let Ok(response) = http.get(format!("{webdriver}/status")).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == json!(true)
            {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    match ready {
        Ok(Ok(())) => {}
        Ok(Err(status)) => panic!(
            "chromedriver exited ({status}) before it was ready:\n{}",
            processes.log()
        ),
        Err(_) => panic!(
            "chromedriver did not become ready on {webdriver} within 30 s:\n{}",
            processes.log()
        ),
    }
}

/// Where screenshots go: `target/ui-screenshots` of the workspace (or of `CARGO_TARGET_DIR`).
pub fn screenshot_folder() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => workspace.join(target),
        None => workspace.join("target"),
    };
    target.join("ui-screenshots")
}

/// The innermost elements and texts that reach past the right edge of the window (what makes a page
/// scroll sideways), furthest first, described with their extent.
const WIDER_THAN_THE_WINDOW: &str = r#"
const edge = document.documentElement.clientWidth;
const describe = (el, box) => {
  let s = el.tagName.toLowerCase();
  if (el.id) s += '#' + el.id;
  if (typeof el.className === 'string' && el.className.trim()) s += '.' + el.className.trim().split(/\s+/).join('.');
  return s + ' (' + Math.round(box.left) + '..' + Math.round(box.right) + ' px) "' +
    (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 40) + '"';
};
const past = (el) => el.getBoundingClientRect().right > edge + 0.5;
// Inside a box that clips or scrolls sideways and itself fits, an element widens nothing; but an
// absolutely placed element escapes every box up to its containing block (the nearest positioned one).
const clipped = (el) => {
  let position = getComputedStyle(el).position;
  if (position === 'fixed') return false;
  let escaping = position === 'absolute';
  for (let box = el.parentElement; box && box !== document.body; box = box.parentElement) {
    const style = getComputedStyle(box);
    if (escaping && style.position === 'static') continue;
    escaping = false;
    if (style.overflowX !== 'visible' && !past(box)) return true;
    if (style.position === 'absolute') escaping = true;
    if (style.position === 'fixed') return false;
  }
  return false;
};
const found = [...document.body.querySelectorAll('*')]
  .filter(el => past(el) && ![...el.children].some(past) && !clipped(el))
  .map(el => [el.getBoundingClientRect().right, describe(el, el.getBoundingClientRect())]);
// Text overflowing its box (a long unbroken word) does not widen the box: measure the text itself.
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  if (!node.textContent.trim()) continue;
  const range = document.createRange();
  range.selectNodeContents(node);
  const box = range.getBoundingClientRect();
  if (box.right > edge + 0.5 && !clipped(node.parentElement) &&
      getComputedStyle(node.parentElement).overflowX === 'visible') {
    found.push([box.right, 'text in ' + describe(node.parentElement, box)]);
  }
}
// What reaches furthest first: that is what sets the page's width.
return found.sort((a, b) => b[0] - a[0]).slice(0, 6).map(([_, text]) => text);
"#;

/// Text of 12 or more characters laid out in three or more lines of fewer than four characters on
/// average (a word per letter down a squeezed column), with the element holding it.
const SQUEEZED_TEXT: &str = r#"
const found = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const text = node.textContent.trim();
  const el = node.parentElement;
  if (text.length < 12 || !el || !el.checkVisibility({ visibilityProperty: true })) continue;
  const range = document.createRange();
  range.selectNodeContents(node);
  const lines = [...range.getClientRects()].filter(r => r.width > 0).length;
  if (lines >= 3 && text.length / lines < 4) {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    if (typeof el.className === 'string' && el.className.trim()) s += '.' + el.className.trim().split(/\s+/).join('.');
    found.push(s + ' "' + text.replace(/\s+/g, ' ').slice(0, 30) + '" in ' + lines + ' lines of ' +
      Math.round(el.getBoundingClientRect().width) + ' px');
  }
}
return found.slice(0, 6);
"#;

/// The focused element (null when it is the body) described with its tag, id and name, and whether its
/// focus is visible: an outline (Chromium's own focus ring counts) or a box shadow.
const FOCUSED_ELEMENT: &str = r#"
const el = document.activeElement;
if (!el || el === document.body || el === document.documentElement) return [null, false];
let s = el.tagName.toLowerCase();
if (el.id) s += '#' + el.id;
if (el.getAttribute('name')) s += '[name=' + el.getAttribute('name') + ']';
if (el.getAttribute('value') && el.tagName === 'BUTTON') s += '[value=' + el.getAttribute('value') + ']';
if (typeof el.className === 'string' && el.className.trim()) s += '.' + el.className.trim().split(/\s+/).join('.');
const style = getComputedStyle(el);
const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
const shadow = style.boxShadow && style.boxShadow !== 'none';
return [s, Boolean(outline || shadow)];
"#;

/// The accessibility check, run in the page; returns a list of problems, each naming the element.
///
/// - every visible `input` (but `hidden`, `submit`, `button`, `reset`, `image`), `select` and `textarea`
///   has a label: `<label for>`, a wrapping `<label>`, `aria-label` or `aria-labelledby` with text;
/// - every `img` (and `input[type=image]`) has an `alt` attribute, every `svg` not `aria-hidden` a name
///   (`aria-label`, `aria-labelledby` or its `<title>`);
/// - `<html lang>` is set;
/// - exactly one `<h1>`, and headings never skip a level going down (h2 → h4);
/// - every link, button (and `[role=button]`, `input[type=submit|button|reset]`) has an accessible name:
///   text, `aria-label`, `aria-labelledby`, an image's `alt`, an SVG `<title>` or `title`;
/// - `id`s are unique;
/// - text contrast (WCAG 2 AA): each visible element with text of its own has a contrast ratio of at least
///   4.5:1 (3:1 for large text: 24 px, or 18.66 px bold) between its colour and its effective background,
///   the background colours of it and its ancestors composited over white (from `getComputedStyle`;
///   colours in any CSS syntax are read through a canvas). Text over a background image is not judged,
///   nor disabled controls, nor text clipped to a pixel (visually hidden for screen readers).
pub const ACCESSIBILITY_CHECK: &str = r#"
const problems = [];
const describe = (el) => {
  let s = el.tagName.toLowerCase();
  if (el.id) s += '#' + el.id;
  if (el.getAttribute('name')) s += '[name=' + el.getAttribute('name') + ']';
  if (typeof el.className === 'string' && el.className.trim()) s += '.' + el.className.trim().split(/\s+/).join('.');
  const text = (el.textContent || '').trim().replace(/\s+/g, ' ');
  if (text) s += ' "' + text.slice(0, 40) + '"';
  return s;
};
const rendered = (el) => {
  if (el.closest('[hidden], [aria-hidden="true"]')) return false;
  return el.checkVisibility({ visibilityProperty: true });
};
const textOf = (ids) => ids.split(/\s+/).map(id => document.getElementById(id)).filter(Boolean)
  .map(el => el.textContent.trim()).join(' ').trim();
const nameOf = (el) => {
  const aria = (el.getAttribute('aria-label') || '').trim();
  if (aria) return aria;
  const by = el.getAttribute('aria-labelledby');
  if (by && textOf(by)) return textOf(by);
  const text = (el.textContent || '').trim();
  if (text) return text;
  if (el.tagName === 'INPUT') return (el.value || el.getAttribute('alt') || '').trim();
  const image = [...el.querySelectorAll('img[alt]')].map(i => i.alt.trim()).join(' ').trim();
  if (image) return image;
  const svg = [...el.querySelectorAll('svg title')].map(t => t.textContent.trim()).join(' ').trim();
  if (svg) return svg;
  return (el.getAttribute('title') || '').trim();
};

// Language.
if (!(document.documentElement.getAttribute('lang') || '').trim()) problems.push('html has no lang');

// Labels.
for (const el of document.querySelectorAll('input, select, textarea')) {
  const type = (el.getAttribute('type') || '').toLowerCase();
  if (['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
  if (!rendered(el)) continue;
  const labelled = [...(el.labels || [])].some(l => l.textContent.trim())
    || (el.getAttribute('aria-label') || '').trim()
    || (el.getAttribute('aria-labelledby') && textOf(el.getAttribute('aria-labelledby')));
  if (!labelled) problems.push('no label: ' + describe(el));
}

// Images.
for (const el of document.querySelectorAll('img, input[type=image]')) {
  if (!el.hasAttribute('alt')) problems.push('image without alt: ' + describe(el) + ' src=' + el.getAttribute('src'));
}

// Pictures drawn as SVG (charts) need a text alternative too, unless hidden from assistive technology.
for (const el of document.querySelectorAll('svg')) {
  if (el.closest('[aria-hidden="true"]') || el.parentElement.closest('svg')) continue;
  const title = [...el.children].find(child => child.tagName.toLowerCase() === 'title');
  const named = (el.getAttribute('aria-label') || '').trim()
    || (el.getAttribute('aria-labelledby') && textOf(el.getAttribute('aria-labelledby')))
    || (title && title.textContent.trim());
  if (!named) problems.push('svg without a text alternative: ' + describe(el));
}

// Headings.
const h1s = document.querySelectorAll('h1').length;
if (h1s !== 1) problems.push('the page has ' + h1s + ' h1 elements, not exactly one');
let previous = 0;
for (const el of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
  const level = Number(el.tagName[1]);
  if (level > previous + 1) problems.push('heading skips a level (h' + previous + ' then h' + level + '): ' + describe(el));
  previous = level;
}

// Names of links and buttons.
for (const el of document.querySelectorAll('a[href], button, [role=button], input[type=submit], input[type=button], input[type=reset]')) {
  if (!rendered(el)) continue;
  if (!nameOf(el)) problems.push('no accessible name: ' + describe(el));
}

// Unique ids.
const seen = new Map();
for (const el of document.querySelectorAll('[id]')) seen.set(el.id, (seen.get(el.id) || 0) + 1);
for (const [id, count] of seen) if (count > 1) problems.push('id "' + id + '" is used ' + count + ' times');

// Contrast.
const canvas = document.createElement('canvas');
canvas.width = 1; canvas.height = 1;
const context = canvas.getContext('2d', { willReadFrequently: true });
const rgba = (color) => {
  const m = color.match(/^rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)$/);
  if (m) {
    let a = m[4] === undefined ? 1 : (m[4].endsWith('%') ? parseFloat(m[4]) / 100 : parseFloat(m[4]));
    return [parseFloat(m[1]), parseFloat(m[2]), parseFloat(m[3]), a];
  }
  context.clearRect(0, 0, 1, 1);
  context.fillStyle = '#000';
  context.fillStyle = color;
  context.fillRect(0, 0, 1, 1);
  const d = context.getImageData(0, 0, 1, 1).data;
  return [d[0], d[1], d[2], d[3] / 255];
};
const over = (top, bottom) => {
  const a = top[3] + bottom[3] * (1 - top[3]);
  if (a === 0) return [0, 0, 0, 0];
  const mix = (i) => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a;
  return [mix(0), mix(1), mix(2), a];
};
const luminance = (c) => {
  const channel = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
};
const backgroundOf = (el) => {
  const layers = [];
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
    const style = getComputedStyle(node);
    if (style.backgroundImage && style.backgroundImage !== 'none') return null;
    const color = rgba(style.backgroundColor);
    if (color[3] > 0) layers.push(color);
    if (color[3] >= 1) break;
  }
  let background = [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) background = over(layers[i], background);
  return background;
};
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const judged = new Set();
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const el = node.parentElement;
  if (!el || judged.has(el) || !node.textContent.trim()) continue;
  judged.add(el);
  if (el.closest('script, style, noscript, template, option')) continue;
  if (!rendered(el)) continue;
  if (el.closest(':disabled')) continue;
  const box = el.getBoundingClientRect();
  if (box.width <= 1 || box.height <= 1) continue;
  const style = getComputedStyle(el);
  if (parseFloat(style.opacity) === 0) continue;
  const background = backgroundOf(el);
  if (!background) continue;
  const text = over(rgba(style.color), background);
  const [light, dark] = [luminance(text), luminance(background)].sort((a, b) => b - a);
  const ratio = (light + 0.05) / (dark + 0.05);
  const size = parseFloat(style.fontSize);
  const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
  const needed = large ? 3 : 4.5;
  if (ratio < needed) {
    problems.push('contrast ' + ratio.toFixed(2) + ':1 < ' + needed + ':1 (' + style.color + ' on ' +
      'rgb(' + background.slice(0, 3).map(Math.round).join(', ') + ')): ' + describe(el));
  }
}
return [...new Set(problems)];
"#;

/// The processes of this machine whose command line names `needle`.
fn processes_naming(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(command) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&command).contains(needle)
        {
            found.push(pid);
        }
    }
    found
}

/// The harness itself: Chromium renders a page of the server (Swagger UI, drawn by its script), the
/// accessibility check finds problems in a page made to have them, and the browser's processes end when
/// the `Browser` is dropped.
#[tokio::test]
async fn the_browser_renders_a_page_and_its_processes_end_with_the_test() {
    let app = crate::support::spawn_app().await;
    let browser = Browser::start().await;
    browser.open(&app, "/api/docs/").await;
    // Swagger UI builds its page with JavaScript from the OpenAPI document.
    let title = browser.text(".swagger-ui .info .title").await;
    assert!(title.contains("modelgate"), "{title}");

    // The check finds what is wrong with a page made to fail it.
    browser
        .run(
            "document.documentElement.removeAttribute('lang'); \
             document.body.innerHTML = '<h1>One</h1><h1>Two</h1><h4>Deep</h4>' + \
             '<input id=x type=text><input id=x type=checkbox aria-label=ok><img src=data:,>' + \
             '<a href=/></a><button></button>' + \
             '<p style=\"color:#999;background:#fff\">faint text</p>' + \
             '<p style=\"color:oklch(0.3 0 0);background:#fff\">dark text</p>' + \
             '<svg width=10 height=10></svg><svg role=img aria-label=chart width=10 height=10></svg>' + \
             '<svg aria-hidden=true width=10 height=10></svg>';",
            vec![],
        )
        .await;
    let violations = browser.accessibility_violations().await;
    let expected = [
        "html has no lang",
        "no label: input#x",
        "image without alt",
        "the page has 2 h1 elements",
        "heading skips a level (h1 then h4)",
        "no accessible name: a",
        "no accessible name: button",
        "id \"x\" is used 2 times",
        "contrast 2.85:1 < 4.5:1",
        "svg without a text alternative",
    ];
    for problem in expected {
        assert!(
            violations.iter().any(|found| found.contains(problem)),
            "{problem:?} not found in {violations:#?}"
        );
    }
    assert_eq!(violations.len(), expected.len(), "{violations:#?}");

    // Tab goes from link to link, and a focus with its outline taken away is seen as invisible.
    browser
        .run(
            "document.body.innerHTML = '<a id=shown href=#one>one</a> ' + \
             '<a id=hidden href=#two style=\"outline:none\">two</a>';",
            vec![],
        )
        .await;
    assert_eq!(
        browser.tab_through(5).await,
        [("a#shown".to_owned(), true), ("a#hidden".to_owned(), false)]
    );

    let profile = browser.profile().display().to_string();
    assert!(
        !processes_naming(&profile).is_empty(),
        "Chromium runs with the test's profile"
    );
    drop(browser);
    assert!(
        processes_naming(&profile).is_empty(),
        "Chromium's processes outlived the test: {:?}",
        processes_naming(&profile)
    );
    app.stop().await;
}
