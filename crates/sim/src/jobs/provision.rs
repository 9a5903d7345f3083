//! `drover-sim jobs provision`: the fleet a jobs run targets, created through the AWS IoT API
//! (not measured by the run): a static thing group and N things named `PREFIX0000000` …, each
//! added to the group — CreateThingGroup once, then CreateThing and AddThingToThingGroup per
//! thing from C concurrent workers. Both creates are idempotent, so provisioning a larger fleet
//! over a smaller one only adds what is missing, and a thing can be in several groups (the
//! 10,000-thing group is the first 10,000 of the 100,000).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use aws_sdk_iot::error::{DisplayErrorContext, ProvideErrorMetadata};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// The thing name of device `index`: the prefix and seven digits, so names sort as numbers.
pub fn thing_name(prefix: &str, index: u32) -> String {
    format!("{prefix}{index:07}")
}

/// What to create.
pub struct Provision {
    pub things: u32,
    pub group: String,
    pub prefix: String,
    pub concurrency: usize,
}

#[derive(Debug, Serialize)]
pub struct ProvisionReport {
    pub mode: &'static str,
    pub group: String,
    pub things: u32,
    pub seconds: f64,
    /// API calls per second (two per thing).
    pub calls_per_second: f64,
}

pub async fn run(client: &aws_sdk_iot::Client, p: Provision) -> Result<ProvisionReport> {
    if p.things == 0 || p.concurrency == 0 {
        bail!("--things and --concurrency must be at least 1");
    }
    match client
        .create_thing_group()
        .thing_group_name(&p.group)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceAlreadyExistsException") => {}
        Err(e) => bail!("CreateThingGroup {}: {}", p.group, DisplayErrorContext(e)),
    }
    let started = Instant::now();
    let bar = ProgressBar::new(u64::from(p.things)).with_style(
        ProgressStyle::with_template("provision {bar:40} {pos}/{len} things [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..p.concurrency {
        let (client, next, bar) = (client.clone(), next.clone(), bar.clone());
        let (group, prefix, total) = (p.group.clone(), p.prefix.clone(), p.things as usize);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                let name = thing_name(&prefix, i as u32);
                client
                    .create_thing()
                    .thing_name(&name)
                    .send()
                    .await
                    .map_err(|e| anyhow!("CreateThing {name}: {}", DisplayErrorContext(e)))?;
                client
                    .add_thing_to_thing_group()
                    .thing_group_name(&group)
                    .thing_name(&name)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow!("AddThingToThingGroup {name}: {}", DisplayErrorContext(e))
                    })?;
                bar.inc(1);
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    Ok(ProvisionReport {
        mode: "provision",
        group: p.group,
        things: p.things,
        seconds,
        calls_per_second: f64::from(p.things) * 2.0 / seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thing_names_sort_as_numbers() {
        assert_eq!(thing_name("dev-", 0), "dev-0000000");
        assert_eq!(thing_name("dev-", 99_999), "dev-0099999");
        assert!(thing_name("dev-", 9) < thing_name("dev-", 10));
    }
}
