//! Tests of the policy engine: AWS's documented example policies, device isolation, wildcard
//! and escape edge cases, condition operators, malformed documents and their messages, and
//! three properties over random policy sets — a blanket Deny denies everything, adding an
//! Allow never takes an Allow away, and the order of policies does not change the answer.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::arn::ArnScope;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

fn arn(resource: &str) -> String {
    format!("arn:aws:iot:{REGION}:{ACCOUNT}:{resource}")
}

fn doc(text: &str) -> PolicyDocument {
    PolicyDocument::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn err(text: &str) -> String {
    match PolicyDocument::parse(text) {
        Ok(d) => panic!("{text} parsed as {d:?}"),
        Err(e) => e.to_string(),
    }
}

fn context(client_id: &str) -> AuthzContext {
    AuthzContext {
        client_id: Some(client_id.to_string()),
        ..AuthzContext::new(ArnScope::new(REGION, ACCOUNT))
    }
}

/// A device whose client id names its thing, attached to its certificate.
fn device(name: &str, attributes: &[(&str, &str)]) -> AuthzContext {
    AuthzContext {
        thing: Some(ConnectionThing {
            name: name.to_string(),
            type_name: Some("sensor".to_string()),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            is_attached: true,
        }),
        ..context(name)
    }
}

fn decide(policies: &[&PolicyDocument], request: &AuthzRequest, ctx: &AuthzContext) -> Decision {
    let names: Vec<String> = (0..policies.len()).map(|i| format!("p{i}")).collect();
    let named: Vec<(&str, &PolicyDocument)> = names
        .iter()
        .map(String::as_str)
        .zip(policies.iter().copied())
        .collect();
    evaluate(&named, request, ctx)
}

fn allows(policy: &PolicyDocument, request: &AuthzRequest, ctx: &AuthzContext) -> bool {
    decide(&[policy], request, ctx).is_allowed()
}

fn connect(client_id: &str) -> AuthzRequest {
    AuthzRequest::Connect {
        client_id: client_id.into(),
    }
}

fn publish(topic: &str) -> AuthzRequest {
    AuthzRequest::Publish {
        topic: topic.into(),
    }
}

fn subscribe(filter: &str) -> AuthzRequest {
    AuthzRequest::Subscribe {
        topic_filter: filter.into(),
    }
}

fn receive(topic: &str) -> AuthzRequest {
    AuthzRequest::Receive {
        topic: topic.into(),
    }
}

/// A one-statement policy document.
fn statement(effect: &str, action: &str, resource: &str, condition: Option<Value>) -> String {
    let mut s = json!({"Effect": effect, "Action": action, "Resource": resource});
    if let Some(condition) = condition {
        s["Condition"] = condition;
    }
    json!({"Version": "2012-10-17", "Statement": s}).to_string()
}

/// AWS's thing-scoped policy from "Connecting devices with thing policy variables".
fn thing_scoped() -> PolicyDocument {
    doc(&format!(
        r#"{{
          "Version": "2012-10-17",
          "Statement": [
            {{"Effect": "Allow", "Action": ["iot:Connect"],
              "Resource": ["{client}"]}},
            {{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
              "Resource": ["{topic}"]}},
            {{"Effect": "Allow", "Action": ["iot:Subscribe"],
              "Resource": ["{filter}"]}}
          ]
        }}"#,
        client = arn("client/${iot:Connection.Thing.ThingName}"),
        topic = arn("topic/$aws/things/${iot:Connection.Thing.ThingName}/*"),
        filter = arn("topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/*"),
    ))
}

#[test]
fn thing_scoped_policy_isolates_devices() {
    let policy = thing_scoped();
    let a = device("deviceA", &[]);
    assert!(allows(&policy, &connect("deviceA"), &a));
    assert!(!allows(&policy, &connect("deviceB"), &a));
    assert!(allows(
        &policy,
        &publish("$aws/things/deviceA/shadow/update"),
        &a
    ));
    assert!(allows(
        &policy,
        &receive("$aws/things/deviceA/shadow/update/accepted"),
        &a
    ));
    assert!(!allows(
        &policy,
        &publish("$aws/things/deviceB/shadow/update"),
        &a
    ));
    assert!(!allows(
        &policy,
        &receive("$aws/things/deviceB/shadow/update/accepted"),
        &a
    ));
    // A prefix of another device's name is not that device.
    assert!(!allows(
        &policy,
        &publish("$aws/things/deviceAB/shadow/update"),
        &a
    ));
    assert!(!allows(&policy, &publish("$aws/things/deviceA"), &a));
    assert!(allows(
        &policy,
        &subscribe("$aws/things/deviceA/shadow/#"),
        &a
    ));
    assert!(allows(
        &policy,
        &subscribe("$aws/things/deviceA/jobs/+/get/accepted"),
        &a
    ));
    // The filter is compared as text: `+` in the thing-name level is a literal '+', not a
    // wildcard, so a device cannot subscribe to every thing's topics.
    assert!(!allows(&policy, &subscribe("$aws/things/+/shadow/#"), &a));
    assert!(!allows(&policy, &subscribe("#"), &a));
    assert!(!allows(
        &policy,
        &subscribe("$aws/things/deviceB/shadow/#"),
        &a
    ));
    // Subscribe is checked against topicfilter ARNs only: a topic grant does not cover it.
    let topic_only = doc(&statement("Allow", "iot:*", &arn("topic/*"), None));
    assert!(!allows(&topic_only, &subscribe("a/b"), &a));
    assert!(allows(&topic_only, &publish("a/b"), &a));

    let b = device("deviceB", &[]);
    assert!(allows(
        &policy,
        &publish("$aws/things/deviceB/shadow/update"),
        &b
    ));
    assert!(!allows(
        &policy,
        &publish("$aws/things/deviceA/shadow/update"),
        &b
    ));
}

