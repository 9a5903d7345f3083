//! SQLite schema migrations, applied in order at start. Never edit a released migration:
//! append a new one.

use rusqlite::Connection;

use super::backend;
use crate::StoreResult;

const MIGRATIONS: &[&str] = &[
    // 1: settings, access keys and the thing registry.
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE access_keys (
        access_key_id TEXT PRIMARY KEY,
        secret_access_key TEXT NOT NULL,
        description TEXT NOT NULL,
        created_at INTEGER NOT NULL);
     CREATE TABLE thing_types (
        name TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        description TEXT,
        searchable_attributes TEXT NOT NULL,
        mqtt5_configuration TEXT,
        deprecated INTEGER NOT NULL,
        deprecation_date INTEGER,
        created_at INTEGER NOT NULL,
        tags TEXT NOT NULL);
     CREATE TABLE things (
        name TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type_name TEXT,
        attributes TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL);
     CREATE INDEX things_by_type ON things (type_name, name);
     CREATE TABLE thing_attributes (
        thing_name TEXT NOT NULL REFERENCES things (name) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (thing_name, key));
     CREATE INDEX thing_attributes_by_value ON thing_attributes (key, value, thing_name);
     CREATE TABLE thing_groups (
        name TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        parent_name TEXT REFERENCES thing_groups (name),
        description TEXT,
        attributes TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        tags TEXT NOT NULL,
        query_string TEXT,
        query_version TEXT,
        index_name TEXT,
        status TEXT);
     CREATE INDEX thing_groups_by_parent ON thing_groups (parent_name, name);
     CREATE TABLE thing_group_members (
        group_name TEXT NOT NULL REFERENCES thing_groups (name) ON DELETE CASCADE,
        thing_name TEXT NOT NULL REFERENCES things (name) ON DELETE CASCADE,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (group_name, thing_name));
     CREATE INDEX thing_group_members_by_thing ON thing_group_members (thing_name, group_name);",
    // 2: the fleet index: case-folded lookups by thing name and attribute value, and a quick
    // list of the dynamic groups.
    "CREATE INDEX things_by_folded_name ON things (lower(name));
     CREATE INDEX thing_attributes_by_folded_value
        ON thing_attributes (key, lower(value), thing_name);
     CREATE INDEX thing_groups_dynamic ON thing_groups (name) WHERE query_string IS NOT NULL;",
    // 3: device identity: certificates and CA certificates, the certificates attached to
    // things, policies with their versions and targets, and client presence. A thing with an
    // attached principal cannot be deleted (the foreign key has no cascade); a thing group's
    // policy attachments go with the group.
    "CREATE TABLE ca_certificates (
        id TEXT PRIMARY KEY,
        pem TEXT NOT NULL,
        subject TEXT NOT NULL,
        status TEXT NOT NULL,
        auto_registration TEXT NOT NULL,
        registration_config TEXT,
        mode TEXT NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        version INTEGER NOT NULL,
        generation_id TEXT NOT NULL);
     CREATE INDEX ca_certificates_by_created ON ca_certificates (created_at, id);
     CREATE INDEX ca_certificates_by_subject ON ca_certificates (subject);
     CREATE TABLE certificates (
        id TEXT PRIMARY KEY,
        pem TEXT NOT NULL,
        status TEXT NOT NULL,
        ca_certificate_id TEXT,
        mode TEXT NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        version INTEGER NOT NULL,
        generation_id TEXT NOT NULL);
     CREATE INDEX certificates_by_created ON certificates (created_at, id);
     CREATE INDEX certificates_by_ca ON certificates (ca_certificate_id, created_at, id);
     CREATE TABLE thing_principals (
        thing_name TEXT NOT NULL REFERENCES things (name),
        certificate_id TEXT NOT NULL REFERENCES certificates (id),
        exclusive INTEGER NOT NULL,
        attached_at INTEGER NOT NULL,
        PRIMARY KEY (thing_name, certificate_id));
     CREATE INDEX thing_principals_by_certificate ON thing_principals (certificate_id, thing_name);
     CREATE TABLE policies (
        name TEXT PRIMARY KEY,
        default_version INTEGER NOT NULL,
        next_version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        generation_id TEXT NOT NULL);
     CREATE TABLE policy_versions (
        policy_name TEXT NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        document TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (policy_name, version));
     CREATE TABLE policy_targets (
        policy_name TEXT NOT NULL REFERENCES policies (name),
        target TEXT NOT NULL,
        certificate_id TEXT REFERENCES certificates (id),
        thing_group_name TEXT REFERENCES thing_groups (name) ON DELETE CASCADE,
        attached_at INTEGER NOT NULL,
        PRIMARY KEY (policy_name, target));
     CREATE INDEX policy_targets_by_target ON policy_targets (target, policy_name);
     CREATE INDEX policy_targets_by_certificate ON policy_targets (certificate_id)
        WHERE certificate_id IS NOT NULL;
     CREATE INDEX policy_targets_by_group ON policy_targets (thing_group_name)
        WHERE thing_group_name IS NOT NULL;
     CREATE TABLE presence (
        client_id TEXT PRIMARY KEY,
        connected INTEGER NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        disconnect_reason TEXT,
        session_identifier TEXT NOT NULL,
        version INTEGER NOT NULL);",
    // 4: the MQTT broker's persistent sessions, their queued QoS 1 messages, retained messages.
    "CREATE TABLE mqtt_sessions (
        client_id TEXT PRIMARY KEY,
        expiry_secs INTEGER NOT NULL,
        subscriptions TEXT NOT NULL,
        disconnected_at INTEGER);
     CREATE TABLE mqtt_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        client_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        qos INTEGER NOT NULL,
        retain INTEGER NOT NULL,
        properties TEXT,
        enqueued_at INTEGER NOT NULL);
     CREATE INDEX mqtt_queue_by_client ON mqtt_queue (client_id, id);
     CREATE TABLE mqtt_retained (
        topic TEXT PRIMARY KEY,
        payload BLOB NOT NULL,
        qos INTEGER NOT NULL,
        properties TEXT,
        updated_at INTEGER NOT NULL);",
    // 5: jobs: jobs with their jobProcessDetails counters, executions keyed by job, thing and
    // execution number (`latest` marks each thing's newest, retries keep the older ones),
    // the things a rollout has not notified yet, and job templates. Executions do not
    // reference things: a deleted thing's executions stay, as REMOVED.
    "CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        target_selection TEXT NOT NULL,
        targets TEXT NOT NULL,
        document TEXT NOT NULL,
        document_before_substitution TEXT,
        document_source TEXT,
        description TEXT,
        config TEXT NOT NULL,
        document_parameters TEXT NOT NULL,
        job_template_arn TEXT,
        namespace_id TEXT,
        tags TEXT NOT NULL,
        force_canceled INTEGER NOT NULL,
        reason_code TEXT,
        comment TEXT,
        created_at INTEGER NOT NULL,
        last_updated_at INTEGER NOT NULL,
        completed_at INTEGER,
        version INTEGER NOT NULL,
        n_queued INTEGER NOT NULL DEFAULT 0,
        n_in_progress INTEGER NOT NULL DEFAULT 0,
        n_succeeded INTEGER NOT NULL DEFAULT 0,
        n_failed INTEGER NOT NULL DEFAULT 0,
        n_timed_out INTEGER NOT NULL DEFAULT 0,
        n_rejected INTEGER NOT NULL DEFAULT 0,
        n_removed INTEGER NOT NULL DEFAULT 0,
        n_canceled INTEGER NOT NULL DEFAULT 0);
     CREATE INDEX jobs_by_status ON jobs (status, job_id);
     CREATE TABLE job_executions (
        job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        thing_name TEXT NOT NULL,
        execution_number INTEGER NOT NULL,
        latest INTEGER NOT NULL,
        status TEXT NOT NULL,
        status_details TEXT NOT NULL,
        force_canceled INTEGER NOT NULL,
        queued_at INTEGER NOT NULL,
        started_at INTEGER,
        last_updated_at INTEGER NOT NULL,
        version_number INTEGER NOT NULL,
        retry_attempt INTEGER NOT NULL,
        in_progress_timeout_at INTEGER,
        step_timeout_at INTEGER,
        timeout_at INTEGER,
        PRIMARY KEY (job_id, thing_name, execution_number));
     CREATE INDEX job_executions_latest ON job_executions (job_id, latest, thing_name);
     CREATE INDEX job_executions_by_thing ON job_executions (thing_name, status);
     CREATE INDEX job_executions_by_status ON job_executions (job_id, status);
     CREATE INDEX job_executions_released ON job_executions (job_id, queued_at)
        WHERE execution_number = 1;
     CREATE INDEX job_executions_timers ON job_executions (timeout_at)
        WHERE timeout_at IS NOT NULL;
     CREATE TABLE job_pending_things (
        job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        thing_name TEXT NOT NULL,
        PRIMARY KEY (job_id, thing_name));
     CREATE TABLE job_templates (
        template_id TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        document TEXT,
        document_source TEXT,
        config TEXT NOT NULL,
        maintenance_windows TEXT NOT NULL,
        source_job_arn TEXT,
        tags TEXT NOT NULL,
        created_at INTEGER NOT NULL);",
    // 6: topic rules.
    r#"CREATE TABLE topic_rules (
        name TEXT PRIMARY KEY,
        sql TEXT NOT NULL,
        topic_pattern TEXT NOT NULL,
        description TEXT,
        aws_iot_sql_version TEXT NOT NULL,
        disabled INTEGER NOT NULL,
        actions TEXT NOT NULL,
        error_action TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        version INTEGER NOT NULL);
     CREATE INDEX topic_rules_by_topic ON topic_rules (topic_pattern, name);"#,
    // 7: topic rule destinations (http).
    r#"CREATE TABLE topic_rule_destinations (
        arn TEXT PRIMARY KEY,
        confirmation_url TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        status_reason TEXT,
        confirmation_token TEXT UNIQUE,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        version INTEGER NOT NULL);"#,
];

/// Brings the schema up to date inside one transaction.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn.transaction().map_err(backend)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        .map_err(backend)?;
    let applied: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version > applied {
            tx.execute_batch(sql).map_err(backend)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES (?1)",
                [version],
            )
            .map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)
}
