//! Stores for tests (this crate's, and others' with the `testing` feature): each test runs
//! against every backend there is here, SQLite in memory always and PostgreSQL when
//! `CONFLUX_TEST_POSTGRES` names a server the tests may create databases on (`scripts/test`
//! starts a private one), a fresh database each.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::{engine, Store};

/// The variable naming the test server, e.g. `postgres://conflux@127.0.0.1:5432/postgres`.
pub const POSTGRES_VAR: &str = "CONFLUX_TEST_POSTGRES";

/// An in-memory SQLite store, and a PostgreSQL one when a test server is configured.
pub fn stores() -> Vec<Store> {
    let mut stores = vec![Store::open_in_memory().expect("an in-memory store")];
    stores.extend(postgres());
    stores
}

/// A store on a new, empty PostgreSQL database, when a test server is configured.
pub fn postgres() -> Option<Store> {
    let url = postgres_database()?;
    Some(Store::open_postgres(&url).expect("the new database opens"))
}

/// The URL of a new, empty PostgreSQL database, when a test server is configured.
pub fn postgres_database() -> Option<String> {
    let Ok(admin) = std::env::var(POSTGRES_VAR) else {
        eprintln!("{POSTGRES_VAR} is not set: this test runs on SQLite only");
        return None;
    };
    Some(new_database(&admin))
}

/// The URL of a new, empty database on the server of `admin` (a URL the caller may create
/// databases with).
pub fn new_database(admin: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "conflux_unit_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let admin_url = admin.to_owned();
    let create = format!("CREATE DATABASE {name}");
    engine::off_runtime(move || {
        let mut client = postgres::Client::connect(&admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{POSTGRES_VAR}={admin_url}: {e}"));
        client.batch_execute(&create).expect("CREATE DATABASE");
    });
    let (server, _) = admin.rsplit_once('/').expect("a URL ending in /DATABASE");
    format!("{server}/{name}")
}