#[test]
fn thing_variables_need_an_attached_thing() {
    let policy = thing_scoped();
    let mut ctx = device("deviceA", &[]);
    ctx.thing.as_mut().expect("device has a thing").is_attached = false;
    let decision = decide(&[&policy], &connect("deviceA"), &ctx);
    assert_eq!(
        decision.to_string(),
        format!(
            "denied iot:Connect on {}: no policy allows it (unresolved policy variables: \
             iot:Connection.Thing.ThingName)",
            arn("client/deviceA")
        )
    );
    let no_thing = context("deviceA");
    assert!(!allows(&policy, &connect("deviceA"), &no_thing));
    assert!(!allows(
        &policy,
        &publish("$aws/things/deviceA/shadow/update"),
        &no_thing
    ));
}

#[test]
fn explicit_deny_wins_over_allow() {
    let allow_all = doc(&statement("Allow", "iot:*", "*", None));
    let deny = doc(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "AllowOwn", "Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}},
            {{"Sid": "NoSecrets", "Effect": "Deny", "Action": "iot:Publish",
              "Resource": "{}"}}
        ]}}"#,
        arn("topic/secret/*")
    ));
    let ctx = context("c1");
    let decision = decide(&[&allow_all, &deny], &publish("secret/x"), &ctx);
    assert_eq!(
        decision.outcome,
        Outcome::ExplicitDeny(StatementRef {
            policy: "p1".into(),
            index: 1,
            sid: Some("NoSecrets".into()),
        })
    );
    assert_eq!(
        decision.to_string(),
        format!(
            "denied iot:Publish on {}: explicitly denied by policy 'p1' statement 1 (Sid NoSecrets)",
            arn("topic/secret/x")
        )
    );
    // Order does not matter: the Deny wins from either side.
    assert!(!decide(&[&deny, &allow_all], &publish("secret/x"), &ctx).is_allowed());
    let allowed = decide(&[&allow_all, &deny], &publish("public/x"), &ctx);
    assert_eq!(
        allowed.outcome,
        Outcome::Allowed(StatementRef {
            policy: "p0".into(),
            index: 0,
            sid: None
        })
    );
    assert_eq!(
        allowed.to_string(),
        format!(
            "allowed iot:Publish on {}: policy 'p0' statement 0",
            arn("topic/public/x")
        )
    );
    // The Deny names only Publish: Receive on the same topic is still allowed.
    assert!(decide(&[&allow_all, &deny], &receive("secret/x"), &ctx).is_allowed());
}

#[test]
fn no_policy_means_deny() {
    let decision = evaluate(&[], &publish("a/b"), &context("c"));
    assert_eq!(
        decision.outcome,
        Outcome::ImplicitDeny { unresolved: vec![] }
    );
    assert_eq!(
        decision.to_string(),
        format!(
            "denied iot:Publish on {}: no policy allows it",
            arn("topic/a/b")
        )
    );
    let connect_only = doc(&statement("Allow", "iot:Connect", "*", None));
    assert!(!allows(&connect_only, &publish("a/b"), &context("c")));
}

#[test]
fn is_attached_condition_gates_connect() {
    // AWS's example: allow connecting only with a client id that names an attached thing.
    let policy = doc(&statement(
        "Allow",
        "iot:Connect",
        "*",
        Some(json!({"Bool": {"iot:Connection.Thing.IsAttached": "true"}})),
    ));
    assert!(allows(&policy, &connect("dev1"), &device("dev1", &[])));
    let mut unattached = device("dev1", &[]);
    unattached.thing.as_mut().expect("thing").is_attached = false;
    assert!(!allows(&policy, &connect("dev1"), &unattached));
    assert!(!allows(&policy, &connect("dev1"), &context("dev1")));
    // The boolean may be written as JSON true, and compares case-insensitively.
    let policy = doc(&statement(
        "Allow",
        "iot:Connect",
        "*",
        Some(json!({"Bool": {"iot:Connection.Thing.IsAttached": [true]}})),
    ));
    assert!(allows(&policy, &connect("dev1"), &device("dev1", &[])));
    let deny_unattached = doc(&statement(
        "Deny",
        "iot:*",
        "*",
        Some(json!({"Bool": {"iot:Connection.Thing.IsAttached": "False"}})),
    ));
    let allow_all = doc(&statement("Allow", "*", "*", None));
    assert!(
        !decide(
            &[&allow_all, &deny_unattached],
            &connect("x"),
            &context("x")
        )
        .is_allowed()
    );
    assert!(
        decide(
            &[&allow_all, &deny_unattached],
            &connect("x"),
            &device("x", &[])
        )
        .is_allowed()
    );
}

