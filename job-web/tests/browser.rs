//! End to end in a real browser: Debian's Chromium, headless, driven through chromedriver.
//!
//! A job fails its only attempt and is discarded; the test logs into the dashboard with the
//! token, filters the job list to discarded jobs, opens the job, clicks retry, and a runtime
//! started here runs it again; the job page then shows `completed`.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver: `bash scripts/ensure-chromium.sh`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use jobsmith::{Db, JobContext, JobState};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const TOKEN: &str = "e2e-admin-token-5b8e1f0c";
/// Generous: a cold Chromium on two shared cores can take a while.
const DEADLINE: Duration = Duration::from_secs(90);
const ACCOUNT: &str = "acme <script>alert('e2e')</script>";

/// Exports an account's ledger. The ledger service is "down" on the first attempt, and one
/// attempt is all the job has, so it is discarded; a retry from the dashboard succeeds.
#[jobsmith::job(queue = "exports", max_attempts = 1)]
async fn export_ledger(ctx: JobContext, account: String) -> Result<(), String> {
    if ctx.attempt == 1 {
        return Err(format!("ledger service unavailable for {account}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_discarded_job_from_the_browser_runs_it_to_completion() {
    let started = Instant::now();
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: the browser test needs Debian's chromium and chromium-driver. \
             Install them with `bash scripts/ensure-chromium.sh` (as root)."
        );
    }
    let dir = TempDir::new("e2e");

    // A SQLite file database with a discarded job, and a node running its queue.
    let db = Db::connect(&format!("sqlite://{}", dir.path().join("jobs.db").display())).await.unwrap();
    db.migrate().await.unwrap();
    let engine = db.engine().clone();
    let runtime =
        db.runtime().queue("exports", 2).poll_interval(Duration::from_millis(100)).start().await.unwrap();
    let id = db.insert(ExportLedger { account: ACCOUNT.into() }).await.unwrap().job.id;
    wait_for(&format!("job {id} to be discarded"), || async {
        engine.get_job(id).await.unwrap().is_some_and(|j| j.state == JobState::Discarded)
    })
    .await;

    let server =
        jobsmith_web::serve(engine.clone(), "127.0.0.1:0".parse().unwrap(), jobsmith_web::Auth::token(TOKEN))
            .await
            .unwrap();
    let base = format!("http://{}", server.local_addr());
    let driver = ChromeDriver::start(&dir);
    let client = driver.connect(&dir).await;

    // Assertions panic; the session is closed either way so no Chromium outlives the test.
    let outcome = AssertUnwindSafe(scenario(&client, &base, id, &db)).catch_unwind().await;
    let _ = client.close().await;
    if let Err(panic) = outcome {
        eprintln!("chromedriver log:\n{}", driver.log_tail());
        std::panic::resume_unwind(panic);
    }
    assert_eq!(engine.get_job(id).await.unwrap().unwrap().state, JobState::Completed);
    let stored = engine.cron_entries().await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!((stored[0].name.as_str(), stored[0].paused), (CRON_ENTRY, true));
    assert_eq!(stored[0].job.args["account"], "acme");

    drop(driver);
    server.shutdown().await;
    runtime.shutdown().await.unwrap();
    eprintln!("browser test took {:.1} s", started.elapsed().as_secs_f64());
}

async fn scenario(c: &Client, base: &str, id: i64, db: &Db) {
    // Not logged in: the dashboard sends the browser to the login page.
    c.goto(&format!("{base}/")).await.unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/login", "{url}");
    c.find(Locator::Css("#token")).await.unwrap().send_keys(TOKEN).await.unwrap();
    c.find(Locator::Css("#login")).await.unwrap().click().await.unwrap();
    let queues = wait_css(c, "#queues").await;
    assert!(queues.text().await.unwrap().contains("exports"));

    // Live refresh: a job inserted now shows up on the open page, without a reload.
    assert_eq!(wait_css(c, "#live-toggle").await.text().await.unwrap(), "Live: on");
    db.insert(jobsmith::InsertBuilder::from(ExportLedger { account: "live".into() }).queue("live-refresh"))
        .await
        .unwrap();
    let row = wait_text(c, "#queues tr[data-queue='live-refresh']", "live-refresh").await;
    assert!(row.starts_with("live-refresh 1"), "one available job: {row}");
    assert_eq!(c.current_url().await.unwrap().path(), "/", "no navigation happened");

    // The job list, filtered to discarded jobs through the form.
    c.find(Locator::LinkText("Jobs")).await.unwrap().click().await.unwrap();
    let state = wait_css(c, "#filters select[name=state]").await;
    state.select_by_value("discarded").await.unwrap();
    c.find(Locator::Css("#filter")).await.unwrap().click().await.unwrap();
    // The unfiltered list shows the same link: wait for the filtered page itself, or the link
    // found could belong to the page being replaced (a stale element).
    let deadline = Instant::now() + DEADLINE;
    loop {
        let url = c.current_url().await.unwrap();
        if url.query().unwrap_or("").contains("state=discarded") {
            break;
        }
        assert!(Instant::now() < deadline, "the filter did not navigate: {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = wait_text(c, "#jobs", "discarded").await;
    assert!(!rows.contains("completed"), "{rows}");

    // The job: discarded, its args shown as text (escaped, not run), its error listed.
    click_css(c, &format!("#jobs a.job[href='/jobs/{id}']")).await;
    wait_text(c, "#state", "discarded").await;
    wait_text(c, "#args", ACCOUNT).await;
    wait_text(c, "#errors", "ledger service unavailable").await;

    click_css(c, &format!("form[action='/jobs/{id}/retry'] button")).await;
    wait_text(c, ".notice", "available again").await;

    // The node picks the job up, and the open page shows it by itself (live refresh).
    wait_text(c, "#state", "completed").await;
    let timeline = wait_text(c, "#timeline", "completed").await;
    assert!(timeline.contains("attempt 1 failed"), "{timeline}");
    screenshot(c, "job").await;

    // Cron: add a stored entry through the form (the node published its job types), then pause it.
    c.find(Locator::LinkText("Cron")).await.unwrap().click().await.unwrap();
    wait_css(c, "#cron-form").await;
    let field = |name: &'static str| async move {
        c.find(Locator::Css(&format!("#cron-form [name={name}]"))).await.unwrap()
    };
    field("name").await.send_keys(CRON_ENTRY).await.unwrap();
    field("expr").await.send_keys("0 3 * * MON-FRI").await.unwrap();
    field("timezone").await.send_keys("Europe/Paris").await.unwrap();
    field("worker").await.select_by_value(<ExportLedger as jobsmith::Job>::NAME).await.unwrap();
    field("args").await.send_keys(r#"{"account":"acme"}"#).await.unwrap();
    c.find(Locator::Css("#cron-save")).await.unwrap().click().await.unwrap();
    wait_text(c, ".notice", "Cron entry added").await;
    let row_css = format!("tr[data-cron='{CRON_ENTRY}']");
    let row = wait_text(c, &row_css, "enabled").await;
    assert!(row.contains("At 03:00 AM, Monday through Friday") && row.contains("enabled"), "{row}");
    assert!(row.contains("Europe/Paris") && row.contains("acme"), "{row}");
    click_css(c, &format!("{row_css} form[action='/cron/pause'] button")).await;
    wait_text(c, ".notice", "paused").await;
    let row = wait_text(c, &row_css, "Resume").await;
    assert!(row.contains("paused"), "{row}");
    screenshot(c, "cron").await;

    // A bulk retry of a filtered set: two more ledger exports fail and are discarded; the
    // filter selects the discarded ones, the confirmation counts them, and both run again.
    let mut failed = Vec::new();
    for account in ["north", "south"] {
        failed.push(db.insert(ExportLedger { account: account.into() }).await.unwrap().job.id);
    }
    for id in &failed {
        wait_for(&format!("job {id} to be discarded"), || async {
            db.engine().get_job(*id).await.unwrap().is_some_and(|j| j.state == JobState::Discarded)
        })
        .await;
    }
    c.goto(&format!("{base}/jobs?state=discarded")).await.unwrap();
    // A ticked box stays ticked while the live refresh swaps the table under it.
    click_css(c, &format!("#jobs input[name=id][value='{}']", failed[0])).await;
    // Focus away from the table (a focused part is left alone), and keep the ticked box as it is
    // now: once the table is swapped this element is gone from the page.
    c.find(Locator::Css("h1")).await.unwrap().click().await.unwrap();
    let old_box =
        c.find(Locator::Css(&format!("#jobs input[name=id][value='{}']", failed[0]))).await.unwrap();
    let before = c.find(Locator::Css("body")).await.unwrap().attr("data-refreshed").await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = c.find(Locator::Css("body")).await.unwrap().attr("data-refreshed").await.unwrap();
        if now.is_some() && now != before {
            break;
        }
        assert!(Instant::now() < deadline, "the page never refreshed itself");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(old_box.is_selected().await.is_err(), "the refresh replaced the table");
    let ticked = c.find(Locator::Css(&format!("#jobs input[name=id][value='{}']", failed[0]))).await.unwrap();
    assert!(ticked.is_selected().await.unwrap(), "the tick survived the refresh");
    wait_css(c, "#bulk-bar select[name=scope]").await.select_by_value("filter").await.unwrap();
    c.find(Locator::Css("#bulk-retry")).await.unwrap().click().await.unwrap();
    wait_text(c, "h1", "Retry 2 jobs?").await;
    screenshot(c, "bulk-confirm").await;
    c.find(Locator::Css("#bulk-confirm-button")).await.unwrap().click().await.unwrap();
    wait_text(c, ".notice", "Retried 2 jobs.").await;
    for id in &failed {
        wait_for(&format!("job {id} to complete"), || async {
            db.engine().get_job(*id).await.unwrap().is_some_and(|j| j.state == JobState::Completed)
        })
        .await;
    }

    // The queue page shows a running job, with its node.
    let held = db.insert(HoldSlot { ticket: 1 }).await.unwrap().job.id;
    c.goto(&format!("{base}/")).await.unwrap();
    click_css(c, "#queues tr[data-queue='exports'] td a").await;
    let running = wait_text(c, "#queue-running", &held.to_string()).await;
    assert!(running.contains("HoldSlot"), "{running}");
    screenshot(c, "queue").await;
    RELEASE.store(true, std::sync::atomic::Ordering::Release);
    wait_text(c, "#queue-live", "Nothing is running.").await;

    for (page, css, name) in
        [("/", "#queues", "queues"), ("/jobs", "#jobs", "jobs"), ("/cluster", "#nodes", "cluster")]
    {
        c.goto(&format!("{base}{page}")).await.unwrap();
        wait_css(c, css).await;
        screenshot(c, name).await;
    }
}

/// Lets the running `hold_slot` job finish.
static RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Holds its slot until the test lets it go, so the queue page has a running job to show.
#[jobsmith::job(queue = "exports")]
async fn hold_slot(ticket: u32) -> Result<(), String> {
    let _ = ticket;
    while !RELEASE.load(std::sync::atomic::Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A stored cron entry the test adds through the form.
const CRON_ENTRY: &str = "ledger-nightly";

/// With `JOBSMITH_SCREENSHOTS=<dir>`, saves the page as `<dir>/<name>.png`: the pictures in
/// `docs/dashboard/` are made this way (`bash scripts/screenshots.sh`), never by hand.
async fn screenshot(c: &Client, name: &str) {
    let Ok(dir) = std::env::var("JOBSMITH_SCREENSHOTS") else { return };
    let png = c.screenshot().await.unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
}

/// The element once it is on the page (after a navigation the click started).
async fn wait_css(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(DEADLINE)
        .every(Duration::from_millis(100))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page within {DEADLINE:?}: {e}"))
}

/// The text of `css` once it contains `needle`. Elements found may go stale under a navigation
/// or a live refresh that replaces them: those reads are simply tried again.
async fn wait_text(c: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    let mut last = String::new();
    loop {
        if let Ok(element) = c.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if text.contains(needle) {
                return text;
            }
            last = text;
        }
        assert!(Instant::now() < deadline, "`{css}` never said {needle:?}; last: {last:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks `css`, finding it again when a live refresh replaced it between finding and clicking.
async fn click_css(c: &Client, css: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(element) = c.find(Locator::Css(css)).await
            && element.click().await.is_ok()
        {
            return;
        }
        assert!(Instant::now() < deadline, "could not click `{css}` within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `done` until it holds or the deadline passes.
async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// chromedriver on a free loopback port, killed on drop.
struct ChromeDriver {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl ChromeDriver {
    fn start(dir: &TempDir) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.path().join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {CHROMEDRIVER} ({e}); try `bash scripts/ensure-chromium.sh`")
            });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        ChromeDriver { child, addr, log }
    }

    async fn connect(&self, dir: &TempDir) -> Client {
        let profile = dir.path().join("chromium-profile");
        std::fs::create_dir_all(&profile).unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{}", self.addr))
            .await
            .unwrap_or_else(|e| {
                panic!("cannot open a Chromium session through chromedriver: {e}\n{}", self.log_tail())
            })
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let path = std::env::temp_dir().join(format!("job-web-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
