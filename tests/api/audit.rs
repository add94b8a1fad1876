//! The audit trail: append-only in the database itself, and tamper-evident through its hash chain.

use crate::helpers::{Backend, TestApp};

/// What it takes to change the audit trail behind the application's back: disable the triggers
/// (PostgreSQL) or drop them (SQLite), as only a database owner can.
async fn without_triggers(app: &TestApp, backend: Backend, sql: &str) {
    match backend {
        Backend::Postgres => {
            app.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
                .await;
            app.execute(sql).await;
            app.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
                .await;
        }
        Backend::Sqlite => {
            app.execute("DROP TRIGGER audit_log_no_update").await;
            app.execute("DROP TRIGGER audit_log_no_delete").await;
            app.execute(sql).await;
        }
    }
}

each_backend! {
    async fn the_database_refuses_to_edit_or_delete_audit_entries(backend) {
        let app = TestApp::spawn(backend).await;
        // Three keys were made for the test: three entries.
        assert_eq!(app.count_rows("audit_log").await, 3);
        for sql in [
            "UPDATE audit_log SET action = 'nothing.happened' WHERE seq = 2",
            "DELETE FROM audit_log WHERE seq = 3",
            "DELETE FROM audit_log",
            "DELETE FROM audit_head",
        ] {
            let refused = app.try_execute(sql).await.expect_err(sql);
            assert!(refused.contains("append-only"), "{sql}: {refused}");
        }
        if backend == Backend::Postgres {
            assert!(app.try_execute("TRUNCATE audit_log").await.unwrap_err().contains("append-only"));
        }
        assert_eq!(app.count_rows("audit_log").await, 3);
        let (code, out) = app.command(&["audit", "verify"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("3 chained entries checked") && out.contains("intact"), "{out}");
    }

    async fn an_entry_altered_behind_the_triggers_is_named_by_audit_verify(backend) {
        let app = TestApp::spawn(backend).await;
        without_triggers(&app, backend, "UPDATE audit_log SET actor_label = 'someone else' WHERE seq = 2").await;
        let (code, out) = app.command(&["audit", "verify"]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("BROKEN: entry 2 was altered"), "{out}");
    }

    async fn an_entry_removed_behind_the_triggers_is_found(backend) {
        let app = TestApp::spawn(backend).await;
        without_triggers(&app, backend, "DELETE FROM audit_log WHERE seq = 2").await;
        let (code, out) = app.command(&["audit", "verify"]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("BROKEN: entry 2 is missing"), "{out}");
        // Cutting off the newest entry is found too: the chain no longer ends at its recorded head.
        let app = TestApp::spawn(backend).await;
        without_triggers(&app, backend, "DELETE FROM audit_log WHERE seq = 3").await;
        let (code, out) = app.command(&["audit", "verify"]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("BROKEN: entry 3 is missing"), "{out}");
    }
}