#[test]
fn thing_attribute_conditions_and_variables() {
    let policy = doc(&statement(
        "Allow",
        "iot:Publish",
        &arn("topic/sites/${iot:Connection.Thing.Attributes[site]}/*"),
        Some(
            json!({"StringEquals": {"iot:Connection.Thing.Attributes[role]": ["gateway", "hub"]}}),
        ),
    ));
    let gateway = device("g1", &[("site", "paris"), ("role", "gateway")]);
    assert!(allows(&policy, &publish("sites/paris/temp"), &gateway));
    assert!(!allows(&policy, &publish("sites/lyon/temp"), &gateway));
    let hub = device("h1", &[("site", "lyon"), ("role", "hub")]);
    assert!(allows(&policy, &publish("sites/lyon/temp"), &hub));
    let sensor = device("s1", &[("site", "paris"), ("role", "sensor")]);
    assert!(!allows(&policy, &publish("sites/paris/temp"), &sensor));
    // No `site` attribute: the variable does not resolve and the decision says which.
    let bare = device("b1", &[("role", "gateway")]);
    let decision = decide(&[&policy], &publish("sites//temp"), &bare);
    assert!(!decision.is_allowed());
    assert!(
        decision
            .to_string()
            .ends_with("(unresolved policy variables: iot:Connection.Thing.Attributes[site])"),
        "{decision}"
    );
    // Attribute names are case-sensitive.
    let upper = device("u1", &[("Site", "paris"), ("role", "gateway")]);
    assert!(!allows(&policy, &publish("sites/paris/temp"), &upper));
}

#[test]
fn thing_type_and_certificate_variables() {
    let policy = doc(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Action": "iot:Publish", "Resource": [
                "{}", "{}", "{}"
            ]}}
        ]}}"#,
        arn("topic/types/${iot:Connection.Thing.ThingTypeName}"),
        arn("topic/cn/${iot:Certificate.Subject.CommonName}"),
        arn("topic/issuer/${iot:Certificate.Issuer.Organization}/${iot:Certificate.SerialNumber}"),
    ));
    let mut ctx = device("d1", &[]);
    ctx.certificate = Some(CertificateFacts {
        id: "abc".into(),
        serial_number: Some("1234".into()),
        subject: DistinguishedName::default().with(DnAttribute::CommonName, "d1.example.com"),
        issuer: DistinguishedName::default().with(DnAttribute::Organization, "Acme"),
    });
    assert!(allows(&policy, &publish("types/sensor"), &ctx));
    assert!(allows(&policy, &publish("cn/d1.example.com"), &ctx));
    assert!(allows(&policy, &publish("issuer/Acme/1234"), &ctx));
    assert!(!allows(&policy, &publish("issuer/Acme/999"), &ctx));
    // Without a certificate the other patterns of the same Resource list still count.
    ctx.certificate = None;
    assert!(allows(&policy, &publish("types/sensor"), &ctx));
    assert!(!allows(&policy, &publish("cn/d1.example.com"), &ctx));
}

#[test]
fn client_id_variable_is_literal_text() {
    let policy = doc(&statement(
        "Allow",
        "iot:Publish",
        &arn("topic/clients/${iot:ClientId}/data"),
        None,
    ));
    assert!(allows(&policy, &publish("clients/c1/data"), &context("c1")));
    assert!(!allows(
        &policy,
        &publish("clients/c2/data"),
        &context("c1")
    ));
    // A client id of `*` must not turn into a wildcard.
    let star = context("*");
    assert!(allows(&policy, &publish("clients/*/data"), &star));
    assert!(!allows(&policy, &publish("clients/c2/data"), &star));
    let question = context("c?");
    assert!(!allows(&policy, &publish("clients/c2/data"), &question));
    // No client id (an HTTPS caller): the variable does not resolve.
    let https = AuthzContext::new(ArnScope::new(REGION, ACCOUNT));
    assert!(!allows(&policy, &publish("clients//data"), &https));
}

#[test]
fn escapes_stand_for_literal_characters() {
    let policy = doc(&statement(
        "Allow",
        "iot:Publish",
        &arn("topic/a${*}b/${?}/${$}{x}"),
        None,
    ));
    let ctx = context("c");
    assert!(allows(&policy, &publish("a*b/?/${x}"), &ctx));
    assert!(!allows(&policy, &publish("aXb/?/${x}"), &ctx));
    assert!(!allows(&policy, &publish("a*b/z/${x}"), &ctx));
    // A bare `$` is ordinary text, as in every `$aws` resource.
    let dollar = doc(&statement(
        "Allow",
        "iot:Publish",
        &arn("topic/$aws/x"),
        None,
    ));
    assert!(allows(&dollar, &publish("$aws/x"), &ctx));
}

#[test]
fn version_2008_does_not_substitute_variables() {
    let policy = doc(&format!(
        r#"{{"Version": "2008-10-17", "Statement": {{"Effect": "Allow", "Action": "iot:Publish",
             "Resource": "{}"}}}}"#,
        arn("topic/${iot:ClientId}")
    ));
    assert_eq!(policy.version, PolicyVersion::V2008_10_17);
    assert!(!allows(&policy, &publish("c1"), &context("c1")));
    assert!(allows(&policy, &publish("${iot:ClientId}"), &context("c1")));
    // No Version at all is the 2008 language too (IAM's rule).
    let unversioned =
        doc(r#"{"Statement": {"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}}"#);
    assert_eq!(unversioned.version, PolicyVersion::V2008_10_17);
}

