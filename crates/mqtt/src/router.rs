//! The subscription table: which subscribers' topic filters match a topic.
//!
//! A trie keyed by topic level, with `+` and `#` children, so matching costs one walk per
//! topic level whatever the number of subscriptions. It knows subscribers only by id; the
//! session table resolves ids to connections. Matches are merged per subscriber (MQTT 5
//! §3.3.4: one delivery at the highest granted QoS, carrying every matching subscription
//! identifier).

use std::collections::HashMap;
use std::sync::Arc;

/// Who a subscription delivers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubscriberId {
    /// A device session, by client id.
    Client(Arc<str>),
    /// An in-process subscriber (rules engine, services), by registration number.
    Internal(u64),
}

/// A subscription's options, as granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionOptions {
    pub qos: u8,
    #[serde(default)]
    pub no_local: bool,
    #[serde(default)]
    pub retain_as_published: bool,
    #[serde(default)]
    pub subscription_id: Option<u32>,
}

/// One subscriber a topic is delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub subscriber: SubscriberId,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub subscription_ids: Vec<u32>,
}

#[derive(Default, Debug)]
struct Node {
    children: HashMap<Box<str>, Node>,
    /// Subscriptions whose filter ends at this node.
    here: HashMap<SubscriberId, SubscriptionOptions>,
    /// Subscriptions whose filter ends with `#` after this node's level.
    multi: HashMap<SubscriberId, SubscriptionOptions>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.here.is_empty() && self.multi.is_empty()
    }
}

/// The table. Callers hold it behind a lock; every method is synchronous and short.
#[derive(Default, Debug)]
pub struct Router {
    root: Node,
    count: usize,
}

impl Router {
    /// Number of subscriptions held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Adds or replaces `subscriber`'s subscription to `filter` (already validated).
    /// Returns `true` if it is new.
    pub fn subscribe(
        &mut self,
        filter: &str,
        subscriber: SubscriberId,
        options: SubscriptionOptions,
    ) -> bool {
        let mut node = &mut self.root;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                let new = node.multi.insert(subscriber, options).is_none();
                self.count += usize::from(new);
                return new;
            }
            node = node.children.entry(level.into()).or_default();
        }
        let new = node.here.insert(subscriber, options).is_none();
        self.count += usize::from(new);
        new
    }

    /// Removes `subscriber`'s subscription to `filter`; `true` if there was one.
    pub fn unsubscribe(&mut self, filter: &str, subscriber: &SubscriberId) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = remove(&mut self.root, &levels, subscriber);
        self.count -= usize::from(removed);
        removed
    }

    /// Every subscriber whose filters match `topic`, merged per subscriber, in a stable order.
    pub fn matches(&self, topic: &str) -> Vec<Match> {
        let levels: Vec<&str> = topic.split('/').collect();
        let mut found: Vec<(&SubscriberId, &SubscriptionOptions)> = Vec::new();
        // MQTT 4.7.2: filters starting with a wildcard do not match topics starting with `$`.
        let system = topic.starts_with('$');
        collect(&self.root, &levels, 0, system, &mut found);
        merge(found)
    }
}

fn remove(node: &mut Node, levels: &[&str], subscriber: &SubscriberId) -> bool {
    match levels {
        [] => node.here.remove(subscriber).is_some(),
        ["#"] => node.multi.remove(subscriber).is_some(),
        [first, rest @ ..] => {
            let Some(child) = node.children.get_mut(*first) else {
                return false;
            };
            let removed = remove(child, rest, subscriber);
            if child.is_empty() {
                node.children.remove(*first);
            }
            removed
        }
    }
}

fn collect<'a>(
    node: &'a Node,
    levels: &[&str],
    depth: usize,
    system: bool,
    found: &mut Vec<(&'a SubscriberId, &'a SubscriptionOptions)>,
) {
    let wildcards_allowed = !(system && depth == 0);
    if wildcards_allowed {
        // `a/#` matches `a` itself as well as everything below it.
        found.extend(node.multi.iter());
    }
    let Some((level, rest)) = levels.split_first() else {
        found.extend(node.here.iter());
        return;
    };
    if let Some(child) = node.children.get(*level) {
        collect(child, rest, depth + 1, system, found);
    }
    if wildcards_allowed && let Some(child) = node.children.get("+") {
        collect(child, rest, depth + 1, system, found);
    }
}

