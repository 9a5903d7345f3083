//! `s3-bench`: GET throughput of HTTPS URLs (drover presigned URLs, or nginx serving the same
//! files), for `scripts/bench-s3`. Each of N workers keeps one HTTP/1.1 keep-alive connection
//! over rustls and GETs its URLs round-robin for the given duration, reading every body to the
//! end. Prints one JSON line: requests, bytes, seconds, req/s, MB/s, errors.
//!
//! Usage: `s3-bench --ca CA.pem --urls FILE [--concurrency 32] [--duration 10] [--label NAME]`
//! (FILE holds one URL per line; all on the same host:port).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

struct Args {
    ca: String,
    urls: String,
    concurrency: usize,
    duration: f64,
    label: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        ca: String::new(),
        urls: String::new(),
        concurrency: 32,
        duration: 10.0,
        label: "run".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--ca" => args.ca = value()?,
            "--urls" => args.urls = value()?,
            "--concurrency" => args.concurrency = value()?.parse().map_err(|e| format!("{e}"))?,
            "--duration" => args.duration = value()?.parse().map_err(|e| format!("{e}"))?,
            "--label" => args.label = value()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.ca.is_empty() || args.urls.is_empty() {
        return Err(
            "usage: s3-bench --ca CA.pem --urls FILE [--concurrency N] [--duration S] [--label L]"
                .into(),
        );
    }
    Ok(args)
}

/// host, port, path-and-query of an https URL.
fn split_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("not an https URL: {url}"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse().map_err(|_| format!("bad port in {url}"))?,
        ),
        None => (authority.to_string(), 443),
    };
    Ok((
        host,
        port,
        if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
    ))
}

#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Totals {
    fn error(&self, what: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(what.to_string());
        }
    }
}

async fn worker(
    tls: tokio_rustls::TlsConnector,
    host: String,
    port: u16,
    paths: Arc<Vec<String>>,
    start: usize,
    deadline: Instant,
    totals: Arc<Totals>,
) {
    let mut next = start;
    'connect: while Instant::now() < deadline {
        let tcp = match TcpStream::connect((host.as_str(), port)).await {
            Ok(t) => t,
            Err(e) => {
                totals.error(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(host.clone()).expect("a valid server name");
        let stream = match tls.connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                totals.error(format!("TLS: {e}"));
                continue;
            }
        };
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    totals.error(format!("HTTP handshake: {e}"));
                    continue;
                }
            };
        let conn_totals = totals.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                conn_totals.error(format!("connection: {e}"));
            }
        });
        while Instant::now() < deadline {
            let path = &paths[next % paths.len()];
            next += 1;
            let request = hyper::Request::get(path.as_str())
                .header("host", format!("{host}:{port}"))
                .body(Empty::new())
                .expect("a valid request");
            let response = match sender.send_request(request).await {
                Ok(r) => r,
                Err(e) => {
                    totals.error(format!("request: {e}"));
                    continue 'connect;
                }
            };
            if !response.status().is_success() {
                totals.error(format!("status {}", response.status()));
            }
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Some(d) = f.data_ref() {
                            totals.bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        totals.error(format!("body: {e}"));
                        continue 'connect;
                    }
                }
                if Instant::now() >= deadline {
                    return;
                }
            }
            totals.requests.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&args.ca).map_err(|e| format!("{}: {e}", args.ca))? {
        roots
            .add(cert.map_err(|e| format!("{e}"))?)
            .map_err(|e| format!("{e}"))?;
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
    let text = std::fs::read_to_string(&args.urls).map_err(|e| format!("{}: {e}", args.urls))?;
    let mut host_port = None;
    let mut paths = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (h, p, path) = split_url(line.trim())?;
        host_port.get_or_insert((h, p));
        paths.push(path);
    }
    let (host, port) = host_port.ok_or("no URLs")?;
    let paths = Arc::new(paths);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let totals = Arc::new(Totals::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..args.concurrency {
            tasks.push(tokio::spawn(worker(
                tls.clone(),
                host.clone(),
                port,
                paths.clone(),
                i * paths.len() / args.concurrency.max(1),
                deadline,
                totals.clone(),
            )));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let requests = totals.requests.load(Ordering::Relaxed);
    let bytes = totals.bytes.load(Ordering::Relaxed);
    println!(
        "{{\"label\":\"{}\",\"concurrency\":{},\"requests\":{requests},\"bytes\":{bytes},\"seconds\":{secs:.3},\"req_per_s\":{:.1},\"mb_per_s\":{:.1},\"errors\":{}}}",
        args.label,
        args.concurrency,
        requests as f64 / secs,
        bytes as f64 / secs / 1e6,
        totals.errors.load(Ordering::Relaxed)
    );
    if let Some(e) = totals
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        eprintln!("s3-bench {}: first error: {e}", args.label);
    }
    Ok(())
}