#[test]
fn action_wildcards_and_case() {
    let ctx = context("c");
    let prefixed = doc(&statement("Allow", "iot:Pub*", "*", None));
    assert!(allows(&prefixed, &publish("t"), &ctx));
    assert!(!allows(&prefixed, &subscribe("t"), &ctx));
    let upper = doc(&statement("Allow", "IOT:PUBLISH", "*", None));
    assert!(allows(&upper, &publish("t"), &ctx));
    let single = doc(&statement("Allow", "iot:?eceive", "*", None));
    assert!(allows(&single, &receive("t"), &ctx));
    assert!(!allows(&single, &publish("t"), &ctx));
    let all = doc(&statement("Allow", "*", "*", None));
    assert!(allows(&all, &AuthzRequest::ListRetainedMessages, &ctx));
    // RetainPublish is its own action: iot:Publish does not cover it.
    let publish_only = doc(&statement("Allow", "iot:Publish", "*", None));
    let retain = AuthzRequest::RetainPublish { topic: "t".into() };
    assert!(!allows(&publish_only, &retain, &ctx));
    assert!(!allows(&prefixed, &retain, &ctx));
    let greengrass = doc(&statement("Allow", "greengrass:*", "*", None));
    assert!(!allows(&greengrass, &publish("t"), &ctx));
}

#[test]
fn resource_wildcards() {
    let ctx = context("c");
    let cases = [
        ("topic/a/*", "a/b/c", true),
        ("topic/a/*", "a/", true),
        ("topic/a/*", "a", false),
        ("topic/a/?", "a/b", true),
        ("topic/a/?", "a/bc", false),
        ("topic/*/b", "x/y/b", true),
        ("topic/A/*", "a/b", false),
        ("topic/a*c", "abbbc", true),
        ("topic/a*c", "abbbcd", false),
        ("topic/*a*b*", "xaybz", true),
        ("topic/*", "", true),
    ];
    for (resource, topic, expected) in cases {
        let policy = doc(&statement("Allow", "iot:Publish", &arn(resource), None));
        assert_eq!(
            allows(&policy, &publish(topic), &ctx),
            expected,
            "{resource} vs {topic}"
        );
    }
    let any_region = doc(&statement("Allow", "iot:Publish", "arn:aws:iot:*", None));
    assert!(allows(&any_region, &publish("x"), &ctx));
    let other_account = doc(&statement(
        "Allow",
        "iot:Publish",
        "arn:aws:iot:us-east-1:999999999999:topic/*",
        None,
    ));
    assert!(!allows(&other_account, &publish("x"), &ctx));
    let topicfilter = doc(&statement(
        "Allow",
        "iot:Subscribe",
        &arn("topicfilter/a/#"),
        None,
    ));
    assert!(allows(&topicfilter, &subscribe("a/#"), &ctx));
    assert!(!allows(&topicfilter, &subscribe("a/b"), &ctx));
}

#[test]
fn request_resources() {
    let scope = ArnScope::new(REGION, ACCOUNT);
    let cases = [
        (connect("c1"), "iot:Connect", arn("client/c1")),
        (publish("a/b"), "iot:Publish", arn("topic/a/b")),
        (subscribe("a/#"), "iot:Subscribe", arn("topicfilter/a/#")),
        (receive("a"), "iot:Receive", arn("topic/a")),
        (
            AuthzRequest::GetRetainedMessage { topic: "r".into() },
            "iot:GetRetainedMessage",
            arn("topic/r"),
        ),
        (
            AuthzRequest::ListRetainedMessages,
            "iot:ListRetainedMessages",
            arn("*"),
        ),
        (
            AuthzRequest::UpdateThingShadow {
                thing_name: "t1".into(),
            },
            "iot:UpdateThingShadow",
            arn("thing/t1"),
        ),
        (
            AuthzRequest::StartNextPendingJobExecution {
                thing_name: "t1".into(),
            },
            "iotjobsdata:StartNextPendingJobExecution",
            arn("thing/t1"),
        ),
    ];
    for (request, action, resource) in cases {
        assert_eq!(request.action(), action);
        assert_eq!(request.resource_arn(&scope), resource);
    }
}

#[test]
fn not_action_and_not_resource() {
    let ctx = context("c");
    let everything_but_connect = doc(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "iot:Connect",
            "Resource": "*"}}"#,
    );
    assert!(allows(&everything_but_connect, &publish("t"), &ctx));
    assert!(!allows(&everything_but_connect, &connect("c"), &ctx));

    let allow_all = doc(&statement("Allow", "iot:*", "*", None));
    let only_public = doc(&format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Deny", "Action": "iot:Publish",
            "NotResource": ["{}", "{}"]}}}}"#,
        arn("topic/public/*"),
        arn("topic/$aws/things/${iot:Connection.Thing.ThingName}/*"),
    ));
    let d = device("d", &[]);
    assert!(decide(&[&allow_all, &only_public], &publish("public/x"), &d).is_allowed());
    assert!(decide(&[&allow_all, &only_public], &publish("$aws/things/d/x"), &d).is_allowed());
    assert!(!decide(&[&allow_all, &only_public], &publish("private/x"), &d).is_allowed());
    // Without a thing the second pattern does not resolve: the Deny does not apply, since it
    // never denies through an unresolved variable ...
    assert!(decide(&[&allow_all, &only_public], &publish("private/x"), &ctx).is_allowed());
    // ... and an Allow with NotResource is not widened by one either.
    let allow_not = doc(&format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Action": "iot:Publish",
            "NotResource": "{}"}}}}"#,
        arn("topic/$aws/things/${iot:Connection.Thing.ThingName}/*"),
    ));
    assert!(!allows(&allow_not, &publish("anything"), &ctx));
    assert!(allows(&allow_not, &publish("anything"), &device("d", &[])));
    assert!(!allows(
        &allow_not,
        &publish("$aws/things/d/x"),
        &device("d", &[])
    ));
}

