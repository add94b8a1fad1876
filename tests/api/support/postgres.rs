//! Finds a PostgreSQL server for the test suite, or starts one, and makes a fresh database per test.
//!
//! In order: `COUNTERFOIL_TEST_DATABASE_URL` or `DATABASE_URL` if set; the `counterfoil_test` role on
//! a local server if it already works; as root, the Debian cluster (started with `pg_ctlcluster`
//! when down, the role created, with CREATEDB and CREATEROLE, through `runuser -u postgres
//! psql`); otherwise a private cluster
//! under `target/` made with `initdb` and started with `pg_ctl`. If none of those can work the
//! suite stops and says exactly what is missing.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, Row};

const ROLE: &str = "counterfoil_test";
const PRIVATE_PORT: u16 = 55432;

static SERVER_URL: OnceLock<String> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The URL of a server where we may create databases (its path names the maintenance database).
pub fn server_url() -> &'static str {
    SERVER_URL.get_or_init(|| {
        let url = find_or_start().unwrap_or_else(|why| {
            panic!(
                "\n\nThe PostgreSQL half of the test suite has no server to run on.\n{why}\n\
                 Fix one of these and run `cargo test` again:\n  \
                 - set DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/postgres (USER needs CREATEDB and CREATEROLE), or\n  \
                 - install PostgreSQL 15 (Debian/Ubuntu: apt-get install postgresql-15) so that\n    \
                 `pg_ctlcluster` (as root) or `initdb` and `pg_ctl` (as any other user) are available.\n\n"
            )
        });
        drop_databases_of_finished_runs(&url);
        url
    })
}

fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    // Runs on its own thread, so it works from inside a tokio test too.
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(future)
        })
        .join()
        .expect("no panic")
    })
}

fn can_connect(url: &str) -> bool {
    block_on(async {
        tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url))
            .await
            .is_ok_and(|c| c.is_ok())
    })
}

fn run(command: &mut Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("could not run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn find_or_start() -> Result<String, String> {
    for var in ["COUNTERFOIL_TEST_DATABASE_URL", "DATABASE_URL"] {
        if let Ok(url) = std::env::var(var) {
            if url.starts_with("postgres") {
                return if can_connect(&url) {
                    Ok(url)
                } else {
                    Err(format!(
                        "{var} is set, but no connection could be made to it."
                    ))
                };
            }
        }
    }
    if is_root() && on_path("pg_ctlcluster") {
        return debian_cluster();
    }
    if on_path("initdb") && on_path("pg_ctl") {
        return private_cluster();
    }
    Err(
        "Neither DATABASE_URL, nor pg_ctlcluster (as root), nor initdb and pg_ctl were found."
            .into(),
    )
}

/// The system cluster Debian's postgresql package made (`pg_lsclusters`), started if it is down.
fn debian_cluster() -> Result<String, String> {
    let listing = run(Command::new("pg_lsclusters").arg("--no-header"))?;
    let cluster = listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.len() >= 4)
        .ok_or("pg_lsclusters lists no cluster: create one with `pg_createcluster 15 main`.")?;
    let (version, name, port, status) = (cluster[0], cluster[1], cluster[2], cluster[3]);
    let url = format!("postgres://{ROLE}:{ROLE}@127.0.0.1:{port}/postgres");
    if status != "online" {
        run(Command::new("pg_ctlcluster").args([version, name, "start"]))?;
    }
    // CREATEROLE: the production-roles test makes an application role of its own.
    let sql = format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN \
         CREATE ROLE {ROLE} LOGIN CREATEDB CREATEROLE PASSWORD '{ROLE}'; \
         ELSE ALTER ROLE {ROLE} CREATEDB CREATEROLE; END IF; END $$;"
    );
    run(Command::new("runuser").args([
        "-u",
        "postgres",
        "--",
        "psql",
        "-p",
        port,
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        &sql,
    ]))?;
    if can_connect(&url) {
        Ok(url)
    } else {
        Err(format!(
            "Cluster {version}/{name} is up, but {ROLE} cannot log in over TCP on port {port}."
        ))
    }
}

/// A cluster of our own under target/, for a developer who is not root.
fn private_cluster() -> Result<String, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-postgres");
    let url = format!("postgres://{ROLE}@127.0.0.1:{PRIVATE_PORT}/postgres");
    if can_connect(&url) {
        return Ok(url);
    }
    if !dir.join("PG_VERSION").exists() {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        run(Command::new("initdb").arg("-D").arg(&dir).args([
            "-U",
            ROLE,
            "--auth=trust",
            "--no-sync",
        ]))?;
    }
    let options = format!(
        "-p {PRIVATE_PORT} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
        dir.display()
    );
    run(Command::new("pg_ctl")
        .arg("-D")
        .arg(&dir)
        .args(["-o", &options, "-l"])
        .arg(dir.join("server.log"))
        .args(["-w", "start"]))?;
    if can_connect(&url) {
        Ok(url)
    } else {
        Err(format!(
            "Started a private cluster in {}, but cannot connect to it.",
            dir.display()
        ))
    }
}

fn database_url(name: &str) -> String {
    let server = server_url();
    let base = server
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(server);
    format!("{base}/{name}")
}

/// Databases are named `cf_test_<pid>_<n>`; those of processes that have ended are dropped.
fn drop_databases_of_finished_runs(server: &str) {
    block_on(async {
        let Ok(mut conn) = PgConnection::connect(server).await else {
            return;
        };
        let Ok(rows) =
            sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'cf_test_%'")
                .fetch_all(&mut conn)
                .await
        else {
            return;
        };
        for row in rows {
            let name: String = row.get(0);
            let pid: Option<u32> = name.split('_').nth(2).and_then(|p| p.parse().ok());
            let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        }
    });
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_database() -> String {
    let server = server_url().to_owned();
    let name = format!(
        "cf_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&server)
        .await
        .expect("connect to the test server");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&pool)
        .await
        .expect("create a test database");
    pool.close().await;
    database_url(&name)
}
