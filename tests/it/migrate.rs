//! `satellite migrate --to-postgres URL` against a real PostgreSQL cluster:
//! a stopped satellite with routers, usage, users and history moves into an
//! empty database row for row; refusals (a database in use, a wrong
//! password, a running server) write nothing and say what to do.

use crate::client::register;
use crate::fixture::Server;
use crate::postgres::Cluster;
use serde_json::{json, Value};
use std::process::Command;

fn migrate(server: &Server, url: &str, password_file: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_satellite"))
        .arg("-c")
        .arg(&server.config_path)
        .args(["migrate", "--to-postgres", url, "--password-file"])
        .arg(password_file)
        .arg("--json")
        .output()
        .expect("satellite migrate")
}

/// Every table's rows in the embedded database, in key order, as text.
fn sqlite_tables(server: &Server) -> Vec<(String, Vec<String>)> {
    let db = rusqlite::Connection::open(server.data_dir().join("satellite.db")).expect("db");
    let mut names: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("names")
        .collect::<Result<_, _>>()
        .expect("names");
    names.sort();
    names
        .into_iter()
        .map(|table| {
            let mut stmt = db
                .prepare(&format!("SELECT * FROM \"{table}\""))
                .expect("select");
            let width = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    let cells: Vec<String> = (0..width)
                        .map(|i| match r.get_ref(i).expect("cell") {
                            rusqlite::types::ValueRef::Null => "NULL".to_string(),
                            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                            rusqlite::types::ValueRef::Real(f) => f.to_string(),
                            rusqlite::types::ValueRef::Text(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                            rusqlite::types::ValueRef::Blob(b) => hex(b),
                        })
                        .collect();
                    Ok(cells.join("|"))
                })
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("rows");
            rows.sort();
            (table, rows)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The same tables read back from PostgreSQL, cells rendered alike.
fn postgres_tables(client: &mut postgres::Client, names: &[String]) -> Vec<(String, Vec<String>)> {
    names
        .iter()
        .map(|table| {
            let rows = client
                .query(&format!("SELECT * FROM \"{table}\""), &[])
                .expect("select");
            let mut rendered: Vec<String> = rows
                .iter()
                .map(|row| {
                    let cells: Vec<String> = row
                        .columns()
                        .iter()
                        .enumerate()
                        .map(|(i, c)| match *c.type_() {
                            postgres::types::Type::INT8 => row
                                .get::<_, Option<i64>>(i)
                                .map_or("NULL".into(), |n| n.to_string()),
                            postgres::types::Type::BYTEA => row
                                .get::<_, Option<Vec<u8>>>(i)
                                .map_or("NULL".into(), |b| hex(&b)),
                            _ => row
                                .get::<_, Option<String>>(i)
                                .unwrap_or_else(|| "NULL".into()),
                        })
                        .collect();
                    cells.join("|")
                })
                .collect();
            rendered.sort();
            (table.clone(), rendered)
        })
        .collect()
}

#[test]
fn a_stopped_satellite_moves_into_postgres_row_for_row_and_refusals_write_nothing() {
    if crate::fixture::skipped_on_postgres("migrate") {
        return;
    }
    let Some(cluster) = Cluster::start("migrate") else {
        return;
    };
    // A cloud with routers, usage short of its licenses, a user, an API
    // client, reports and events.
    let (mut server, token) = Server::cloud_with_lab("5");
    let router = register(&server, "FOCMOVE0001", &token);
    let (status, answer) = router.client.post(&json!({
        "type": "ENTITLEMENT", "message_id": "move-1",
        "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 7}]
    }));
    assert_eq!(status, 200, "{answer}");
    register(&server, "FOCMOVE0002", &token);
    server.user("olga", "viewer", &["Lab"], "a long enough password");
    server.cli_ok(&["client", "add", "nagios", "--role", "viewer", "--va", "Lab"]);
    server.cli_ok(&["report", "generate", "--va", "Lab"]);
    let secret = server.dir.path().join("db-password");
    std::fs::write(&secret, "the satellite's db password\n").expect("password file");
    let url = cluster.database("satellite", "the satellite's db password");

    // Not while it serves.
    let out = migrate(&server, &url, &secret);
    assert!(!out.status.success(), "refused while serving");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stop") && err.trim().lines().count() == 1,
        "{err}"
    );
    server.stop();

    // A wrong password: one line, naming the fix, nothing written.
    let wrong = server.dir.path().join("wrong-password");
    std::fs::write(&wrong, "not it").expect("write");
    let out = migrate(&server, &url, &wrong);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect")
            && err.contains("--password-file")
            && !err.contains("not it"),
        "{err}"
    );

    let out = migrate(&server, &url, &secret);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(summary["rows"].as_u64().unwrap_or(0) > 10, "{summary}");
    assert!(
        !summary.to_string().contains("the satellite's db password"),
        "no password in the output"
    );

    // Every table, row for row.
    let embedded = sqlite_tables(&server);
    let names: Vec<String> = embedded.iter().map(|(t, _)| t.clone()).collect();
    let mut client = cluster.client("satellite");
    let moved = postgres_tables(&mut client, &names);
    for ((table, ours), (_, theirs)) in embedded.iter().zip(moved.iter()) {
        assert_eq!(ours, theirs, "table {table} differs");
    }
    assert!(
        embedded
            .iter()
            .any(|(t, rows)| t == "pools" && !rows.is_empty()),
        "the pools moved with their usage"
    );
    let in_use: i64 = client
        .query_one(
            "SELECT in_use FROM pools WHERE tag = 'ESS-AC-10G-RTU-1'",
            &[],
        )
        .expect("pool")
        .get(0);
    assert_eq!(in_use, 7, "usage not counted twice on its way in");
    // The triggers keep each pool the sum of its usage: a row added,
    // changed in place, moved to another tag and removed.
    let pool = |client: &mut postgres::Client, tag: &str| -> i64 {
        client
            .query_opt("SELECT in_use FROM pools WHERE tag = $1", &[&tag])
            .expect("pool")
            .map_or(0, |r| r.get(0))
    };
    client
        .batch_execute(
            "INSERT INTO entitlement_usage (instance_id, virtual_account_id, tag, count, requested_at)
             SELECT instance_id, virtual_account_id, 'ADV-AC-10G-RTU-1', 2, 0
               FROM entitlement_usage WHERE tag = 'ESS-AC-10G-RTU-1'",
        )
        .expect("usage added");
    assert_eq!(pool(&mut client, "ADV-AC-10G-RTU-1"), 2);
    client
        .batch_execute("UPDATE entitlement_usage SET count = 5 WHERE tag = 'ADV-AC-10G-RTU-1'")
        .expect("count changed");
    assert_eq!(pool(&mut client, "ADV-AC-10G-RTU-1"), 5);
    client
        .batch_execute(
            "UPDATE entitlement_usage SET tag = 'CHASSIS-X' WHERE tag = 'ADV-AC-10G-RTU-1'",
        )
        .expect("usage moved");
    assert_eq!(pool(&mut client, "ADV-AC-10G-RTU-1"), 0);
    assert_eq!(pool(&mut client, "CHASSIS-X"), 5);
    client
        .batch_execute("DELETE FROM entitlement_usage WHERE tag = 'CHASSIS-X'")
        .expect("usage removed");
    assert_eq!(pool(&mut client, "CHASSIS-X"), 0);
    assert_eq!(
        pool(&mut client, "ESS-AC-10G-RTU-1"),
        7,
        "the other pool untouched"
    );
    // New rows continue after the copied ids.
    let next: i64 = client
        .query_one(
            "INSERT INTO accounts (name, created_at) VALUES ('After', 0) RETURNING id",
            &[],
        )
        .expect("insert")
        .get(0);
    let highest: i64 = client
        .query_one("SELECT MAX(id) FROM accounts WHERE name <> 'After'", &[])
        .expect("max")
        .get(0);
    assert!(next > highest, "{next} after {highest}");
    let version: i64 = client
        .query_one("SELECT MAX(version) FROM schema_migrations", &[])
        .expect("version")
        .get(0);
    assert_eq!(version, 13);

    // Again into the same database: refused, nothing changed.
    let before: i64 = client
        .query_one("SELECT COUNT(*) FROM events", &[])
        .expect("count")
        .get(0);
    let out = migrate(&server, &url, &secret);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not empty") && err.contains("createdb"),
        "{err}"
    );
    let after: i64 = client
        .query_one("SELECT COUNT(*) FROM events", &[])
        .expect("count")
        .get(0);
    assert_eq!(before, after);
}