#[test]
fn condition_operators() {
    let ctx = device(
        "dev-7",
        &[("fw", "12"), ("arn", &arn("thing/dev-7")), ("Zone", "EU")],
    );
    let check = |condition: Value| {
        allows(
            &doc(&statement(
                "Allow",
                "iot:Publish",
                "*",
                Some(condition.clone()),
            )),
            &publish("t"),
            &ctx,
        )
    };
    let cases = [
        (json!({"StringLike": {"iot:ClientId": "dev-*"}}), true),
        (json!({"StringLike": {"iot:ClientId": "dev-?"}}), true),
        (json!({"StringLike": {"iot:ClientId": "gw-*"}}), false),
        (json!({"StringNotLike": {"iot:ClientId": "gw-*"}}), true),
        (
            json!({"StringNotEquals": {"iot:ClientId": ["a", "b"]}}),
            true,
        ),
        (
            json!({"StringNotEquals": {"iot:ClientId": ["a", "dev-7"]}}),
            false,
        ),
        (json!({"StringEquals": {"iot:ClientId": "DEV-7"}}), false),
        (
            json!({"StringEqualsIgnoreCase": {"iot:ClientId": "DEV-7"}}),
            true,
        ),
        (
            json!({"StringNotEqualsIgnoreCase": {"iot:ClientId": "DEV-7"}}),
            false,
        ),
        (
            json!({"StringEquals": {"iot:ClientId": "${iot:Connection.Thing.ThingName}"}}),
            true,
        ),
        (json!({"StringEquals": {"IOT:CLIENTID": "dev-7"}}), true),
        (
            json!({"NumericGreaterThanEquals": {"iot:Connection.Thing.Attributes[fw]": 12}}),
            true,
        ),
        (
            json!({"NumericLessThan": {"iot:Connection.Thing.Attributes[fw]": "12"}}),
            false,
        ),
        (
            json!({"NumericLessThan": {"iot:Connection.Thing.Attributes[fw]": "12.5"}}),
            true,
        ),
        (
            json!({"NumericEquals": {"iot:Connection.Thing.Attributes[fw]": "12.0"}}),
            true,
        ),
        (
            json!({"NumericNotEquals": {"iot:Connection.Thing.Attributes[fw]": 3}}),
            true,
        ),
        (
            json!({"NumericEquals": {"iot:Connection.Thing.Attributes[Zone]": 3}}),
            false,
        ),
        (
            json!({"ArnLike": {"iot:Connection.Thing.Attributes[arn]": "arn:aws:iot:*:*:thing/dev-*"}}),
            true,
        ),
        (
            json!({"ArnEquals": {"iot:Connection.Thing.Attributes[arn]": "arn:aws:iot:*:thing/dev-*"}}),
            false,
        ),
        (
            json!({"ArnNotLike": {"iot:Connection.Thing.Attributes[arn]": "arn:aws:iot:*:*:thing/gw-*"}}),
            true,
        ),
        (
            json!({"ArnLike": {"iot:Connection.Thing.Attributes[fw]": "arn:*"}}),
            false,
        ),
        // Absent keys, IAM's way.
        (
            json!({"StringEquals": {"iot:Connection.Thing.Attributes[missing]": "x"}}),
            false,
        ),
        (
            json!({"StringNotEquals": {"iot:Connection.Thing.Attributes[missing]": "x"}}),
            true,
        ),
        (
            json!({"StringEqualsIfExists": {"iot:Connection.Thing.Attributes[missing]": "x"}}),
            true,
        ),
        (
            json!({"StringEqualsIfExists": {"iot:Connection.Thing.Attributes[Zone]": "x"}}),
            false,
        ),
        (
            json!({"ForAllValues:StringEquals": {"iot:Connection.Thing.Attributes[missing]": "x"}}),
            true,
        ),
        (
            json!({"ForAnyValue:StringEquals": {"iot:Connection.Thing.Attributes[missing]": "x"}}),
            false,
        ),
        (
            json!({"ForAnyValue:StringEquals": {"iot:Connection.Thing.Attributes[Zone]": ["US", "EU"]}}),
            true,
        ),
        (
            json!({"Null": {"iot:Connection.Thing.Attributes[missing]": "true"}}),
            true,
        ),
        (
            json!({"Null": {"iot:Connection.Thing.Attributes[Zone]": "true"}}),
            false,
        ),
        (
            json!({"Null": {"iot:Connection.Thing.Attributes[Zone]": false}}),
            true,
        ),
        (json!({"StringEquals": {"aws:SourceIp": "x"}}), false),
        // Several keys and operators are ANDed.
        (
            json!({"StringLike": {"iot:ClientId": "dev-*", "iot:Connection.Thing.Attributes[Zone]": "EU"},
                "Bool": {"iot:Connection.Thing.IsAttached": "true"}}),
            true,
        ),
        (
            json!({"StringLike": {"iot:ClientId": "dev-*", "iot:Connection.Thing.Attributes[Zone]": "US"}}),
            false,
        ),
        (
            json!({"StringLike": {"iot:ClientId": "dev-*"}, "Bool": {"iot:Connection.Thing.IsAttached": "false"}}),
            false,
        ),
    ];
    for (condition, expected) in cases {
        assert_eq!(check(condition.clone()), expected, "{condition}");
    }
}