fn merge(mut found: Vec<(&SubscriberId, &SubscriptionOptions)>) -> Vec<Match> {
    found.sort_by(|a, b| a.0.cmp(b.0));
    let mut merged: Vec<Match> = Vec::with_capacity(found.len());
    for (subscriber, options) in found {
        match merged.last_mut() {
            Some(last) if &last.subscriber == subscriber => {
                last.qos = last.qos.max(options.qos);
                last.no_local &= options.no_local;
                last.retain_as_published |= options.retain_as_published;
                last.subscription_ids.extend(options.subscription_id);
            }
            _ => merged.push(Match {
                subscriber: subscriber.clone(),
                qos: options.qos,
                no_local: options.no_local,
                retain_as_published: options.retain_as_published,
                subscription_ids: options.subscription_id.into_iter().collect(),
            }),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_core::mqtt_topic::topic_matches_filter;

    fn client(id: &str) -> SubscriberId {
        SubscriberId::Client(Arc::from(id))
    }

    fn qos(q: u8) -> SubscriptionOptions {
        SubscriptionOptions {
            qos: q,
            no_local: false,
            retain_as_published: false,
            subscription_id: None,
        }
    }

    fn subscribers(router: &Router, topic: &str) -> Vec<SubscriberId> {
        router
            .matches(topic)
            .into_iter()
            .map(|m| m.subscriber)
            .collect()
    }

    #[test]
    fn wildcards_match_as_mqtt_says() {
        let mut r = Router::default();
        r.subscribe("a/b", client("exact"), qos(0));
        r.subscribe("a/+", client("plus"), qos(0));
        r.subscribe("a/#", client("hash"), qos(0));
        r.subscribe("#", client("all"), qos(0));
        r.subscribe("+/+/c", client("deep"), qos(0));
        assert_eq!(
            subscribers(&r, "a/b"),
            vec![
                client("all"),
                client("exact"),
                client("hash"),
                client("plus")
            ]
        );
        assert_eq!(subscribers(&r, "a"), vec![client("all"), client("hash")]);
        assert_eq!(
            subscribers(&r, "a/b/c"),
            vec![client("all"), client("deep"), client("hash")]
        );
        assert_eq!(subscribers(&r, "x"), vec![client("all")]);
    }

    #[test]
    fn dollar_topics_escape_leading_wildcards() {
        let mut r = Router::default();
        r.subscribe("#", client("all"), qos(0));
        r.subscribe("+/events/#", client("plus"), qos(0));
        r.subscribe("$aws/events/#", client("events"), qos(0));
        assert_eq!(
            subscribers(&r, "$aws/events/presence/connected/d1"),
            vec![client("events")]
        );
    }

    #[test]
    fn overlapping_filters_deliver_once_at_the_highest_qos() {
        let mut r = Router::default();
        r.subscribe(
            "a/#",
            client("c"),
            SubscriptionOptions {
                subscription_id: Some(1),
                ..qos(0)
            },
        );
        r.subscribe(
            "a/b",
            client("c"),
            SubscriptionOptions {
                subscription_id: Some(2),
                ..qos(1)
            },
        );
        let m = r.matches("a/b");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].qos, 1);
        let mut ids = m[0].subscription_ids.clone();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn unsubscribe_prunes_and_counts() {
        let mut r = Router::default();
        assert!(r.subscribe("a/b/c", client("x"), qos(0)));
        assert!(!r.subscribe("a/b/c", client("x"), qos(1)), "replaces");
        assert!(r.subscribe("a/#", client("x"), qos(0)));
        assert_eq!(r.len(), 2);
        assert!(r.unsubscribe("a/b/c", &client("x")));
        assert!(!r.unsubscribe("a/b/c", &client("x")));
        assert!(!r.unsubscribe("zz", &client("x")));
        assert!(r.unsubscribe("a/#", &client("x")));
        assert_eq!(r.len(), 0);
        assert!(r.root.is_empty(), "empty branches are pruned");
    }

    /// The trie agrees with the reference matcher in drover-core on every pair of a small
    /// alphabet of filters and topics.
    #[test]
    fn agrees_with_the_reference_matcher() {
        let levels = ["a", "b", "$x", "+", "#", ""];
        let mut filters = Vec::new();
        for a in levels {
            filters.push(a.to_string());
            for b in levels {
                filters.push(format!("{a}/{b}"));
                for c in levels {
                    filters.push(format!("{a}/{b}/{c}"));
                }
            }
        }
        let filters: Vec<String> = filters
            .into_iter()
            .filter(|f| drover_core::mqtt_topic::check_topic_filter(f).is_ok())
            .collect();
        let topics: Vec<String> = filters
            .iter()
            .filter(|f| !f.contains(['+', '#']))
            .cloned()
            .collect();
        let mut r = Router::default();
        for (i, f) in filters.iter().enumerate() {
            r.subscribe(f, SubscriberId::Internal(i as u64), qos(0));
        }
        for topic in &topics {
            let got: Vec<u64> = r
                .matches(topic)
                .into_iter()
                .map(|m| match m.subscriber {
                    SubscriberId::Internal(i) => i,
                    SubscriberId::Client(_) => unreachable!(),
                })
                .collect();
            let want: Vec<u64> = filters
                .iter()
                .enumerate()
                .filter(|(_, f)| topic_matches_filter(f, topic))
                .map(|(i, _)| i as u64)
                .collect();
            assert_eq!(got, want, "topic {topic:?}");
        }
    }
}
