//! `drover info`, `drover keys` and `drover presign`: small commands that read or change a data directory
//! without a running server (SQLite in WAL mode lets them run beside one).

use anyhow::{Context, Result};
use drover_services::{AccessKeys, SystemClock};

use crate::cli::{DataDirArgs, KeysCommand, PresignArgs, PresignMethodArg};
use crate::datadir::{DataDir, ServerInfo};
use crate::serve::{advertised, open_store, presigner};

/// What the last `drover serve` on this data dir recorded (`server.json`).
fn read_server_info(dir: &DataDir) -> Result<ServerInfo> {
    let text = std::fs::read_to_string(dir.server_info()).with_context(|| {
        format!(
            "{} has no server.json: run `drover serve --data-dir {}` once first",
            dir.root().display(),
            dir.root().display()
        )
    })?;
    serde_json::from_str(&text).context("parsing server.json")
}

pub fn info(args: DataDirArgs) -> Result<()> {
    let dir = DataDir::new(&args.data_dir);
    let info = read_server_info(&dir)?;
    println!("account id:      {}", info.account_id);
    println!("region:          {}", info.region);
    println!("API endpoint:    https://{}", info.http_addr);
    println!("MQTT endpoint:   {}", info.mqtt_addr);
    println!("S3 endpoint:     https://{}", info.s3_addr);
    println!("database:        {}", info.database);
    println!("credentials:     {}", dir.credentials().display());
    println!("AWS config:      {}", dir.aws_config().display());
    println!("CA certificate:  {}", dir.ca_cert().display());
    Ok(())
}

pub async fn keys(command: KeysCommand) -> Result<()> {
    let store_args = match &command {
        KeysCommand::Create { store, .. }
        | KeysCommand::List { store }
        | KeysCommand::Delete { store, .. } => store.clone(),
    };
    let dir = DataDir::new(&store_args.data_dir);
    if store_args.database_url.is_none() && !dir.database().exists() {
        anyhow::bail!(
            "{} does not exist: run `drover serve --data-dir {}` once first",
            dir.database().display(),
            dir.root().display()
        );
    }
    let store = open_store(&dir, store_args.database_url.as_deref()).await?;
    let keys = AccessKeys::new(store, std::sync::Arc::new(SystemClock));
    match command {
        KeysCommand::Create { description, .. } => {
            let key = keys
                .create(&description)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("aws_access_key_id = {}", key.access_key_id);
            println!("aws_secret_access_key = {}", key.secret_access_key);
        }
        KeysCommand::List { .. } => {
            let all = keys.list().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{:<22} {:<26} DESCRIPTION", "ACCESS_KEY_ID", "CREATED");
            for key in all {
                let created =
                    time::OffsetDateTime::from_unix_timestamp(key.created_at.millis() / 1000)
                        .map(|t| {
                            t.format(&time::format_description::well_known::Rfc3339)
                                .unwrap_or_default()
                        })
                        .unwrap_or_default();
                println!(
                    "{:<22} {:<26} {}",
                    key.access_key_id, created, key.description
                );
            }
        }
        KeysCommand::Delete { access_key_id, .. } => {
            keys.delete(&access_key_id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("deleted {access_key_id}");
        }
    }
    Ok(())
}

pub async fn presign(args: PresignArgs) -> Result<()> {
    let dir = DataDir::new(&args.store.data_dir);
    let info = read_server_info(&dir)?;
    let location = drover_core::placeholder::parse_s3_url(&args.url)?;
    let store = open_store(&dir, args.store.database_url.as_deref()).await?;
    let keys = AccessKeys::new(store, std::sync::Arc::new(SystemClock));
    let s3_addr: std::net::SocketAddr = info.s3_addr.parse().context("server.json s3_addr")?;
    let presigner = presigner(&keys, &info.region, &advertised(s3_addr, &[])).await?;
    let method = match args.method {
        PresignMethodArg::Get => drover_s3::PresignMethod::Get,
        PresignMethodArg::Put => drover_s3::PresignMethod::Put,
    };
    let url = presigner.presign(
        method,
        &location.bucket,
        &location.key,
        args.expires,
        time::OffsetDateTime::now_utc(),
    )?;
    println!("{url}");
    Ok(())
}
