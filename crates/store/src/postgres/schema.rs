//! PostgreSQL schema migrations, applied in order at start. Never edit a released migration:
//! append a new one. Migration N here creates what SQLite's migration N creates.
//!
//! Type choices, so both backends behave alike: every name or key that is compared or ordered
//! is `TEXT COLLATE "C"` (byte order, as SQLite's BINARY collation; the database's default
//! collation may sort by locale rules), integers and timestamps are `BIGINT` (SQLite's
//! 64-bit INTEGER), and the JSON columns are `TEXT` holding [`crate::codec`]'s encoding.

use super::backend;
use crate::StoreResult;

/// The `pg_advisory_xact_lock` key that serializes migrations: several nodes may start at
/// once against one database, and only one of them may create the tables. ("drover" in
/// ASCII, so it is recognisable in `pg_locks`.)
const MIGRATION_LOCK: i64 = 0x6472_6f76_6572;

const MIGRATIONS: &[&str] = &[
    // 1: settings, access keys and the thing registry.
    r#"CREATE TABLE settings (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE access_keys (
        access_key_id TEXT COLLATE "C" PRIMARY KEY,
        secret_access_key TEXT NOT NULL,
        description TEXT NOT NULL,
        created_at BIGINT NOT NULL);
     CREATE TABLE thing_types (
        name TEXT COLLATE "C" PRIMARY KEY,
        id TEXT COLLATE "C" NOT NULL,
        description TEXT,
        searchable_attributes TEXT NOT NULL,
        mqtt5_configuration TEXT,
        deprecated BOOLEAN NOT NULL,
        deprecation_date BIGINT,
        created_at BIGINT NOT NULL,
        tags TEXT NOT NULL);
     CREATE TABLE things (
        name TEXT COLLATE "C" PRIMARY KEY,
        id TEXT COLLATE "C" NOT NULL UNIQUE,
        type_name TEXT COLLATE "C",
        attributes TEXT NOT NULL,
        version BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL);
     CREATE INDEX things_by_type ON things (type_name, name);
     CREATE TABLE thing_attributes (
        thing_name TEXT COLLATE "C" NOT NULL REFERENCES things (name) ON DELETE CASCADE,
        key TEXT COLLATE "C" NOT NULL,
        value TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (thing_name, key));
     CREATE INDEX thing_attributes_by_value ON thing_attributes (key, value, thing_name);
     CREATE TABLE thing_groups (
        name TEXT COLLATE "C" PRIMARY KEY,
        id TEXT COLLATE "C" NOT NULL UNIQUE,
        parent_name TEXT COLLATE "C" REFERENCES thing_groups (name),
        description TEXT,
        attributes TEXT NOT NULL,
        version BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        tags TEXT NOT NULL,
        query_string TEXT,
        query_version TEXT,
        index_name TEXT,
        status TEXT);
     CREATE INDEX thing_groups_by_parent ON thing_groups (parent_name, name);
     CREATE TABLE thing_group_members (
        group_name TEXT COLLATE "C" NOT NULL REFERENCES thing_groups (name) ON DELETE CASCADE,
        thing_name TEXT COLLATE "C" NOT NULL REFERENCES things (name) ON DELETE CASCADE,
        added_at BIGINT NOT NULL,
        PRIMARY KEY (group_name, thing_name));
     CREATE INDEX thing_group_members_by_thing ON thing_group_members (thing_name, group_name);"#,
    // 2: the fleet index: case-folded lookups by thing name and attribute value, and a quick
    // list of the dynamic groups. lower() of a COLLATE "C" column keeps byte order.
    r#"CREATE INDEX things_by_folded_name ON things (lower(name));
     CREATE INDEX thing_attributes_by_folded_value
        ON thing_attributes (key, lower(value), thing_name);
     CREATE INDEX thing_groups_dynamic ON thing_groups (name) WHERE query_string IS NOT NULL;"#,
    // 3: device identity, as SQLite's migration 3.
    r#"CREATE TABLE ca_certificates (
        id TEXT COLLATE "C" PRIMARY KEY,
        pem TEXT NOT NULL,
        subject TEXT COLLATE "C" NOT NULL,
        status TEXT NOT NULL,
        auto_registration TEXT NOT NULL,
        registration_config TEXT,
        mode TEXT NOT NULL,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version BIGINT NOT NULL,
        generation_id TEXT NOT NULL);
     CREATE INDEX ca_certificates_by_created ON ca_certificates (created_at, id);
     CREATE INDEX ca_certificates_by_subject ON ca_certificates (subject);
     CREATE TABLE certificates (
        id TEXT COLLATE "C" PRIMARY KEY,
        pem TEXT NOT NULL,
        status TEXT NOT NULL,
        ca_certificate_id TEXT COLLATE "C",
        mode TEXT NOT NULL,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version BIGINT NOT NULL,
        generation_id TEXT NOT NULL);
     CREATE INDEX certificates_by_created ON certificates (created_at, id);
     CREATE INDEX certificates_by_ca ON certificates (ca_certificate_id, created_at, id);
     CREATE TABLE thing_principals (
        thing_name TEXT COLLATE "C" NOT NULL REFERENCES things (name),
        certificate_id TEXT COLLATE "C" NOT NULL REFERENCES certificates (id),
        exclusive BOOLEAN NOT NULL,
        attached_at BIGINT NOT NULL,
        PRIMARY KEY (thing_name, certificate_id));
     CREATE INDEX thing_principals_by_certificate ON thing_principals (certificate_id, thing_name);
     CREATE TABLE policies (
        name TEXT COLLATE "C" PRIMARY KEY,
        default_version BIGINT NOT NULL,
        next_version BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        generation_id TEXT NOT NULL);
     CREATE TABLE policy_versions (
        policy_name TEXT COLLATE "C" NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
        version BIGINT NOT NULL,
        document TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (policy_name, version));
     CREATE TABLE policy_targets (
        policy_name TEXT COLLATE "C" NOT NULL REFERENCES policies (name),
        target TEXT COLLATE "C" NOT NULL,
        certificate_id TEXT COLLATE "C" REFERENCES certificates (id),
        thing_group_name TEXT COLLATE "C" REFERENCES thing_groups (name) ON DELETE CASCADE,
        attached_at BIGINT NOT NULL,
        PRIMARY KEY (policy_name, target));
     CREATE INDEX policy_targets_by_target ON policy_targets (target, policy_name);
     CREATE INDEX policy_targets_by_certificate ON policy_targets (certificate_id)
        WHERE certificate_id IS NOT NULL;
     CREATE INDEX policy_targets_by_group ON policy_targets (thing_group_name)
        WHERE thing_group_name IS NOT NULL;
     CREATE TABLE presence (
        client_id TEXT COLLATE "C" PRIMARY KEY,
        connected BOOLEAN NOT NULL,
        timestamp_ms BIGINT NOT NULL,
        disconnect_reason TEXT,
        session_identifier TEXT NOT NULL,
        version BIGINT NOT NULL);"#,
    // 4: the MQTT broker's persistent sessions, their queued QoS 1 messages, retained messages.
    r#"CREATE TABLE mqtt_sessions (
        client_id TEXT COLLATE "C" PRIMARY KEY,
        expiry_secs BIGINT NOT NULL,
        subscriptions TEXT NOT NULL,
        disconnected_at BIGINT);
     CREATE TABLE mqtt_queue (
        id BIGSERIAL PRIMARY KEY,
        client_id TEXT COLLATE "C" NOT NULL,
        topic TEXT NOT NULL,
        payload BYTEA NOT NULL,
        qos SMALLINT NOT NULL,
        retain BOOLEAN NOT NULL,
        properties TEXT,
        enqueued_at BIGINT NOT NULL);
     CREATE INDEX mqtt_queue_by_client ON mqtt_queue (client_id, id);
     CREATE TABLE mqtt_retained (
        topic TEXT COLLATE "C" PRIMARY KEY,
        payload BYTEA NOT NULL,
        qos SMALLINT NOT NULL,
        properties TEXT,
        updated_at BIGINT NOT NULL);"#,
    // 5: jobs, as SQLite's migration 5.
    r#"CREATE TABLE jobs (
        job_id TEXT COLLATE "C" PRIMARY KEY,
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
        force_canceled BOOLEAN NOT NULL,
        reason_code TEXT,
        comment TEXT,
        created_at BIGINT NOT NULL,
        last_updated_at BIGINT NOT NULL,
        completed_at BIGINT,
        version BIGINT NOT NULL,
        n_queued BIGINT NOT NULL DEFAULT 0,
        n_in_progress BIGINT NOT NULL DEFAULT 0,
        n_succeeded BIGINT NOT NULL DEFAULT 0,
        n_failed BIGINT NOT NULL DEFAULT 0,
        n_timed_out BIGINT NOT NULL DEFAULT 0,
        n_rejected BIGINT NOT NULL DEFAULT 0,
        n_removed BIGINT NOT NULL DEFAULT 0,
        n_canceled BIGINT NOT NULL DEFAULT 0);
     CREATE INDEX jobs_by_status ON jobs (status, job_id);
     CREATE TABLE job_executions (
        job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        thing_name TEXT COLLATE "C" NOT NULL,
        execution_number BIGINT NOT NULL,
        latest BOOLEAN NOT NULL,
        status TEXT NOT NULL,
        status_details TEXT NOT NULL,
        force_canceled BOOLEAN NOT NULL,
        queued_at BIGINT NOT NULL,
        started_at BIGINT,
        last_updated_at BIGINT NOT NULL,
        version_number BIGINT NOT NULL,
        retry_attempt BIGINT NOT NULL,
        in_progress_timeout_at BIGINT,
        step_timeout_at BIGINT,
        timeout_at BIGINT,
        PRIMARY KEY (job_id, thing_name, execution_number));
     CREATE INDEX job_executions_latest ON job_executions (job_id, latest, thing_name);
     CREATE INDEX job_executions_by_thing ON job_executions (thing_name, status);
     CREATE INDEX job_executions_by_status ON job_executions (job_id, status);
     CREATE INDEX job_executions_released ON job_executions (job_id, queued_at)
        WHERE execution_number = 1;
     CREATE INDEX job_executions_timers ON job_executions (timeout_at)
        WHERE timeout_at IS NOT NULL;
     CREATE TABLE job_pending_things (
        job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        thing_name TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (job_id, thing_name));
     CREATE TABLE job_templates (
        template_id TEXT COLLATE "C" PRIMARY KEY,
        description TEXT NOT NULL,
        document TEXT,
        document_source TEXT,
        config TEXT NOT NULL,
        maintenance_windows TEXT NOT NULL,
        source_job_arn TEXT,
        tags TEXT NOT NULL,
        created_at BIGINT NOT NULL);"#,
    // 6: topic rules.
    r#"CREATE TABLE topic_rules (
        name TEXT COLLATE "C" PRIMARY KEY,
        sql TEXT NOT NULL,
        topic_pattern TEXT COLLATE "C" NOT NULL,
        description TEXT,
        aws_iot_sql_version TEXT NOT NULL,
        disabled BOOLEAN NOT NULL,
        actions TEXT NOT NULL,
        error_action TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version BIGINT NOT NULL);
     CREATE INDEX topic_rules_by_topic ON topic_rules (topic_pattern, name);"#,
    // 7: topic rule destinations (http).
    r#"CREATE TABLE topic_rule_destinations (
        arn TEXT COLLATE "C" PRIMARY KEY,
        confirmation_url TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        status_reason TEXT,
        confirmation_token TEXT UNIQUE,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version BIGINT NOT NULL);"#,
];

/// Brings the schema (the first one on the connection's search path) up to date inside one
/// transaction, holding the migration lock until it commits.
pub async fn migrate(client: &mut deadpool_postgres::Client) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(backend)?;
    // Taken before anything else: even `CREATE TABLE IF NOT EXISTS` fails on a race between
    // two sessions, and the version read below must see the other node's committed work.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
        .await
        .map_err(backend)?;
    let applied: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(backend)?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version > applied {
            tx.batch_execute(sql).await.map_err(backend)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(backend)?;
        }
    }
    tx.commit().await.map_err(backend)
}
