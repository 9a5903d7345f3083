//! Tests of topic validation and matching: the MQTT specification's own examples, AWS's limits,
//! and properties — every topic matches itself, `#` matches every non-`$` topic, and the
//! matcher agrees with a regex-based reference on random pairs.

use proptest::prelude::*;
use regex::Regex;

use super::*;

#[test]
fn topic_names() {
    for ok in [
        "a",
        "a/b/c",
        "/",
        "a//b",
        "/leading",
        "trailing/",
        "$aws/things/dev1/shadow/update",
        "$aws/things/t/shadow/name/n/update/delta",
        "sport/tennis/player1",
        "üñí/çødé",
        " ",
    ] {
        check_topic_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, reason) in [
        ("", "it is empty"),
        ("a/+/b", "wildcards"),
        ("a/#", "wildcards"),
        ("a#", "wildcards"),
        ("a\0b", "null character"),
        ("a/b/c/d/e/f/g/h/i", "8 forward slashes; the maximum is 7"),
    ] {
        let e = check_topic_name(bad).expect_err(bad);
        assert!(e.to_string().contains(reason), "{bad}: {e}");
    }
    check_topic_name("a/b/c/d/e/f/g/h").expect("7 slashes are allowed");
}

#[test]
fn size_limit_is_bytes_not_chars() {
    check_topic_name(&"a".repeat(256)).expect("256 bytes");
    let e = check_topic_name(&"a".repeat(257)).expect_err("257 bytes");
    assert!(e.to_string().contains("257 bytes long; the maximum is 256"));
    // 'é' is two bytes: 129 of them are 258 bytes but only 129 characters.
    let e = check_topic_name(&"é".repeat(129)).expect_err("258 bytes");
    assert!(e.to_string().contains("258 bytes"), "{e}");
}

#[test]
fn basic_ingest_prefix_is_not_counted() {
    check_topic_name("$aws/rules/myRule/a/b/c/d/e/f/g/h").expect("7 slashes after the prefix");
    check_topic_name(&format!("$aws/rules/myRule/{}", "a".repeat(256)))
        .expect("256 bytes after the prefix");
    assert!(check_topic_name("$aws/rules/myRule/a/b/c/d/e/f/g/h/i").is_err());
    // Only Basic Ingest is exempt; other $aws topics count every slash.
    assert!(check_topic_name("$aws/things/t/a/b/c/d/e/f").is_err());
}

#[test]
fn topic_filters() {
    for ok in [
        "#",
        "+",
        "a/#",
        "a/+/b",
        "+/+",
        "/+",
        "+/",
        "$aws/things/+/jobs/+/get/accepted",
        "$share/group/a/#",
    ] {
        check_topic_filter(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, reason) in [
        ("a/#/b", "'#' must be the whole of the last level"),
        ("a#", "'#' must be the whole of the last level"),
        ("a/b#", "'#' must be the whole of the last level"),
        ("a+", "'+' must be the whole of its level"),
        ("a/+b/c", "'+' must be the whole of its level"),
        ("##", "'#' must be the whole of the last level"),
        ("", "it is empty"),
        ("a/\0", "null character"),
    ] {
        let e = check_topic_filter(bad).expect_err(bad);
        assert!(e.to_string().contains(reason), "{bad}: {e}");
        assert!(e.to_string().starts_with("topic filter '"), "{e}");
    }
}

#[test]
fn matching_follows_the_mqtt_specification() {
    // The examples of MQTT 3.1.1 section 4.7.
    let cases = [
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/#", "sport", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("#", "sport", true),
        ("#", "/", true),
        ("#", "$SYS/x", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        (
            "$aws/things/+/shadow/#",
            "$aws/things/d1/shadow/update",
            true,
        ),
        ("a/b", "a/b", true),
        ("a/b", "a/b/c", false),
        ("a/b/c", "a/b", false),
        ("A/b", "a/b", false),
    ];
    for (filter, topic, expected) in cases {
        assert_eq!(
            topic_matches_filter(filter, topic),
            expected,
            "{filter} vs {topic}"
        );
    }
}

/// A reference matcher built the naive way: translate the filter into a regular expression.
fn reference(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let mut re = String::from("^");
    for (i, level) in levels.iter().enumerate() {
        match *level {
            "#" if i == 0 => re.push_str(".*"),
            "#" => {
                // `a/#` also matches `a`: the slash before `#` is optional with what follows.
                re.truncate(re.len() - 1);
                re.push_str("(/.*)?");
            }
            "+" => re.push_str("[^/]*"),
            literal => re.push_str(&regex::escape(literal)),
        }
        if i + 1 < levels.len() {
            re.push('/');
        }
    }
    re.push('$');
    Regex::new(&re)
        .expect("escaped levels form a valid regex")
        .is_match(topic)
}

fn arb_level() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_string()),
        Just("b".to_string()),
        Just("ab".to_string()),
        Just("$x".to_string()),
        Just(".*".to_string()),
    ]
}

fn arb_topic() -> impl Strategy<Value = String> {
    prop::collection::vec(arb_level(), 1..5).prop_map(|levels| levels.join("/"))
}

fn arb_filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop_oneof![3 => arb_level(), 2 => Just("+".to_string())],
            1..5,
        ),
        any::<bool>(),
    )
        .prop_map(|(mut levels, hash)| {
            if hash {
                levels.push("#".to_string());
            }
            levels.join("/")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_topic_matches_itself(topic in arb_topic()) {
        prop_assume!(check_topic_name(&topic).is_ok());
        prop_assert!(topic_matches_filter(&topic, &topic));
    }

    #[test]
    fn any_valid_topic_matches_itself(topic in "[^+#\u{0}]{1,40}") {
        prop_assume!(check_topic_name(&topic).is_ok());
        prop_assert!(check_topic_filter(&topic).is_ok());
        prop_assert!(topic_matches_filter(&topic, &topic));
    }

    #[test]
    fn hash_matches_every_topic_outside_dollar(topic in arb_topic()) {
        prop_assert_eq!(topic_matches_filter("#", &topic), !topic.starts_with('$'));
    }

    #[test]
    fn matcher_agrees_with_the_regex_reference(filter in arb_filter(), topic in arb_topic()) {
        // The generator makes `""` (one empty level), which MQTT forbids; all else is valid.
        prop_assume!(!filter.is_empty());
        prop_assert!(check_topic_filter(&filter).is_ok(), "{}", filter);
        prop_assert_eq!(
            topic_matches_filter(&filter, &topic),
            reference(&filter, &topic),
            "filter {} topic {}", filter, topic
        );
    }
}
