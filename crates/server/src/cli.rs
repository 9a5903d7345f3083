//! The command line: `drover serve`, `drover info`, `drover keys ...`. Defaults follow the
//! interface contract in DESIGN.md; every flag also reads a `DROVER_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::observability::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "drover",
    version,
    about = "A self-hosted, AWS IoT compatible device fleet and OTA update server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Print the account id, region, endpoints and credentials path of a data directory.
    Info(DataDirArgs),
    /// Manage API access keys (SigV4 credentials).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print a presigned URL for an artifact on this server's S3 endpoint, signed with the
    /// server-held presigner key (the same URLs jobs hand to devices).
    Presign(PresignArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PresignArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// `s3://bucket/key` or any S3 URL form job documents accept.
    pub url: String,
    /// The request the URL allows.
    #[arg(long, value_enum, default_value = "get")]
    pub method: PresignMethodArg,
    /// Seconds the URL stays valid (1 to 604800).
    #[arg(long, default_value_t = 3600)]
    pub expires: i64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PresignMethodArg {
    Get,
    Put,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Everything drover keeps: database, artifacts, CA, credentials.
    #[arg(long, env = "DROVER_DATA_DIR", default_value = "./drover-data")]
    pub data_dir: PathBuf,
    /// HTTPS: AWS control plane, jobs data plane, console.
    #[arg(long, env = "DROVER_HTTP_ADDR", default_value = "127.0.0.1:8443")]
    pub http_addr: SocketAddr,
    /// MQTT over TLS for devices (client certificates).
    #[arg(long, env = "DROVER_MQTT_ADDR", default_value = "127.0.0.1:8883")]
    pub mqtt_addr: SocketAddr,
    /// HTTPS: S3-compatible artifact store.
    #[arg(long, env = "DROVER_S3_ADDR", default_value = "127.0.0.1:9443")]
    pub s3_addr: SocketAddr,
    /// Region in ARNs and the SigV4 scope.
    #[arg(long, env = "DROVER_REGION", default_value = "us-east-1", value_parser = parse_region)]
    pub region: String,
    /// Extra DNS names or IP addresses for the server certificate (repeatable).
    #[arg(long = "hostname", env = "DROVER_HOSTNAMES", value_delimiter = ',')]
    pub hostname: Vec<String>,
    /// `postgres://...` to keep state in PostgreSQL instead of SQLite in the data directory.
    #[arg(long, env = "DROVER_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Keep artifacts in an external S3-compatible store instead of the data directory
    /// (scale-out): `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&ca_bundle=PATH]`, credentials
    /// from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    #[arg(long, env = "DROVER_ARTIFACTS_URL")]
    pub artifacts_url: Option<String>,
    /// Log format on stderr.
    #[arg(long, env = "DROVER_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Publishes per second one device connection may send (AWS IoT's limit is 100); faster
    /// publishers are slowed down, not dropped. 0 lifts the limit (benchmarks).
    #[arg(long, env = "DROVER_MQTT_PUBLISH_RATE", default_value_t = 100)]
    pub mqtt_publish_rate: u32,
    /// The shortest MQTT keep-alive honoured, in seconds (AWS IoT: 30); shorter requests are
    /// raised to it.
    #[arg(long, env = "DROVER_MQTT_MIN_KEEPALIVE", default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=1200))]
    pub mqtt_min_keepalive: u16,
}

#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    #[arg(long, env = "DROVER_DATA_DIR", default_value = "./drover-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    #[arg(long, env = "DROVER_DATA_DIR", default_value = "./drover-data")]
    pub data_dir: PathBuf,
    /// The same `--database-url` the server runs with, if any.
    #[arg(long, env = "DROVER_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an access key pair and print it.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// What the key is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List access key ids.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete an access key; requests signed with it are refused at once.
    Delete {
        #[command(flatten)]
        store: StoreArgs,
        access_key_id: String,
    },
}

/// Regions look like `us-east-1`: lower-case letters, digits and dashes.
fn parse_region(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(value.to_string())
    } else {
        Err(format!("'{value}' is not a region name like us-east-1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed_and_defaults_match_the_contract() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["drover", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("expected serve")
        };
        assert_eq!(args.data_dir, PathBuf::from("./drover-data"));
        assert_eq!(args.http_addr.to_string(), "127.0.0.1:8443");
        assert_eq!(args.mqtt_addr.to_string(), "127.0.0.1:8883");
        assert_eq!(args.s3_addr.to_string(), "127.0.0.1:9443");
        assert_eq!(args.region, "us-east-1");
        assert!(args.hostname.is_empty());
        assert!(Cli::try_parse_from(["drover", "serve", "--region", "Bad Region"]).is_err());
        let cli =
            Cli::try_parse_from(["drover", "serve", "--hostname", "a", "--hostname", "b"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("expected serve")
        };
        assert_eq!(args.hostname, ["a", "b"]);
    }
}
