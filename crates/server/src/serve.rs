//! `drover serve`: opens the data directory and store, prepares credentials and certificates,
//! wires services to transports, and runs the listeners until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::get;
use drover_aws::{ApiState, AuthState, Endpoints};
use drover_core::arn::ArnScope;
use drover_s3::storage::Backend;
use drover_s3::storage::remote::{RemoteConfig, RemoteStorage};
use drover_s3::{Presigner, S3State, Storage};
use drover_services::{
    AccessKeys, Clock, DeviceServices, EngineConfig, EventConfigurations, FleetIndex, Jobs,
    Registry, RulesEngine, SystemClock, TopicRules,
};
use drover_store::{AccessKey, SharedStore};
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::ServeArgs;
use crate::datadir::{self, DataDir, ServerInfo};
use crate::{gateway, https, observability, pki};

/// Runs the server until a shutdown signal arrives.
pub async fn run(args: ServeArgs) -> Result<()> {
    let metrics = observability::init_metrics()?;
    let dir = DataDir::new(&args.data_dir);
    dir.create()?;
    let store = open_store(&dir, args.database_url.as_deref()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let account_id = store
        .setting_or_insert("account_id", &generate_account_id())
        .await?;
    let keys = AccessKeys::new(store.clone(), clock.clone());
    ensure_admin_credentials(&dir, &keys, &store, clock.as_ref()).await?;
    datadir::write_aws_config(&dir.aws_config(), &args.region)?;

    pki::ensure_ca(&dir)?;
    let identity = pki::ensure_server_identity(&dir, &args.hostname)?;
    let tls = Arc::new(pki::server_config(&identity, &[b"h2", b"http/1.1"])?);
    // The API listener also asks for (and never requires) a client certificate: devices call
    // the jobs data plane with theirs, SigV4 clients send none.
    let api_tls = Arc::new(pki::api_server_config(&identity, &[b"h2", b"http/1.1"])?);

    let http_listener = TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding --http-addr {}", args.http_addr))?;
    let http_addr = http_listener.local_addr()?;
    let s3_listener = TcpListener::bind(args.s3_addr)
        .await
        .with_context(|| format!("binding --s3-addr {}", args.s3_addr))?;
    let s3_addr = s3_listener.local_addr()?;
    let storage = open_artifacts(&dir, args.artifacts_url.as_deref()).await?;
    // Built now so a misconfiguration shows at start; the Jobs service will hold it to
    // substitute presigned URLs into job documents at each delivery.
    let presigner = presigner(&keys, &args.region, &advertised(s3_addr, &args.hostname)).await?;

    let scope = ArnScope::new(args.region.clone(), account_id.clone());
    let registry = Registry::new(store.clone(), scope, clock.clone());
    // Repairs any membership change a crash cut off, and catches up with writes other nodes
    // made while this one was down (see drover_services::membership).
    registry
        .membership()
        .reconcile_all()
        .await
        .context("reconciling dynamic thing groups")?;
    let index = FleetIndex::new(store.clone(), registry.membership().clone());
    // Certificates, policies and the device directory the MQTT broker authenticates with.
    let devices = DeviceServices::new(
        store.clone(),
        registry.scope().clone(),
        clock.clone(),
        pki::device_ca(&dir)?,
        registry.membership().clone(),
    );
    // The device gateway: MQTT over TLS on --mqtt-addr, authenticating devices against the
    // certificate and policy registry.
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let gateway = gateway::start(
        &args,
        &identity,
        devices.directory.clone(),
        store.clone(),
        shutdown_rx.clone(),
    )
    .await?;
    let mqtt_addr = gateway.addr;
    // The services publish through the broker (jobs notifications, events).
    let broker = gateway.broker.clone();
    let jobs = Jobs::new(
        store.clone(),
        registry.clone(),
        clock.clone(),
        EventConfigurations::new(store.clone(), clock.clone()),
    );
    jobs.set_publisher(drover_aws::jobs_data::BrokerJobPublisher::start(
        broker.clone(),
    ));
    jobs.set_presigner(Arc::new(crate::jobs::JobDocumentPresigner(presigner)));
    let mut s3_hosts = vec![
        advertised(s3_addr, &args.hostname),
        s3_addr.to_string(),
        format!("localhost:{}", s3_addr.port()),
        format!("127.0.0.1:{}", s3_addr.port()),
    ];
    s3_hosts.extend(
        args.hostname
            .iter()
            .map(|h| format!("{h}:{}", s3_addr.port())),
    );
    jobs.set_fetcher(Arc::new(crate::jobs::ArtifactDocumentFetcher::new(
        storage.clone(),
        s3_hosts,
    )?));
    broker.add_reserved_handler(Arc::new(drover_aws::jobs_data::JobsTopicHandler::new(
        jobs.clone(),
        broker.clone(),
    )));
    let engine = tokio::spawn(jobs.clone().run_engine(shutdown_rx.clone()));
    // The rules engine sees every message the broker routes: devices' and drover's own
    // events alike. It starts with the stored rules and re-reads them periodically.
    let engine_config = EngineConfig::default();
    let rules_engine = RulesEngine::new(
        gateway.broker.clone(),
        registry.clone(),
        engine_config.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    rules_engine
        .start(store.clone(), engine_config.resync_every)
        .await
        .map_err(anyhow::Error::msg)
        .context("starting the topic rules")?;
    // Destination confirmations carry an enableUrl on this API's advertised address.
    let rules = TopicRules::new(
        store.clone(),
        registry.scope().clone(),
        clock.clone(),
        Some(rules_engine),
        &format!("https://{}", advertised(http_addr, &args.hostname)),
    )
    .map_err(anyhow::Error::msg)?;
    let endpoints = Endpoints {
        data: advertised(mqtt_addr, &args.hostname),
        jobs: advertised(http_addr, &args.hostname),
        credential_provider: advertised(http_addr, &args.hostname),
    };
    let s3_app = drover_s3::router(S3State {
        storage,
        keys: keys.clone(),
        region: args.region.clone(),
    });
    let auth = AuthState {
        keys,
        region: args.region.clone(),
        services: Arc::new(vec!["iot", "iot-jobs-data"]),
        devices: Some(devices.directory.clone()),
    };
    let api = drover_aws::router(
        ApiState {
            registry,
            index,
            certificates: devices.certificates.clone(),
            policies: devices.policies.clone(),
            jobs,
            rules,
            endpoints: Arc::new(endpoints),
        },
        auth,
    );
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .fallback_service(api);

    let info = ServerInfo {
        account_id: account_id.clone(),
        region: args.region.clone(),
        http_addr: http_addr.to_string(),
        mqtt_addr: mqtt_addr.to_string(),
        s3_addr: s3_addr.to_string(),
        database: match &args.database_url {
            Some(url) => redact_url(url),
            None => dir.database().display().to_string(),
        },
    };
    datadir::write_atomic(
        &dir.server_info(),
        serde_json::to_string_pretty(&info)?.as_bytes(),
    )?;

    let server = tokio::spawn(https::serve(
        http_listener,
        api_tls,
        app,
        shutdown_rx.clone(),
    ));
    let s3_server = tokio::spawn(https::serve(s3_listener, tls, s3_app, shutdown_rx));
    tracing::info!(%http_addr, %mqtt_addr, %s3_addr, account_id, region = %args.region, "drover is serving the AWS IoT API, the device gateway and the S3 artifact store");
    println!(
        "drover listening on https://{http_addr} (account {account_id}, region {}), MQTT on {mqtt_addr}, S3 on https://{s3_addr}",
        args.region
    );
    println!(
        "  export AWS_SHARED_CREDENTIALS_FILE={} AWS_CONFIG_FILE={} AWS_CA_BUNDLE={}",
        dir.credentials().display(),
        dir.aws_config().display(),
        dir.ca_cert().display()
    );

    wait_for_signal().await?;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    server.await.context("the HTTPS listener panicked")?;
    s3_server.await.context("the S3 listener panicked")?;
    gateway.task.await.context("the MQTT listener panicked")?;
    engine.await.context("the jobs engine panicked")?;
    // Let device connections close and save their sessions.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the store named by `--database-url`, or SQLite inside the data directory.
pub async fn open_store(dir: &DataDir, database_url: Option<&str>) -> Result<SharedStore> {
    drover_store::open(database_url, &dir.database())
        .await
        .with_context(|| match database_url {
            Some(url) => format!("opening the database {}", redact_url(url)),
            None => format!("opening {}", dir.database().display()),
        })
}

/// The `[default]` key of `credentials` exists in the store: created on first start, and
/// imported when the file exists but the store is new (e.g. a fresh PostgreSQL database).
async fn ensure_admin_credentials(
    dir: &DataDir,
    keys: &AccessKeys,
    store: &SharedStore,
    clock: &dyn Clock,
) -> Result<()> {
    match datadir::read_credentials(&dir.credentials())? {
        Some((id, secret)) => {
            if store.get_access_key(&id).await?.is_none() {
                let key = AccessKey {
                    access_key_id: id,
                    secret_access_key: secret,
                    description: "admin (from the credentials file)".into(),
                    created_at: clock.now(),
                };
                match store.insert_access_key(&key).await {
                    Ok(()) | Err(drover_store::StoreError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        None => {
            let key = keys
                .create("admin")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            datadir::write_credentials(
                &dir.credentials(),
                &key.access_key_id,
                &key.secret_access_key,
            )?;
            tracing::info!(access_key_id = %key.access_key_id, "created the admin access key");
        }
    }
    Ok(())
}

/// The artifact store: files in the data directory, or the external store `--artifacts-url`
/// names (bodies are still received into the data directory's `artifacts/tmp`).
async fn open_artifacts(dir: &DataDir, artifacts_url: Option<&str>) -> Result<Backend> {
    let root = dir.artifacts();
    match artifacts_url {
        None => {
            let storage = tokio::task::spawn_blocking(move || Storage::open(&root))
                .await
                .context("opening the artifact store panicked")?
                .with_context(|| {
                    format!("opening the artifact store {}", dir.artifacts().display())
                })?;
            Ok(Backend::Local(storage))
        }
        Some(url) => {
            let config = RemoteConfig::parse(url).map_err(anyhow::Error::msg)?;
            let remote = RemoteStorage::new(&config).map_err(anyhow::Error::msg)?;
            let tmp = drover_s3::storage::prepare_tmp(&root)
                .with_context(|| format!("preparing {}", root.display()))?;
            tracing::info!(bucket = %config.bucket, prefix = %config.prefix, "artifacts live in an external S3 store");
            Ok(Backend::Remote(remote, tmp))
        }
    }
}

/// Description of the server-held access key that signs presigned artifact URLs.
pub const PRESIGNER_KEY_DESCRIPTION: &str = "drover presigner (signs presigned artifact URLs)";

/// The presigner for `endpoint` (host:port), signing with the server-held presigner key,
/// created on first use and shared through the store by every node.
pub async fn presigner(keys: &AccessKeys, region: &str, endpoint: &str) -> Result<Presigner> {
    let all = keys.list().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = match all
        .into_iter()
        .find(|k| k.description == PRESIGNER_KEY_DESCRIPTION)
    {
        Some(k) => k,
        None => keys
            .create(PRESIGNER_KEY_DESCRIPTION)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    Presigner::new(
        &format!("https://{endpoint}"),
        region,
        &key.access_key_id,
        &key.secret_access_key,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// A 12-digit AWS-style account id.
fn generate_account_id() -> String {
    let mut rng = rand::rng();
    let first = rng.random_range(1..=9);
    let rest: String = (0..11)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    format!("{first}{rest}")
}

/// The host:port clients should dial for a listener bound to `addr`.
pub fn advertised(addr: SocketAddr, hostnames: &[String]) -> String {
    if addr.ip().is_unspecified() {
        let host = hostnames.first().map(String::as_str).unwrap_or("localhost");
        format!("{host}:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Hides a password in a database URL for logs and `server.json`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn wait_for_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_have_twelve_digits() {
        let id = generate_account_id();
        assert_eq!(id.len(), 12);
        assert!(id.chars().all(|c| c.is_ascii_digit()));
        assert!(!id.starts_with('0'));
    }

    #[test]
    fn urls_are_redacted_and_addresses_advertised() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        let any: SocketAddr = "0.0.0.0:8883".parse().unwrap();
        assert_eq!(
            advertised(any, &["iot.example.com".into()]),
            "iot.example.com:8883"
        );
        assert_eq!(advertised(any, &[]), "localhost:8883");
        let lo: SocketAddr = "127.0.0.1:8883".parse().unwrap();
        assert_eq!(advertised(lo, &[]), "127.0.0.1:8883");
    }
}
