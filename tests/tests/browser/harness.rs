//! A real browser at the real workbench: the five services and the
//! workbench as processes (the end-to-end stack), Debian's Chromium driven
//! over WebDriver by ChromeDriver, one browser session per person.

use crate::stack::Stack;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use onedoor_local_servers::{BROWSER_TOOLS, ServiceProcess, free_port};
use onedoor_test_support::driver::SECRET;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TAB: &str = "\u{e004}";
pub const ENTER: &str = "\u{e007}";
pub const ARROW_DOWN: &str = "\u{e015}";
pub const END: &str = "\u{e010}";

/// Chromium, ChromeDriver, pdftotext and a Chinese font, or a message saying what to install
/// (`cargo xtask test` installs them as root).
fn browser_tools() {
    let missing = onedoor_local_servers::missing_browser_packages();
    assert!(
        missing.is_empty(),
        "the browser tests need Debian's {0}: run `cargo xtask test` as root, or `apt-get install {0}`",
        missing.join(" ")
    );
}

const CHROMIUM: &str = BROWSER_TOOLS[0].0;
const CHROMEDRIVER: &str = BROWSER_TOOLS[1].0;

/// The platform, the workbench, and ChromeDriver.
pub struct Platform {
    pub stack: Stack,
    pub workbench: ServiceProcess,
    driver: Child,
    driver_url: String,
    profiles: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.stack.logs.path().join("workbench.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("the workbench's log ends:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        self.workbench.stop();
    }
}

impl Platform {
    pub async fn start() -> Self {
        browser_tools();
        let stack = Stack::start(&[]).await;
        let port = free_port().unwrap();
        let mut env = vec![
            ("WORKBENCH_PORT".to_string(), port.to_string()),
            ("ONEDOOR_HOST".to_string(), "127.0.0.1".to_string()),
            ("ONEDOOR_DEV_LOGIN".to_string(), "1".to_string()),
            ("ONEDOOR_JWT_SECRET".to_string(), SECRET.to_string()),
            ("WORKBENCH_SESSION_KEY".to_string(), "a session key of the browser tests, 32+ bytes".to_string()),
            ("WORKBENCH_PUBLIC_URL".to_string(), format!("http://127.0.0.1:{port}")),
        ];
        for s in &stack.services {
            env.push((format!("{}_URL", s.name.to_uppercase().replace('-', "_")), s.url()));
        }
        let mut workbench = ServiceProcess::new("workbench", port, env, stack.logs.path().join("workbench.log"));
        tokio::task::block_in_place(|| workbench.start(Duration::from_secs(30))).unwrap();

        let driver_port = free_port().unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let driver_url = format!("http://127.0.0.1:{driver_port}");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", driver_port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { stack, workbench, driver, driver_url, profiles: tempfile::tempdir().unwrap() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.workbench.url())
    }

    /// A new browser window (its own profile: its own cookies), 1366×768,
    /// signed in through the development sign-in as `who` (a query string).
    pub async fn person(&self, who: &str) -> Person {
        let profile = tempfile::tempdir_in(self.profiles.path()).unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1366,768", "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", "--disable-quic", "--lang=zh-CN",
                         format!("--user-data-dir={}", profile.path().display())]
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.driver_url)
            .await
            .expect("a browser session");
        client.goto(&self.url(&format!("/dev-login?{who}"))).await.unwrap();
        Person { client, _profile: profile, base: self.workbench.url() }
    }
}

/// One person at one browser window.
pub struct Person {
    pub client: Client,
    _profile: tempfile::TempDir,
    base: String,
}

impl Person {
    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    pub async fn find(&self, css: &str) -> Element {
        match self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => {
                let body = self.client.source().await.unwrap_or_default();
                panic!("no {css} on {}: {e}; the page:\n{body}", self.path().await);
            }
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn body(&self) -> String {
        self.text("body").await
    }

    /// Waits until the text of `css` satisfies `check`.
    pub async fn text_until(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await
                && let Ok(t) = e.text().await
                && check(&t)
            {
                return t;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let body = self.body().await;
                panic!("timed out waiting until {what} ({css}); the page says:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Presses Tab until the focused element is the named field (with
    /// `value`, for checkboxes of one name): the field is reachable by
    /// keyboard, in order. Panics after `max` presses.
    pub async fn tab_to(&self, name: &str, value: Option<&str>) -> Element {
        for _ in 0..60 {
            let active = self.client.active_element().await.unwrap();
            let n = active.attr("name").await.unwrap().unwrap_or_default();
            let v = active.attr("value").await.unwrap().unwrap_or_default();
            let id = active.attr("id").await.unwrap().unwrap_or_default();
            if (n == name || id == name) && value.is_none_or(|want| want == v) {
                return active;
            }
            active.send_keys(TAB).await.unwrap();
        }
        panic!("{name} cannot be reached with the Tab key");
    }

    /// Tabs to a field and types after what it holds (Tab selects a
    /// field's text; End keeps it).
    pub async fn type_into(&self, name: &str, text: &str) {
        self.tab_to(name, None).await.send_keys(&format!("{END}{text}")).await.unwrap();
    }

    /// Tabs to a checkbox and ticks it with the space bar.
    pub async fn tick(&self, name: &str, value: &str) {
        self.tab_to(name, Some(value)).await.send_keys(" ").await.unwrap();
    }

    /// Saves a screenshot of the page for the README.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// The page printed to PDF (A4), as its text.
    pub async fn printed_text(&self) -> String {
        let pdf = self.client.print(fantoccini::wd::PrintConfiguration::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("page.pdf");
        std::fs::write(&file, &pdf).unwrap();
        let out = Command::new("pdftotext").arg(&file).arg("-").output().expect("pdftotext");
        assert!(out.status.success(), "pdftotext failed");
        String::from_utf8(out.stdout).unwrap()
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
