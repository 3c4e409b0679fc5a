//! Test support shared by the integration tests of the workspace: a moto S3
//! server on a free loopback port, a fault-injecting HTTP proxy to put in
//! front of it ([`FaultProxy`]), the paths of DuckDB's httpfs and delta
//! extensions from the `duckdb-extension-httpfs` and `duckdb-extension-delta`
//! wheels, and the bad-input [`corpus`]. Nothing here is used in production.

pub mod corpus;
pub mod proxy;

pub use proxy::{Fault, FaultKind, FaultProxy, Injection, Op, Rule, Select};

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A moto S3 server, stopped on drop; its output goes to a log file that is
/// shown if it fails to start.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    _log_dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// A moto server that checks every request's signature against its IAM
    /// users (`INITIAL_NO_AUTH_ACTION_COUNT=0`): with no users, any key is
    /// refused, as a wrong AWS_ACCESS_KEY_ID is on AWS.
    pub fn start_authenticating() -> Moto {
        Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")])
    }

    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let port = free_port();
        let log_dir = tempfile::tempdir().expect("tempdir");
        let log_path = log_dir.path().join("moto.log");
        let log = std::fs::File::create(&log_path).expect("moto log");
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("moto log"))
            .stderr(log)
            .spawn()
            .expect("python3 -m moto.server (pip install 'moto[server]')");
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _log_dir: log_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto exited with {status} (pip install 'moto[server]'): {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The httpfs extension for the bundled DuckDB 1.5.5, from the
/// `duckdb-extension-httpfs==1.5.5` wheel (`.ci/run` installs it).
pub fn httpfs_extension() -> String {
    wheel_extension("httpfs")
}

/// The delta extension for the bundled DuckDB 1.5.5, from the
/// `duckdb-extension-delta==1.5.5` wheel (`.ci/run` installs it).
pub fn delta_extension() -> String {
    wheel_extension("delta")
}

/// `<name>.duckdb_extension` of the `duckdb-extension-<name>==1.5.5` wheel.
fn wheel_extension(name: &str) -> String {
    let module = format!("duckdb_extension_{name}");
    let out = Command::new("python3")
        .args([
            "-c",
            &format!("import {module}, os; print(os.path.dirname({module}.__file__))"),
        ])
        .output()
        .expect("python3 runs");
    let dir = String::from_utf8_lossy(&out.stdout);
    let path = Path::new(dir.trim()).join(format!("extensions/v1.5.5/{name}.duckdb_extension"));
    assert!(
        out.status.success() && path.exists(),
        "the {name} extension is missing: pip install 'duckdb-extension-{name}==1.5.5'"
    );
    path.display().to_string()
}