#[test]
fn unresolved_condition_value_makes_the_statement_not_apply() {
    let allow = doc(&statement(
        "Allow",
        "iot:Publish",
        "*",
        Some(json!({"StringNotEquals": {"iot:ClientId": "${iot:Connection.Thing.ThingName}"}})),
    ));
    // Without a thing, "client id differs from an unknown name" must not be read as true.
    let decision = decide(&[&allow], &publish("t"), &context("c"));
    assert_eq!(
        decision.outcome,
        Outcome::ImplicitDeny {
            unresolved: vec!["iot:Connection.Thing.ThingName".into()]
        }
    );
}

#[test]
fn list_and_shadow_actions() {
    let ctx = device("t1", &[]);
    let policy = doc(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Action": ["iot:GetThingShadow", "iot:UpdateThingShadow"],
              "Resource": "{}"}},
            {{"Effect": "Allow", "Action": "iot:ListRetainedMessages", "Resource": "{}"}}
        ]}}"#,
        arn("thing/${iot:Connection.Thing.ThingName}"),
        arn("*"),
    ));
    let shadow = |name: &str| AuthzRequest::GetThingShadow {
        thing_name: name.into(),
    };
    assert!(allows(&policy, &shadow("t1"), &ctx));
    assert!(!allows(&policy, &shadow("t2"), &ctx));
    assert!(!allows(
        &policy,
        &AuthzRequest::DeleteThingShadow {
            thing_name: "t1".into()
        },
        &ctx
    ));
    assert!(allows(&policy, &AuthzRequest::ListRetainedMessages, &ctx));
}

#[test]
fn parses_the_typed_form() {
    let policy = doc(
        r#"{"Version": "2012-10-17", "Id": "x", "Statement": [{"Sid": "One", "Effect": "Deny",
            "Action": ["iot:Publish", "iot:Receive"], "NotResource": "*",
            "Condition": {"ForAnyValue:StringLikeIfExists": {"iot:ClientId": ["a*", 3, true]}}}]}"#,
    );
    let statement = &policy.statements[0];
    assert_eq!(statement.sid.as_deref(), Some("One"));
    assert_eq!(statement.effect, Effect::Deny);
    assert!(matches!(&statement.actions, Actions::Action(a) if a.len() == 2));
    assert!(matches!(&statement.resources, Resources::NotResource(r) if r[0].source() == "*"));
    let condition = &statement.conditions[0];
    assert_eq!(
        condition.operator,
        ConditionOperator {
            qualifier: Some(SetQualifier::ForAnyValue),
            test: ConditionTest::StringLike,
            if_exists: true,
        }
    );
    assert_eq!(
        condition.operator.to_string(),
        "ForAnyValue:StringLikeIfExists"
    );
    assert_eq!(condition.key, Variable::ClientId);
    let values: Vec<&str> = condition.values.iter().map(Pattern::source).collect();
    assert_eq!(values, ["a*", "3", "true"]);
}

#[test]
fn malformed_documents_say_what_is_wrong() {
    let cases = [
        ("not json", "the policy document is not valid JSON"),
        ("[]", "the policy document must be a JSON object"),
        (
            r#"{"Version": "2012-10-17"}"#,
            "the policy document has no Statement",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": []}"#,
            "Statement: must not be empty",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": "x"}"#,
            "Statement: must be a statement object",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": [1]}"#,
            "Statement[0]: a statement must be a JSON object",
        ),
        (
            r#"{"Version": "2019-01-01", "Statement": {}}"#,
            "Version: \"2019-01-01\" is not a policy version",
        ),
        (
            r#"{"Version": "2012-10-17", "Statemnt": {}}"#,
            "Statemnt: unknown element",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Action": "iot:*", "Resource": "*"}}"#,
            "Statement: the statement has no Effect",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "allow", "Action": "iot:*", "Resource": "*"}}"#,
            "Statement.Effect: \"allow\" is not an effect; use \"Allow\" or \"Deny\"",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}"#,
            "Statement[0]: the statement has no Action (or NotAction)",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*"}}"#,
            "Statement: the statement has no Resource (or NotResource)",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "NotAction": "iot:Connect", "Resource": "*"}}"#,
            "the statement has both Action and NotAction",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["iot:Publish", "Publish"], "Resource": "*"}}"#,
            "Statement.Action[1]: 'Publish' is not an action; write iot:Name",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}"#,
            "'s3:GetObject' is not an action",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:", "Resource": "*"}}"#,
            "'iot:' is not an action",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": [], "Resource": "*"}}"#,
            "Statement.Action: must not be an empty array",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": 7, "Resource": "*"}}"#,
            "Statement.Action: must be a string or an array of strings",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "topic/a"}}"#,
            "Statement.Resource: 'topic/a' is not a resource; write * or an ARN",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "arn:aws:iot:r:a:topic/${iot:ClientId"}}"#,
            "Statement.Resource: the policy variable starting at '${iot:ClientId' has no closing '}'",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "arn:aws:iot:r:a:topic/${}"}}"#,
            "'${}' names no policy variable",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Principal": "*"}}"#,
            "Statement.Principal: an AWS IoT policy names no principal",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Conditions": {}}}"#,
            "Statement.Conditions: unknown statement element",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"StringEqual": {"iot:ClientId": "a"}}}}"#,
            "Statement.Condition.StringEqual: unknown condition operator 'StringEqual'",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}}"#,
            "the condition operator 'DateLessThan' is not supported by drover",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"NullIfExists": {"iot:ClientId": "true"}}}}"#,
            "Null takes no IfExists or set qualifier",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "yes"}}}}"#,
            "Statement.Condition.Bool.iot:Connection.Thing.IsAttached: 'yes' is not a valid value for Bool; expected \"true\" or \"false\"",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"NumericLessThan": {"k": ["1", "ten"]}}}}"#,
            "Statement.Condition.NumericLessThan.k[1]: 'ten' is not a valid value for NumericLessThan; expected a number",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"StringEquals": {"k": null}}}}"#,
            "Statement.Condition.StringEquals.k: null is not a condition value",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"StringEquals": {}}}}"#,
            "Statement.Condition.StringEquals: names no condition key",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": []}}"#,
            "Statement.Condition: must be an object of operators",
        ),
    ];
    for (text, expected) in cases {
        let message = err(text);
        assert!(
            message.contains(expected),
            "{text}\n  gave: {message}\n  want: {expected}"
        );
    }
}

