//! Fault injection for tests: a throwaway PostgreSQL cluster the test starts, stops and restarts
//! itself ([`TempCluster`]), and a TCP proxy that sees PostgreSQL's message boundaries and breaks
//! connections at chosen moments ([`FaultProxy`]), e.g. right after a statement committed but
//! before the client heard so.
//!
//! Include it by path, like the conformance harness:
//!
//! ```ignore
//! #[path = "support/faults.rs"]
//! mod faults;
//! ```
//!
//! It needs the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`). Without them
//! [`TempCluster::start`] panics saying what to install: a fault test that cannot run fails, it
//! never passes by doing nothing. Its own tests are tests/fault_harness.rs.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long any wait in this module may take before it fails: two shared cores can be slow.
pub const FAULT_DEADLINE: Duration = Duration::from_secs(60);

/// Polls `check` every 20 ms until it returns `Some`, for at most [`FAULT_DEADLINE`].
async fn poll<T, F, Fut>(mut check: F) -> Result<T, ()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > FAULT_DEADLINE {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// TempCluster
// ---------------------------------------------------------------------------------------------

/// Prefix of the temporary directories; abandoned ones (their test process is gone) are cleaned
/// up by the next [`TempCluster::start`].
const DIR_PREFIX: &str = "jobsmith_pg_";

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A PostgreSQL cluster of the test's own: initdb'd into a fresh temporary directory, on a free
/// port of 127.0.0.1, trust authentication for the `postgres` user. Unlike the shared test server
/// it can be stopped and started again, so a test can take the database away from a running node.
///
/// Dropping it stops the server (immediate mode) and removes the directory.
pub struct TempCluster {
    /// The temporary directory: holds `data/`, the server log and the Unix socket.
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl TempCluster {
    /// initdb, configure, start, and wait until the server accepts connections.
    pub async fn start() -> TempCluster {
        let bin = server_binaries();
        let owner = postgres_owner();
        sweep_abandoned(&bin);
        let root = fresh_dir();
        if let Some((uid, gid)) = owner {
            // PostgreSQL refuses to run as root, so as root the server runs as `postgres`, which
            // must own the directory (the data directory, the socket and the log go in it).
            std::os::unix::fs::chown(&root, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", root.display()));
        }
        let data = root.join("data");
        let mut cluster = TempCluster { root, data, bin, port: 0 };

        let mut initdb = cluster.tool("initdb");
        initdb.arg("-D").arg(&cluster.data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            // A throwaway cluster: not waiting for its files to reach the disk saves seconds.
            "--no-sync",
            "--no-instructions",
        ]);
        let out = run(initdb).await;
        if !out.status.success() {
            panic!("initdb into {} failed:\n{}", cluster.data.display(), output_text(&out));
        }
        // The test's settings live in a file of their own, so a new port can be written over them.
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(cluster.data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        writeln!(conf, "\ninclude 'jobsmith_faults.conf'").expect("write postgresql.conf");

        // A port picked free may be taken by another process before the server binds it (tests
        // run in parallel): pick another and try again.
        let mut failures = Vec::new();
        for _ in 0..5 {
            cluster.port = free_port();
            cluster.write_settings();
            match cluster.pg_ctl_start().await {
                Ok(()) => {
                    cluster.wait_accepting().await;
                    return cluster;
                }
                Err(e) if e.contains("Address already in use") => failures.push(e),
                Err(e) => panic!("PostgreSQL in {} did not start: {e}", cluster.data.display()),
            }
        }
        panic!("PostgreSQL found no free port in 5 tries:\n{}", failures.join("\n"));
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's TCP address, e.g. for [`FaultProxy::start`].
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The URL of the `postgres` database.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `db` (without TLS: the proxy needs plain text, and the server has no
    /// certificate anyway).
    pub fn url_for(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable", self.port)
    }

    /// The data directory (gone once the cluster is dropped).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Creates database `name` (a plain identifier).
    pub async fn create_database(&self, name: &str) {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database names here are plain identifiers: {name:?}"
        );
        let mut admin =
            self.connect_options("postgres").connect().await.expect("connect to the temp cluster");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        admin.close().await.ok();
    }

    /// Stops the server (fast mode: open connections are ended, a clean shutdown) and waits
    /// until it is gone.
    pub async fn stop(&self) {
        let mut stop = self.tool("pg_ctl");
        stop.arg("-D").arg(&self.data).args(["-m", "fast", "-w", "-t", "120", "stop"]);
        let out = run(stop).await;
        if !out.status.success() {
            panic!("pg_ctl stop failed:\n{}\n--- server log ---\n{}", output_text(&out), self.log());
        }
    }

    /// Starts the stopped server again, on the same data directory and port, and waits until it
    /// accepts connections. Panics if the port was taken meanwhile: the URLs handed out would
    /// point elsewhere.
    pub async fn start_again(&self) {
        if let Err(e) = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)) {
            panic!(
                "port {} of the stopped temp cluster was taken meanwhile ({e}): cannot start it again",
                self.port
            );
        }
        if let Err(e) = self.pg_ctl_start().await {
            let taken = if e.contains("Address already in use") {
                format!("port {} was taken meanwhile; ", self.port)
            } else {
                String::new()
            };
            panic!("{taken}PostgreSQL in {} did not start again: {e}", self.data.display());
        }
        self.wait_accepting().await;
    }

    /// Whether the server is running (asks `pg_ctl status`).
    pub fn is_running(&self) -> bool {
        let mut status = self.tool("pg_ctl");
        status.arg("-D").arg(&self.data).arg("status").stdout(Stdio::null()).stderr(Stdio::null());
        status.status().map(|s| s.success()).unwrap_or(false)
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    fn connect_options(&self, db: &str) -> PgConnectOptions {
        self.url_for(db).parse().expect("temp cluster URL")
    }

    fn tool(&self, name: &str) -> Command {
        pg_tool(&self.bin, name, &self.root)
    }

    fn write_settings(&self) {
        let settings = format!(
            "# Written by tests/support/faults.rs.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket}'\n\
             max_connections = 200\n\
             shared_buffers = 32MB\n\
             # As in production: vacuum may run while a test runs.\n\
             autovacuum = on\n\
             fsync = on\n",
            port = self.port,
            socket = self.root.display(),
        );
        std::fs::write(self.data.join("jobsmith_faults.conf"), settings).expect("write jobsmith_faults.conf");
    }

    /// `pg_ctl start -w`; the error carries pg_ctl's output and what the server logged meanwhile.
    async fn pg_ctl_start(&self) -> Result<(), String> {
        let log_from = std::fs::metadata(self.log_path()).map(|m| m.len() as usize).unwrap_or(0);
        let mut start = self.tool("pg_ctl");
        start.arg("-D").arg(&self.data).arg("-l").arg(self.log_path()).args(["-w", "-t", "120", "start"]);
        let out = run(start).await;
        if out.status.success() {
            return Ok(());
        }
        let log = self.log();
        Err(format!("{}\n--- server log ---\n{}", output_text(&out), log.get(log_from..).unwrap_or(&log)))
    }

    /// `pg_ctl -w` waits for the postmaster; a client connection proves it really answers.
    async fn wait_accepting(&self) {
        let opts = self.connect_options("postgres");
        let start = Instant::now();
        loop {
            match opts.connect().await {
                Ok(conn) => {
                    conn.close().await.ok();
                    return;
                }
                Err(e) if start.elapsed() > FAULT_DEADLINE => panic!(
                    "the temp cluster on port {} accepted no connection within {FAULT_DEADLINE:?} ({e})\n--- server log ---\n{}",
                    self.port,
                    self.log()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        stop_immediately(&self.bin, &self.root);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Stops the server of directory `root` if it runs, without a clean shutdown (nothing in it is
/// kept).
fn stop_immediately(bin: &Path, root: &Path) {
    let data = root.join("data");
    if data.join("postmaster.pid").exists() {
        let mut stop = pg_tool(bin, "pg_ctl", root);
        stop.arg("-D").arg(&data).args(["-m", "immediate", "-w", "-t", "60", "stop"]);
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// The directory of `initdb` and `pg_ctl`: `$PG_BIN`, else PostgreSQL 15's, else `PATH`.
fn server_binaries() -> PathBuf {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(has_tools(&dir), "PG_BIN={} has no initdb and pg_ctl", dir.display());
        return dir;
    }
    let v15 = PathBuf::from("/usr/lib/postgresql/15/bin");
    if has_tools(&v15) {
        return v15;
    }
    if let Some(dir) = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has_tools(d))
    {
        return dir;
    }
    panic!(
        "the fault tests start PostgreSQL clusters of their own and need the server binaries \
         (initdb, pg_ctl; looked in $PG_BIN, /usr/lib/postgresql/15/bin and PATH): \
         install them with `apt-get install postgresql-15`, or run `bash scripts/test.sh`, which installs PostgreSQL"
    )
}

fn running_as_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// As root: the uid and gid of the `postgres` OS user the server must run as.
fn postgres_owner() -> Option<(u32, u32)> {
    if !running_as_root() {
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").arg(flag).arg("postgres").output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) => Some((uid, gid)),
        _ => panic!(
            "running as root, and PostgreSQL refuses to run as root: the fault tests need the `postgres` \
             OS user to run it as, which `apt-get install postgresql-15` creates"
        ),
    }
}

/// A PostgreSQL tool, run as `postgres` when the test runs as root, in directory `cwd` (which
/// `postgres` can enter, unlike perhaps the test's own).
fn pg_tool(bin: &Path, name: &str, cwd: &Path) -> Command {
    let exe = bin.join(name);
    let mut cmd = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.current_dir(cwd).stdin(Stdio::null());
    cmd
}

async fn run(cmd: Command) -> Output {
    let program = format!("{cmd:?}");
    tokio::process::Command::from(cmd).output().await.unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A port that was free a moment ago (bound to port 0, read, closed).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// The base of the temporary directories. The server's Unix socket goes in ours, and a socket
/// path may not exceed 107 bytes, so a long `TMPDIR` is passed over for /tmp.
fn temp_base() -> PathBuf {
    let dir = std::env::temp_dir();
    if dir.as_os_str().len() <= 50 { dir } else { PathBuf::from("/tmp") }
}

fn fresh_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!(
        "{DIR_PREFIX}{}_{}_{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000
    );
    let dir = temp_base().join(name);
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Stops and removes the clusters of test processes that died without dropping them (killed, or
/// aborted): a postmaster outlives the process that started it.
fn sweep_abandoned(bin: &Path) {
    let Ok(entries) = std::fs::read_dir(temp_base()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(DIR_PREFIX).and_then(|rest| rest.split('_').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        stop_immediately(bin, &entry.path());
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

// ---------------------------------------------------------------------------------------------
// FaultProxy
// ---------------------------------------------------------------------------------------------

/// The protocol codes of the untyped first packets (in place of a protocol version).
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

/// [`FaultProxy::seen`] keeps the first this many messages.
const SEEN_CAP: usize = 50_000;

/// One protocol message that passed the proxy, for tests that check what a client really sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The proxied connection, numbered from 1 in accept order.
    pub conn: u64,
    /// Client to server (else server to client).
    pub from_client: bool,
    /// The type byte: 'P' Parse, 'B' Bind, 'E' Execute, 'S' Sync, 'Q' Query, 'Z' ReadyForQuery, ...
    pub kind: char,
    /// Parse and Bind: the prepared statement's name ("" is the unnamed one); Close: the closed
    /// statement's name (not set when a portal is closed).
    pub statement: Option<String>,
    /// Parse and Query: the SQL (first 200 characters).
    pub sql: Option<String>,
    /// ReadyForQuery: the transaction status, 'I' idle, 'T' in a transaction, 'E' failed one.
    pub status: Option<char>,
    /// False when a cut swallowed it.
    pub forwarded: bool,
}

/// A TCP proxy on 127.0.0.1 in front of a PostgreSQL server, which can cut connections: all at
/// once ([`FaultProxy::cut_all`]), on connecting ([`FaultProxy::set_refusing`]), or right after
/// a given statement committed, swallowing the reply ([`FaultProxy::cut_after_commit_of`]).
///
/// It follows the message framing of protocol v3 to see statements and replies. Clients must use
/// `sslmode=disable` (as [`FaultProxy::url_for`] does): the proxy cannot look into TLS, and it
/// answers an SSL or GSS encryption request with "not supported" itself. Cutting a connection
/// closes both sockets: the client sees the connection end, and the server ends that backend
/// (rolling back what is not committed) once it notices.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

struct Shared {
    upstream: SocketAddr,
    refusing: AtomicBool,
    rule: Mutex<Option<CutRule>>,
    cuts: AtomicUsize,
    accepted: AtomicUsize,
    refused: AtomicUsize,
    to_server: AtomicU64,
    to_client: AtomicU64,
    next_conn: AtomicU64,
    /// The tasks of the open connections, by connection number.
    conns: Mutex<HashMap<u64, JoinHandle<()>>>,
    seen: Mutex<Vec<Seen>>,
}

struct CutRule {
    marker: String,
    remaining: usize,
}

impl Shared {
    /// Whether a statement with this SQL is to be cut; uses up one of the rule's turns if so.
    fn take_turn(&self, sql: &str) -> bool {
        let mut rule = self.rule.lock().unwrap();
        match rule.as_mut() {
            Some(r) if r.remaining > 0 && sql.contains(&r.marker) => {
                r.remaining -= 1;
                true
            }
            _ => false,
        }
    }

    fn record(&self, seen: Seen) {
        let mut log = self.seen.lock().unwrap();
        if log.len() < SEEN_CAP {
            log.push(seen);
        }
    }
}

/// What the proxy knows of one connection.
#[derive(Default)]
struct ConnState {
    /// Prepared statements by name, with their SQL (Parse adds, Close of a statement removes).
    statements: HashMap<String, String>,
    /// Messages the client sent that the server answers with one ReadyForQuery each: Sync,
    /// Query, FunctionCall.
    requests: u64,
    /// ReadyForQuery messages the server sent. The first answers the startup, the n-th after it
    /// answers the n-th request, so a server message belongs to the reply of request `ready`.
    ready: u64,
    /// Armed: the request whose reply, and every later one, is held back until an idle
    /// ReadyForQuery, where the connection is cut.
    target: Option<u64>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream,
            refusing: AtomicBool::new(false),
            rule: Mutex::new(None),
            cuts: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            to_server: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
            next_conn: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        FaultProxy { addr, shared, accept }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A URL of database `db` through the proxy, as user `postgres`, with `sslmode=disable`.
    pub fn url_for(&self, db: &str) -> String {
        format!("postgres://postgres@{}/{db}?sslmode=disable", self.addr)
    }

    /// Closes every open connection (both sides) and returns once they are closed. New
    /// connections are accepted as before.
    pub async fn cut_all(&self) {
        let tasks: Vec<JoinHandle<()>> = self.shared.conns.lock().unwrap().drain().map(|(_, t)| t).collect();
        for task in &tasks {
            task.abort();
        }
        // An aborted task drops its sockets when it ends, which awaiting it waits for.
        for task in tasks {
            let _ = task.await;
        }
    }

    /// While true, new connections are accepted and closed at once, before the startup: the
    /// database looks unreachable without being stopped. Open connections are left alone (add
    /// [`FaultProxy::cut_all`] for a full outage).
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Arms the proxy for the next `times` executions of statements whose SQL contains `marker`
    /// (replacing any earlier arming; `times = 0` disarms). For each, the server's reply is held
    /// back until a ReadyForQuery with status idle, which PostgreSQL sends only after the
    /// implicit transaction committed; then the held reply is dropped and the connection cut:
    /// the change is in the database, the client only sees its connection end.
    ///
    /// An execution is a Bind of a prepared statement (named, as sqlx caches them, or unnamed)
    /// whose Parse carried the marker, whenever on the connection that Parse came, or a simple
    /// Query containing it. The proxy looks at the SQL only, so a marker in a string literal
    /// counts too.
    ///
    /// Inside a transaction block (ReadyForQuery 'T', or 'E' after an error) nothing is committed
    /// yet, so the replies are let through and the proxy stays armed until the first idle
    /// ReadyForQuery on that connection, typically the COMMIT's: the client sees its statements
    /// succeed and then its COMMIT fail, although the transaction committed. Note the cut comes
    /// at the first idle ReadyForQuery whatever happened: after a ROLLBACK, or after the marked
    /// statement failed in an implicit transaction, it cuts although nothing committed. A turn
    /// whose connection ends before its idle ReadyForQuery (closed by the client, the server or
    /// [`FaultProxy::cut_all`]) is used up without counting in [`FaultProxy::cuts`].
    pub fn cut_after_commit_of(&self, marker: &str, times: usize) {
        assert!(!marker.is_empty(), "an empty marker would match every statement");
        *self.shared.rule.lock().unwrap() = Some(CutRule { marker: marker.to_string(), remaining: times });
    }

    /// Turns of [`FaultProxy::cut_after_commit_of`] not taken yet.
    pub fn pending_cuts(&self) -> usize {
        self.shared.rule.lock().unwrap().as_ref().map_or(0, |r| r.remaining)
    }

    /// Connections cut by [`FaultProxy::cut_after_commit_of`] so far. It counts a cut before the
    /// sockets close, so when it has gone up the statement has committed.
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Waits until [`FaultProxy::cuts`] reaches `n`; panics after [`FAULT_DEADLINE`].
    pub async fn wait_for_cuts(&self, n: usize) {
        if poll(|| async { (self.cuts() >= n).then_some(()) }).await.is_err() {
            panic!("{} of {n} cuts after {FAULT_DEADLINE:?}", self.cuts());
        }
    }

    /// Connections accepted and forwarded so far (not counting refused ones).
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections closed at once while refusing.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.shared.conns.lock().unwrap().values().filter(|t| !t.is_finished()).count()
    }

    /// Bytes received from clients (and forwarded to the server).
    pub fn bytes_to_server(&self) -> u64 {
        self.shared.to_server.load(Ordering::Relaxed)
    }

    /// Bytes received from the server (forwarded to clients unless swallowed).
    pub fn bytes_to_client(&self) -> u64 {
        self.shared.to_client.load(Ordering::Relaxed)
    }

    /// The messages seen so far, in order per direction (the first 50,000).
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for (_, task) in self.shared.conns.lock().unwrap().drain() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shared.refusing.load(Ordering::SeqCst) {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst) + 1;
        // Registered under the lock it was spawned under, so cut_all cannot miss it.
        let mut conns = shared.conns.lock().unwrap();
        conns.retain(|_, task| !task.is_finished());
        let task = tokio::spawn(serve(shared.clone(), id, client));
        conns.insert(id, task);
    }
}

async fn serve(shared: Arc<Shared>, id: u64, client: TcpStream) {
    // An error only means the connection ended (reset, protocol garbage): nothing to report.
    let _ = proxy_connection(&shared, id, client).await;
    shared.conns.lock().unwrap().remove(&id);
}

async fn proxy_connection(shared: &Shared, id: u64, client: TcpStream) -> io::Result<()> {
    let server = TcpStream::connect(shared.upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut client_read = BufReader::new(client_read);
    let mut client_write = BufWriter::new(client_write);
    let mut server_read = BufReader::new(server_read);
    let mut server_write = BufWriter::new(server_write);

    // The first client message has no type byte: length (including itself), then a protocol
    // version or request code.
    loop {
        let len = client_read.read_u32().await?;
        if !(8..=10_000).contains(&len) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not a PostgreSQL startup packet"));
        }
        let mut body = vec![0; len as usize - 4];
        client_read.read_exact(&mut body).await?;
        shared.to_server.fetch_add(u64::from(len), Ordering::Relaxed);
        let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        if code == SSL_REQUEST || code == GSSENC_REQUEST {
            // "Not supported": the client goes on in plain text (or gives up, if it insists).
            client_write.write_all(b"N").await?;
            client_write.flush().await?;
            continue;
        }
        server_write.write_all(&len.to_be_bytes()).await?;
        server_write.write_all(&body).await?;
        server_write.flush().await?;
        if code == CANCEL_REQUEST {
            // The server acts on it and closes the connection; nothing follows.
            return Ok(());
        }
        break;
    }

    let state = Mutex::new(ConnState::default());
    // Whichever direction ends (end of stream, error, or a cut) ends the connection: returning
    // drops all four halves, which closes both sockets.
    tokio::select! {
        r = client_to_server(shared, id, &state, &mut client_read, &mut server_write) => r,
        r = server_to_client(shared, id, &state, &mut server_read, &mut client_write) => r,
    }
}

async fn client_to_server(
    shared: &Shared,
    id: u64,
    state: &Mutex<ConnState>,
    from: &mut BufReader<OwnedReadHalf>,
    to: &mut BufWriter<OwnedWriteHalf>,
) -> io::Result<()> {
    loop {
        let Some((kind, body)) = read_message(from).await? else {
            to.flush().await?;
            return Ok(());
        };
        shared.to_server.fetch_add(5 + body.len() as u64, Ordering::Relaxed);
        let seen = describe(id, true, kind, &body);
        {
            // Updated before the message goes on, so the state is in place before any reply.
            let mut st = state.lock().unwrap();
            match kind {
                b'P' => {
                    let name = seen.statement.clone().unwrap_or_default();
                    st.statements.insert(name, c_string(c_string(&body).1).0);
                }
                b'B' => {
                    let name = seen.statement.as_deref().unwrap_or_default();
                    if st.target.is_none() && st.statements.get(name).is_some_and(|sql| shared.take_turn(sql))
                    {
                        // Its reply is the one to the next Sync.
                        st.target = Some(st.requests + 1);
                    }
                }
                b'Q' => {
                    st.requests += 1;
                    if st.target.is_none() && shared.take_turn(&c_string(&body).0) {
                        st.target = Some(st.requests);
                    }
                }
                b'S' | b'F' => st.requests += 1,
                b'C' => {
                    if let Some(name) = &seen.statement {
                        st.statements.remove(name);
                    }
                }
                _ => {}
            }
        }
        shared.record(seen);
        write_message(to, kind, &body).await?;
        // Flush once nothing more is already here, so back-to-back messages go out together.
        if from.buffer().is_empty() {
            to.flush().await?;
        }
    }
}

async fn server_to_client(
    shared: &Shared,
    id: u64,
    state: &Mutex<ConnState>,
    from: &mut BufReader<OwnedReadHalf>,
    to: &mut BufWriter<OwnedWriteHalf>,
) -> io::Result<()> {
    // The reply being held back, while armed.
    let mut held: Vec<(u8, Vec<u8>)> = Vec::new();
    loop {
        let Some((kind, body)) = read_message(from).await? else {
            to.flush().await?;
            return Ok(());
        };
        shared.to_client.fetch_add(5 + body.len() as u64, Ordering::Relaxed);
        let hold = {
            let mut st = state.lock().unwrap();
            let reply = st.ready;
            if kind == b'Z' {
                st.ready += 1;
            }
            st.target.is_some_and(|target| reply >= target)
        };
        if !hold {
            shared.record(describe(id, false, kind, &body));
            write_message(to, kind, &body).await?;
            if from.buffer().is_empty() {
                to.flush().await?;
            }
            continue;
        }
        let status = if kind == b'Z' { body.first().copied() } else { None };
        held.push((kind, body));
        match status {
            None => {}
            Some(b'I') => {
                // Idle: the implicit transaction (or the block) has ended. Drop the reply, cut.
                for (kind, body) in held.drain(..) {
                    shared.record(Seen { forwarded: false, ..describe(id, false, kind, &body) });
                }
                // What went before the held reply still reaches the client.
                to.flush().await?;
                shared.cuts.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            Some(_) => {
                // In a transaction block: nothing is committed yet. Let the client go on (to its
                // COMMIT) and stay armed.
                for (kind, body) in held.drain(..) {
                    shared.record(describe(id, false, kind, &body));
                    write_message(to, kind, &body).await?;
                }
                to.flush().await?;
            }
        }
    }
}

/// A typed message: type byte, 4-byte big-endian length including itself, payload. `None` at a
/// clean end of stream.
async fn read_message<R: AsyncRead + Unpin>(from: &mut R) -> io::Result<Option<(u8, Vec<u8>)>> {
    let kind = match from.read_u8().await {
        Ok(kind) => kind,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = from.read_u32().await?;
    if !(4..=1 << 30).contains(&len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("message length {len}")));
    }
    let mut body = vec![0; len as usize - 4];
    from.read_exact(&mut body).await?;
    Ok(Some((kind, body)))
}

async fn write_message<W: AsyncWrite + Unpin>(to: &mut W, kind: u8, body: &[u8]) -> io::Result<()> {
    to.write_all(&[kind]).await?;
    to.write_all(&(body.len() as u32 + 4).to_be_bytes()).await?;
    to.write_all(body).await
}

/// The NUL-terminated string at the start of `bytes`, and what follows it.
fn c_string(bytes: &[u8]) -> (String, &[u8]) {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => (String::from_utf8_lossy(&bytes[..end]).into_owned(), &bytes[end + 1..]),
        None => (String::from_utf8_lossy(bytes).into_owned(), &[]),
    }
}

fn describe(conn: u64, from_client: bool, kind: u8, body: &[u8]) -> Seen {
    let short = |sql: String| sql.chars().take(200).collect::<String>();
    let mut seen = Seen {
        conn,
        from_client,
        kind: kind as char,
        statement: None,
        sql: None,
        status: None,
        forwarded: true,
    };
    match (from_client, kind) {
        // Parse: statement name, query, parameter types.
        (true, b'P') => {
            let (name, rest) = c_string(body);
            seen.statement = Some(name);
            seen.sql = Some(short(c_string(rest).0));
        }
        // Bind: portal name, statement name, parameters.
        (true, b'B') => seen.statement = Some(c_string(c_string(body).1).0),
        (true, b'Q') => seen.sql = Some(short(c_string(body).0)),
        // Close: 'S' statement or 'P' portal, then its name.
        (true, b'C') if body.first() == Some(&b'S') => seen.statement = Some(c_string(&body[1..]).0),
        (false, b'Z') => seen.status = body.first().map(|&b| b as char),
        _ => {}
    }
    seen
}
