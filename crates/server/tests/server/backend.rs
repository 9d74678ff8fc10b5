//! Which database the suite ran on: with `SUITCASE_TEST_POSTGRES`, the server's rows are
//! read back from PostgreSQL directly, so a pass cannot come from a silent SQLite fallback.

use serde_json::json;
use sqlx::Connection as _;

use crate::common::*;

#[tokio::test]
async fn the_server_writes_to_the_database_the_suite_names() {
    let f = Fleet::start().await;
    f.enrol("dev-backend", 1, json!({})).await;
    let Some(server) = postgres_server() else {
        // SQLite: the file in the test's directory is the database.
        assert!(f._dir.path().join("suitcase.db").exists());
        return;
    };
    assert!(!f._dir.path().join("suitcase.db").exists());
    sqlx::any::install_default_drivers();
    let url = format!("{server}/{}", database_name(f._dir.path()));
    let mut db = sqlx::AnyConnection::connect(&url).await.unwrap();
    let (version,): (String,) = sqlx::query_as("SELECT version()")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(version.starts_with("PostgreSQL"), "{version}");
    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM devices")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(ids, vec![("dev-backend".to_string(),)]);
    println!("server suite database: {version}");
}