#[test]
fn size_limit_ignores_whitespace() {
    let topic = |len: usize| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:a:topic/{}"}}}}"#,
            "x".repeat(len)
        )
    };
    let base = topic(0).len();
    let at_limit = topic(MAX_POLICY_DOCUMENT_CHARS - base);
    assert_eq!(at_limit.len(), MAX_POLICY_DOCUMENT_CHARS);
    doc(&at_limit);
    // Indentation does not count.
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<Value>(&at_limit).expect("valid JSON"),
    )
    .expect("serializable");
    assert!(pretty.len() > MAX_POLICY_DOCUMENT_CHARS);
    doc(&pretty);
    let over = topic(MAX_POLICY_DOCUMENT_CHARS - base + 1);
    assert_eq!(
        err(&over),
        "the policy document is 2049 characters long, not counting whitespace; the maximum is 2048"
    );
}

#[test]
fn unknown_variables_never_resolve() {
    let policy = doc(&statement(
        "Allow",
        "iot:Publish",
        &arn("topic/${cognito-identity.amazonaws.com:sub}/*"),
        None,
    ));
    let decision = decide(&[&policy], &publish("x/y"), &context("c"));
    assert_eq!(
        decision.outcome,
        Outcome::ImplicitDeny {
            unresolved: vec!["cognito-identity.amazonaws.com:sub".into()]
        }
    );
}

// ---- properties ----------------------------------------------------------------------------

fn arb_action() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "*",
        "iot:*",
        "iot:Connect",
        "iot:Publish",
        "iot:Pub*",
        "iot:Subscribe",
        "iot:Receive",
        "iot:?eceive",
        "iot:RetainPublish",
    ])
}

fn arb_resource() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "*".to_string(),
        arn("client/${iot:ClientId}"),
        arn("client/${iot:Connection.Thing.ThingName}"),
        arn("client/dev*"),
        arn("topic/*"),
        arn("topic/a/*"),
        arn("topic/$aws/things/${iot:Connection.Thing.ThingName}/*"),
        arn("topic/${iot:Connection.Thing.Attributes[site]}/?"),
        arn("topicfilter/a/#"),
        arn("topicfilter/*"),
        arn("topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/*"),
        "arn:aws:iot:*".to_string(),
    ])
}

fn arb_condition() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.3,
        prop::sample::select(vec![
            json!({"Bool": {"iot:Connection.Thing.IsAttached": "true"}}),
            json!({"StringLike": {"iot:ClientId": "dev*"}}),
            json!({"StringNotEquals": {"iot:Connection.Thing.Attributes[site]": "b"}}),
            json!({"StringEquals": {"iot:ClientId": "${iot:Connection.Thing.ThingName}"}}),
            json!({"Null": {"iot:Connection.Thing.ThingTypeName": "false"}}),
        ]),
    )
}

/// One statement as JSON; `effects` picks which effects may appear.
fn arb_statement(effects: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(effects),
        prop::collection::vec(arb_action(), 1..3),
        prop::collection::vec(arb_resource(), 1..3),
        any::<bool>(),
        any::<bool>(),
        arb_condition(),
    )
        .prop_map(
            |(effect, actions, resources, not_action, not_resource, condition)| {
                let mut s = serde_json::Map::new();
                s.insert("Effect".into(), json!(effect));
                s.insert(
                    if not_action { "NotAction" } else { "Action" }.into(),
                    json!(actions),
                );
                s.insert(
                    if not_resource {
                        "NotResource"
                    } else {
                        "Resource"
                    }
                    .into(),
                    json!(resources),
                );
                if let Some(condition) = condition {
                    s.insert("Condition".into(), condition);
                }
                Value::Object(s)
            },
        )
}

fn arb_policy(effects: &'static [&'static str]) -> impl Strategy<Value = PolicyDocument> {
    prop::collection::vec(arb_statement(effects), 1..4).prop_map(|statements| {
        let text = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        PolicyDocument::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
    })
}

fn arb_request() -> impl Strategy<Value = AuthzRequest> {
    let name = prop::sample::select(vec!["dev1", "dev2", "gw", "a", "*", "+"]);
    let topic = prop::sample::select(vec![
        "a/b",
        "a/#",
        "a/+",
        "b/c",
        "$aws/things/dev1/shadow/update",
        "$aws/things/dev2/shadow/#",
        "x/y",
        "dev1",
    ]);
    (0..5usize, name, topic).prop_map(|(kind, name, topic)| match kind {
        0 => connect(name),
        1 => publish(topic),
        2 => subscribe(topic),
        3 => receive(topic),
        _ => AuthzRequest::RetainPublish {
            topic: topic.into(),
        },
    })
}

