//! `drover-sim mqtt qos1`: P publisher devices each send M QoS 1 messages to their own topic,
//! P subscriber devices receive them; each publisher keeps at most `window` messages between
//! its publish and the subscriber's receipt (a closed loop, so no broker queue grows and the
//! latency is the round trip publisher → broker → subscriber, not queueing). Reports
//! throughput and latency percentiles (hdrhistogram, microseconds).

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rumqttc::{Event, Packet, QoS};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use super::Target;

/// What a QoS 1 run is asked to do.
pub struct Qos1Run {
    pub publishers: u32,
    /// Messages per publisher.
    pub messages: u32,
    pub window: u16,
    pub payload_bytes: usize,
    pub topic_prefix: String,
    pub client_id_prefix: String,
    pub label: String,
}

/// The figures of one QoS 1 run (one JSON line on stdout).
#[derive(Debug, Serialize)]
pub struct Qos1Report {
    pub label: String,
    pub mode: &'static str,
    pub publishers: u32,
    pub messages_per_publisher: u32,
    pub window: u16,
    pub payload_bytes: usize,
    pub received: u64,
    pub seconds: f64,
    pub messages_per_second: f64,
    pub latency_us_p50: u64,
    pub latency_us_p90: u64,
    pub latency_us_p99: u64,
    pub latency_us_p999: u64,
    pub latency_us_max: u64,
}

/// Every timestamp in a payload is nanoseconds since this process-wide instant.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Payload: sequence number, send time, then padding to the requested size.
fn payload(seq: u32, sent_ns: u64, size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size.max(12));
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(&sent_ns.to_be_bytes());
    body.resize(size.max(12), b'x');
    body
}

fn parse_payload(body: &[u8]) -> Option<(u32, u64)> {
    let seq = u32::from_be_bytes(body.get(0..4)?.try_into().ok()?);
    let sent = u64::from_be_bytes(body.get(4..12)?.try_into().ok()?);
    Some((seq, sent))
}

pub async fn run(target: &Target, run: Qos1Run) -> Result<Qos1Report> {
    if run.publishers == 0 || run.messages == 0 || run.window == 0 {
        bail!("--publishers, --messages and --window must be at least 1");
    }
    let _ = epoch();
    let total = u64::from(run.publishers) * u64::from(run.messages);
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} received [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(run.label.clone());

    let (start_tx, start) = watch::channel(false);
    let mut subscribers = Vec::new();
    let mut publishers = Vec::new();
    for i in 0..run.publishers {
        let topic = format!("{}/{i}", run.topic_prefix);
        let window = Arc::new(Semaphore::new(usize::from(run.window)));

        // The subscriber first, and SUBACKed, so no message is published before it listens.
        let mut sub = target
            .connect(&format!("{}-sub-{i}", run.client_id_prefix), run.window)
            .await
            .with_context(|| format!("connecting subscriber {i}"))?;
        sub.client
            .subscribe(topic.clone(), QoS::AtLeastOnce)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        loop {
            match sub.events.poll().await.map_err(|e| anyhow!("{e}"))? {
                Event::Incoming(Packet::SubAck(ack)) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| !matches!(c, rumqttc::SubscribeReasonCode::Success(_)))
                    {
                        bail!("subscription to {topic} refused: {:?}", ack.return_codes);
                    }
                    break;
                }
                _ => continue,
            }
        }
        let expected = run.messages;
        let release = window.clone();
        let progress = bar.clone();
        subscribers.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow!("{e}"))?;
            let mut seen = vec![false; expected as usize];
            let mut received = 0u32;
            while received < expected {
                match sub
                    .events
                    .poll()
                    .await
                    .map_err(|e| anyhow!("subscriber: {e}"))?
                {
                    Event::Incoming(Packet::Publish(p)) => {
                        let now = epoch().elapsed().as_nanos() as u64;
                        let (seq, sent) = parse_payload(&p.payload)
                            .ok_or_else(|| anyhow!("a message with a foreign payload"))?;
                        let slot = seen
                            .get_mut(seq as usize)
                            .ok_or_else(|| anyhow!("sequence {seq} out of range"))?;
                        // A redelivery (DUP) is counted once.
                        if !*slot {
                            *slot = true;
                            received += 1;
                            histogram.saturating_record(now.saturating_sub(sent).div_ceil(1000));
                            release.add_permits(1);
                            progress.inc(1);
                        }
                    }
                    _ => continue,
                }
            }
            // Deliver the last PUBACKs before the connection is dropped.
            let _ = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    if sub.events.poll().await.is_err() {
                        break;
                    }
                }
            })
            .await;
            anyhow::Ok(histogram)
        }));

        let mut publisher = target
            .connect(&format!("{}-pub-{i}", run.client_id_prefix), run.window)
            .await
            .with_context(|| format!("connecting publisher {i}"))?;
        let client = publisher.client.clone();
        let (done_tx, mut done) = watch::channel(false);
        let driver = tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = publisher.events.poll() => {
                        event.map_err(|e| anyhow!("publisher: {e}"))?;
                    }
                    _ = done.changed() => return anyhow::Ok(()),
                }
            }
        });
        let mut start = start.clone();
        let (messages, size) = (run.messages, run.payload_bytes);
        publishers.push((
            tokio::spawn(async move {
                let _ = start.wait_for(|go| *go).await;
                for seq in 0..messages {
                    window.acquire().await.map_err(|e| anyhow!("{e}"))?.forget();
                    let sent = epoch().elapsed().as_nanos() as u64;
                    client
                        .publish(
                            topic.clone(),
                            QoS::AtLeastOnce,
                            false,
                            payload(seq, sent, size),
                        )
                        .await
                        .map_err(|e| anyhow!("{e}"))?;
                }
                anyhow::Ok(())
            }),
            driver,
            done_tx,
        ));
    }

    let started = Instant::now();
    let _ = start_tx.send(true);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for sub in subscribers {
        histogram.add(sub.await??)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish();
    for (publisher, driver, done) in publishers {
        publisher.await??;
        let _ = done.send(true);
        driver.await??;
    }

    let received = histogram.len();
    Ok(Qos1Report {
        label: run.label,
        mode: "qos1",
        publishers: run.publishers,
        messages_per_publisher: run.messages,
        window: run.window,
        payload_bytes: run.payload_bytes.max(12),
        received,
        seconds,
        messages_per_second: received as f64 / seconds.max(1e-9),
        latency_us_p50: histogram.value_at_quantile(0.50),
        latency_us_p90: histogram.value_at_quantile(0.90),
        latency_us_p99: histogram.value_at_quantile(0.99),
        latency_us_p999: histogram.value_at_quantile(0.999),
        latency_us_max: histogram.max(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_carries_sequence_and_send_time_at_the_requested_size() {
        let body = payload(7, 123_456_789, 64);
        assert_eq!(body.len(), 64);
        assert_eq!(parse_payload(&body), Some((7, 123_456_789)));
        // Too small a size still fits the header.
        assert_eq!(payload(1, 2, 0).len(), 12);
        assert_eq!(parse_payload(b"short"), None);
    }
}