fn arb_context() -> impl Strategy<Value = AuthzContext> {
    (
        prop::sample::select(vec!["dev1", "dev2", "gw"]),
        prop::option::of((
            any::<bool>(),
            prop::option::of(prop::sample::select(vec!["a", "b", "x"])),
        )),
    )
        .prop_map(|(client_id, thing)| {
            let mut ctx = context(client_id);
            ctx.thing = thing.map(|(is_attached, site)| ConnectionThing {
                name: client_id.to_string(),
                type_name: None,
                attributes: site
                    .map(|s| ("site".to_string(), s.to_string()))
                    .into_iter()
                    .collect::<BTreeMap<_, _>>(),
                is_attached,
            });
            ctx
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_blanket_deny_denies_everything(
        policies in prop::collection::vec(arb_policy(&["Allow", "Deny"]), 0..4),
        request in arb_request(),
        ctx in arb_context(),
        at in 0usize..4,
    ) {
        let deny_all = doc(&statement("Deny", "*", "*", None));
        let mut set: Vec<&PolicyDocument> = policies.iter().collect();
        set.insert(at.min(set.len()), &deny_all);
        let decision = decide(&set, &request, &ctx);
        prop_assert!(
            matches!(decision.outcome, Outcome::ExplicitDeny(_)),
            "{}", decision
        );
    }

    #[test]
    fn adding_an_allow_never_removes_an_allow(
        policies in prop::collection::vec(arb_policy(&["Allow"]), 0..4),
        extra in arb_policy(&["Allow"]),
        request in arb_request(),
        ctx in arb_context(),
    ) {
        let before: Vec<&PolicyDocument> = policies.iter().collect();
        let mut after = before.clone();
        after.push(&extra);
        if decide(&before, &request, &ctx).is_allowed() {
            prop_assert!(decide(&after, &request, &ctx).is_allowed());
        }
    }

    #[test]
    fn policy_order_does_not_change_the_verdict(
        policies in prop::collection::vec(arb_policy(&["Allow", "Deny"]), 0..4),
        request in arb_request(),
        ctx in arb_context(),
    ) {
        let forward: Vec<&PolicyDocument> = policies.iter().collect();
        let backward: Vec<&PolicyDocument> = policies.iter().rev().collect();
        let a = decide(&forward, &request, &ctx);
        let b = decide(&backward, &request, &ctx);
        prop_assert_eq!(a.is_allowed(), b.is_allowed());
        prop_assert_eq!(
            matches!(a.outcome, Outcome::ExplicitDeny(_)),
            matches!(b.outcome, Outcome::ExplicitDeny(_))
        );
    }

    #[test]
    fn glob_agrees_with_a_regex_reference(pattern in "[ab/*?]{0,8}", text in "[ab/]{0,8}") {
        let tokens = Pattern::parse(&pattern, PolicyVersion::V2012_10_17)
            .expect("no variables")
            .tokens(&context("c"))
            .expect("nothing to resolve");
        let reference: String = pattern
            .chars()
            .map(|c| match c {
                '*' => ".*".to_string(),
                '?' => ".".to_string(),
                c => regex::escape(&c.to_string()),
            })
            .collect();
        let reference = regex::Regex::new(&format!("^{reference}$")).expect("valid regex");
        let chars: Vec<char> = text.chars().collect();
        prop_assert_eq!(super::pattern::glob(&tokens, &chars), reference.is_match(&text));
    }

    #[test]
    fn parsing_never_panics(text in "\\PC{0,200}") {
        let _ = PolicyDocument::parse(&text);
    }
}

/// The jobs data-plane actions: AWS's guide spells them `iotjobsdata:...`, its older examples
/// `iot:...`; either spelling grants, either spelling's Deny denies, and the resource is the
/// thing the request names.
#[test]
fn jobs_data_plane_actions_under_both_spellings() {
    let ctx = AuthzContext {
        client_id: None,
        ..device("t1", &[])
    };
    let update = |thing: &str| AuthzRequest::UpdateJobExecution {
        thing_name: thing.into(),
    };
    let current = doc(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["iotjobsdata:GetPendingJobExecutions","iotjobsdata:StartNextPendingJobExecution","iotjobsdata:DescribeJobExecution","iotjobsdata:UpdateJobExecution"],"Resource":"{}"}}]}}"#,
        arn("thing/${iot:Connection.Thing.ThingName}")
    ));
    let legacy = doc(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:UpdateJobExecution","Resource":"{}"}}]}}"#,
        arn("thing/t1")
    ));
    assert!(allows(&current, &update("t1"), &ctx));
    assert!(allows(&legacy, &update("t1"), &ctx));
    assert!(!allows(&current, &update("t2"), &ctx));
    assert!(!allows(&legacy, &update("t2"), &ctx));
    assert!(!allows(
        &legacy,
        &AuthzRequest::GetPendingJobExecutions {
            thing_name: "t1".into()
        },
        &ctx
    ));
    let deny_legacy = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*JobExecution","Resource":"*"}]}"#,
    );
    let decision = decide(&[&current, &deny_legacy], &update("t1"), &ctx);
    assert!(
        matches!(decision.outcome, Outcome::ExplicitDeny(_)),
        "{decision}"
    );
    assert_eq!(decision.action, "iotjobsdata:UpdateJobExecution");
    // The prefix is accepted in documents; an unknown one is not.
    assert!(err(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iotjobs:X","Resource":"*"}]}"#).contains("is not an action"));
}
