//! The thing registry through the official AWS SDK for Rust against a real `drover serve`:
//! things, thing types, thing groups, DescribeEndpoint, and the authentication and validation
//! errors, each checked as the typed SDK error a program would match on, and with a read-back
//! showing that a refused request changed nothing.
//!
//! Every test starts its own server (a fresh data directory), so tests stay independent and
//! run in parallel. Performance is not measured here; see the `api-bench` binary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use aws_sdk_iot::Client;
use aws_sdk_iot::error::ProvideErrorMetadata;
use aws_sdk_iot::primitives::DateTime;
use aws_sdk_iot::types::{AttributePayload, ThingGroupProperties, ThingTypeProperties};
use drover_compat_sdk::Server;

fn payload(pairs: &[(&str, &str)], merge: bool) -> AttributePayload {
    let mut builder = AttributePayload::builder().merge(merge);
    for (k, v) in pairs {
        builder = builder.attributes(*k, *v);
    }
    builder.build()
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A server timestamp is a real instant within the last few minutes (and not, say, a
/// milliseconds value read as seconds, which would land tens of thousands of years ahead).
fn assert_recent(date: Option<&DateTime>, what: &str) {
    let date = date.unwrap_or_else(|| panic!("{what} is missing"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs() as i64;
    let age = now - date.secs();
    assert!(
        (-60..600).contains(&age),
        "{what} is {date} ({age} s from now), not a recent instant"
    );
}

async fn describe_version_and_attributes(
    client: &Client,
    name: &str,
) -> Result<(i64, HashMap<String, String>)> {
    let out = client.describe_thing().thing_name(name).send().await?;
    Ok((out.version(), out.attributes().cloned().unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn things_are_created_described_updated_and_deleted() -> Result<()> {
    let server = Server::start().await?;
    let client = server.client()?;
    let region = &server.endpoint.region;
    let account = &server.account_id;

    let created = client
        .create_thing()
        .thing_name("dev1")
        .attribute_payload(payload(&[("fw", "1.0"), ("site", "a")], false))
        .send()
        .await?;
    let thing_id = created.thing_id().context("thingId")?.to_string();
    assert_eq!(
        created.thing_arn(),
        Some(format!("arn:aws:iot:{region}:{account}:thing/dev1").as_str())
    );

    // An identical CreateThing is idempotent and answers with the same thing.
    let again = client
        .create_thing()
        .thing_name("dev1")
        .attribute_payload(payload(&[("fw", "1.0"), ("site", "a")], false))
        .send()
        .await?;
    assert_eq!(again.thing_id(), Some(thing_id.as_str()));

    // The same name with other attributes is a conflict that names the existing thing.
    let err = client
        .create_thing()
        .thing_name("dev1")
        .attribute_payload(payload(&[("fw", "2.0")], false))
        .send()
        .await
        .expect_err("a different CreateThing for an existing name must fail")
        .into_service_error();
    assert!(err.is_resource_already_exists_exception(), "{err:?}");
    if let aws_sdk_iot::operation::create_thing::CreateThingError::ResourceAlreadyExistsException(
        e,
    ) = &err
    {
        assert_eq!(e.resource_id(), Some(thing_id.as_str()));
    }

    let described = client.describe_thing().thing_name("dev1").send().await?;
    assert_eq!(described.thing_name(), Some("dev1"));
    assert_eq!(described.thing_id(), Some(thing_id.as_str()));
    assert_eq!(described.default_client_id(), Some("dev1"));
    assert_eq!(described.version(), 1);
    assert_eq!(
        described.attributes(),
        Some(&map(&[("fw", "1.0"), ("site", "a")]))
    );

    // Merge: given keys change, others stay, an empty value removes its key.
    client
        .update_thing()
        .thing_name("dev1")
        .attribute_payload(payload(&[("site", "b"), ("new", "x"), ("fw", "")], true))
        .send()
        .await?;
    assert_eq!(
        describe_version_and_attributes(&client, "dev1").await?,
        (2, map(&[("site", "b"), ("new", "x")]))
    );

    // Replace: the attributes become exactly the given ones.
    client
        .update_thing()
        .thing_name("dev1")
        .attribute_payload(payload(&[("only", "1")], false))
        .send()
        .await?;
    assert_eq!(
        describe_version_and_attributes(&client, "dev1").await?,
        (3, map(&[("only", "1")]))
    );

    // A stale expectedVersion is refused and changes nothing.
    let err = client
        .update_thing()
        .thing_name("dev1")
        .expected_version(1)
        .attribute_payload(payload(&[("only", "2")], false))
        .send()
        .await
        .expect_err("a stale expectedVersion must fail")
        .into_service_error();
    assert!(err.is_version_conflict_exception(), "{err:?}");
    assert_eq!(
        describe_version_and_attributes(&client, "dev1").await?,
        (3, map(&[("only", "1")]))
    );

    // The current expectedVersion succeeds.
    client
        .update_thing()
        .thing_name("dev1")
        .expected_version(3)
        .attribute_payload(payload(&[("only", "2")], true))
        .send()
        .await?;
    assert_eq!(
        describe_version_and_attributes(&client, "dev1").await?,
        (4, map(&[("only", "2")]))
    );

    // Updating a thing that does not exist.
    let err = client
        .update_thing()
        .thing_name("ghost")
        .attribute_payload(payload(&[("a", "b")], true))
        .send()
        .await
        .expect_err("updating a missing thing must fail")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    // DeleteThing with a stale expectedVersion is refused and the thing stays.
    let err = client
        .delete_thing()
        .thing_name("dev1")
        .expected_version(1)
        .send()
        .await
        .expect_err("a stale expectedVersion must fail")
        .into_service_error();
    assert!(err.is_version_conflict_exception(), "{err:?}");
    assert_eq!(describe_version_and_attributes(&client, "dev1").await?.0, 4);

    client
        .delete_thing()
        .thing_name("dev1")
        .expected_version(4)
        .send()
        .await?;
    let err = client
        .describe_thing()
        .thing_name("dev1")
        .send()
        .await
        .expect_err("a deleted thing is gone")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    // Deleting what does not exist succeeds, as on AWS.
    client.delete_thing().thing_name("dev1").send().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_things_filters_by_attribute_and_paginates() -> Result<()> {
    let server = Server::start().await?;
    let client = server.client()?;
    let mut all = BTreeSet::new();
    let mut gateways = BTreeSet::new();
    for i in 0..13 {
        let name = format!("thing-{i:02}");
        let kind = if i % 3 == 0 { "gateway-v2" } else { "sensor" };
        client
            .create_thing()
            .thing_name(&name)
            .attribute_payload(payload(&[("kind", kind), ("index", &i.to_string())], false))
            .send()
            .await?;
        if kind != "sensor" {
            gateways.insert(name.clone());
        }
        all.insert(name);
    }

    // Pages of 5 across 13 things: 3 pages, every thing exactly once.
    let pages: Vec<_> = client
        .list_things()
        .max_results(5)
        .into_paginator()
        .send()
        .try_collect()
        .await?;
    assert_eq!(pages.len(), 3, "13 things in pages of 5");
    assert!(pages.iter().all(|p| p.things().len() <= 5));
    let listed: Vec<String> = pages
        .iter()
        .flat_map(|p| p.things())
        .filter_map(|t| t.thing_name().map(str::to_string))
        .collect();
    assert_eq!(listed.len(), all.len(), "no thing is listed twice");
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), all);

    // The item paginator sees the same things, with their attributes and versions.
    let items: Vec<_> = client
        .list_things()
        .max_results(4)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await?;
    assert_eq!(items.len(), 13);
    let first = items
        .iter()
        .find(|t| t.thing_name() == Some("thing-01"))
        .context("thing-01 listed")?;
    assert_eq!(
        first.attributes(),
        Some(&map(&[("kind", "sensor"), ("index", "1")]))
    );
    assert_eq!(first.version(), 1);
    assert_eq!(
        first.thing_arn(),
        Some(
            format!(
                "arn:aws:iot:{}:{}:thing/thing-01",
                server.endpoint.region, server.account_id
            )
            .as_str()
        )
    );

    // Exact attribute match, paginated.
    let sensors: BTreeSet<String> = client
        .list_things()
        .attribute_name("kind")
        .attribute_value("sensor")
        .max_results(3)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await?
        .into_iter()
        .filter_map(|t| t.thing_name().map(str::to_string))
        .collect();
    assert_eq!(
        sensors,
        all.difference(&gateways).cloned().collect::<BTreeSet<_>>()
    );

    // Prefix attribute match.
    let prefixed: BTreeSet<String> = client
        .list_things()
        .attribute_name("kind")
        .attribute_value("gateway")
        .use_prefix_attribute_value(true)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await?
        .into_iter()
        .filter_map(|t| t.thing_name().map(str::to_string))
        .collect();
    assert_eq!(prefixed, gateways);

    // A page size outside 1..=250 and a forged nextToken are refused, not silently clamped or
    // restarted.
    for bad in [0, 251] {
        let err = client
            .list_things()
            .max_results(bad)
            .send()
            .await
            .expect_err("maxResults outside 1..=250 must fail")
            .into_service_error();
        assert!(err.is_invalid_request_exception(), "{bad}: {err:?}");
    }
    let err = client
        .list_things()
        .next_token("not-a-token-drover-issued")
        .send()
        .await
        .expect_err("a forged nextToken must fail")
        .into_service_error();
    assert!(err.is_invalid_request_exception(), "{err:?}");

    // Without the prefix flag, "gateway" matches nothing exactly.
    let exact = client
        .list_things()
        .attribute_name("kind")
        .attribute_value("gateway")
        .send()
        .await?;
    assert!(exact.things().is_empty());
    assert!(exact.next_token().is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thing_types_are_created_deprecated_and_deleted() -> Result<()> {
    let server = Server::start().await?;
    let client = server.client()?;
    let properties = ThingTypeProperties::builder()
        .thing_type_description("temperature sensors")
        .searchable_attributes("fw")
        .build();

    let created = client
        .create_thing_type()
        .thing_type_name("sensor")
        .thing_type_properties(properties.clone())
        .send()
        .await?;
    let type_id = created.thing_type_id().context("thingTypeId")?.to_string();
    assert_eq!(
        created.thing_type_arn(),
        Some(
            format!(
                "arn:aws:iot:{}:{}:thingtype/sensor",
                server.endpoint.region, server.account_id
            )
            .as_str()
        )
    );
    let again = client
        .create_thing_type()
        .thing_type_name("sensor")
        .thing_type_properties(properties)
        .send()
        .await?;
    assert_eq!(again.thing_type_id(), Some(type_id.as_str()));

    let described = client
        .describe_thing_type()
        .thing_type_name("sensor")
        .send()
        .await?;
    assert_eq!(described.thing_type_id(), Some(type_id.as_str()));
    let props = described
        .thing_type_properties()
        .context("thingTypeProperties")?;
    assert_eq!(props.thing_type_description(), Some("temperature sensors"));
    assert_eq!(props.searchable_attributes(), ["fw".to_string()]);
    let metadata = described.thing_type_metadata().context("metadata")?;
    assert!(!metadata.deprecated());
    assert!(metadata.deprecation_date().is_none());
    // Epoch-seconds timestamps parse into a DateTime, and mean now.
    assert_recent(metadata.creation_date(), "thing type creationDate");

    client
        .create_thing_type()
        .thing_type_name("gateway")
        .send()
        .await?;
    let listed = client.list_thing_types().send().await?;
    let names: BTreeSet<&str> = listed
        .thing_types()
        .iter()
        .filter_map(|t| t.thing_type_name())
        .collect();
    assert_eq!(names, BTreeSet::from(["gateway", "sensor"]));
    let by_name = client
        .list_thing_types()
        .thing_type_name("sensor")
        .send()
        .await?;
    assert_eq!(by_name.thing_types().len(), 1);
    assert_recent(
        by_name.thing_types()[0]
            .thing_type_metadata()
            .and_then(|m| m.creation_date()),
        "listed creationDate",
    );

    client
        .create_thing()
        .thing_name("probe")
        .thing_type_name("sensor")
        .send()
        .await?;
    let thing = client.describe_thing().thing_name("probe").send().await?;
    assert_eq!(thing.thing_type_name(), Some("sensor"));

    // Deprecating a type that does not exist.
    let err = client
        .deprecate_thing_type()
        .thing_type_name("nothing")
        .send()
        .await
        .expect_err("a missing type cannot be deprecated")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    // A type that is not deprecated cannot be deleted, and stays.
    let err = client
        .delete_thing_type()
        .thing_type_name("sensor")
        .send()
        .await
        .expect_err("deleting a live thing type must fail")
        .into_service_error();
    assert!(err.is_invalid_request_exception(), "{err:?}");

    // Deprecate, undo, deprecate again.
    client
        .deprecate_thing_type()
        .thing_type_name("sensor")
        .send()
        .await?;
    let metadata = client
        .describe_thing_type()
        .thing_type_name("sensor")
        .send()
        .await?
        .thing_type_metadata
        .context("metadata")?;
    assert!(metadata.deprecated());
    assert_recent(metadata.deprecation_date(), "deprecationDate");
    client
        .deprecate_thing_type()
        .thing_type_name("sensor")
        .undo_deprecate(true)
        .send()
        .await?;
    let metadata = client
        .describe_thing_type()
        .thing_type_name("sensor")
        .send()
        .await?
        .thing_type_metadata
        .context("metadata")?;
    assert!(!metadata.deprecated());
    client
        .deprecate_thing_type()
        .thing_type_name("sensor")
        .send()
        .await?;

    // A deprecated type takes no new things.
    let err = client
        .create_thing()
        .thing_name("probe2")
        .thing_type_name("sensor")
        .send()
        .await
        .expect_err("a deprecated type takes no new things")
        .into_service_error();
    assert!(err.is_invalid_request_exception(), "{err:?}");
    let err = client
        .describe_thing()
        .thing_name("probe2")
        .send()
        .await
        .expect_err("the refused thing was not created")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    // A type still used by a thing cannot be deleted.
    let err = client
        .delete_thing_type()
        .thing_type_name("sensor")
        .send()
        .await
        .expect_err("a type in use cannot be deleted")
        .into_service_error();
    assert!(err.is_invalid_request_exception(), "{err:?}");
    client
        .describe_thing_type()
        .thing_type_name("sensor")
        .send()
        .await?;

    client.delete_thing().thing_name("probe").send().await?;
    client
        .delete_thing_type()
        .thing_type_name("sensor")
        .send()
        .await?;
    let err = client
        .describe_thing_type()
        .thing_type_name("sensor")
        .send()
        .await
        .expect_err("a deleted type is gone")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thing_groups_nest_and_hold_things() -> Result<()> {
    let server = Server::start().await?;
    let client = server.client()?;
    let arn = |name: &str| {
        format!(
            "arn:aws:iot:{}:{}:thinggroup/{name}",
            server.endpoint.region, server.account_id
        )
    };

    client
        .create_thing_group()
        .thing_group_name("plant")
        .thing_group_properties(
            ThingGroupProperties::builder()
                .thing_group_description("the plant")
                .attribute_payload(payload(&[("city", "lyon")], false))
                .build(),
        )
        .send()
        .await?;
    let line = client
        .create_thing_group()
        .thing_group_name("line1")
        .parent_group_name("plant")
        .send()
        .await?;
    assert_eq!(line.thing_group_arn(), Some(arn("line1").as_str()));
    client
        .create_thing_group()
        .thing_group_name("cell1")
        .parent_group_name("line1")
        .send()
        .await?;

    // A parent that does not exist is refused and nothing is created.
    let err = client
        .create_thing_group()
        .thing_group_name("orphan")
        .parent_group_name("nowhere")
        .send()
        .await
        .expect_err("a missing parent must fail")
        .into_service_error();
    // CreateThingGroup models no ResourceNotFoundException; AWS answers InvalidRequest.
    assert!(err.is_invalid_request_exception(), "{err:?}");
    let err = client
        .describe_thing_group()
        .thing_group_name("orphan")
        .send()
        .await
        .expect_err("the refused group was not created")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    let cell = client
        .describe_thing_group()
        .thing_group_name("cell1")
        .send()
        .await?;
    assert_eq!(cell.thing_group_arn(), Some(arn("cell1").as_str()));
    assert_eq!(cell.version(), 1);
    let metadata = cell.thing_group_metadata().context("metadata")?;
    assert_eq!(metadata.parent_group_name(), Some("line1"));
    let ancestors: Vec<(Option<&str>, Option<&str>)> = metadata
        .root_to_parent_thing_groups()
        .iter()
        .map(|g| (g.group_name(), g.group_arn()))
        .collect();
    assert_eq!(
        ancestors,
        [
            (Some("plant"), Some(arn("plant").as_str())),
            (Some("line1"), Some(arn("line1").as_str()))
        ]
    );
    assert_recent(metadata.creation_date(), "thing group creationDate");
    let plant = client
        .describe_thing_group()
        .thing_group_name("plant")
        .send()
        .await?;
    let props = plant.thing_group_properties().context("properties")?;
    assert_eq!(props.thing_group_description(), Some("the plant"));
    assert_eq!(
        props.attribute_payload().and_then(|p| p.attributes()),
        Some(&map(&[("city", "lyon")]))
    );
    let plant_metadata = plant.thing_group_metadata().context("metadata")?;
    assert!(plant_metadata.parent_group_name().is_none());
    assert!(plant_metadata.root_to_parent_thing_groups().is_empty());

    // UpdateThingGroup bumps the version; a stale expectedVersion changes nothing.
    let updated = client
        .update_thing_group()
        .thing_group_name("line1")
        .expected_version(1)
        .thing_group_properties(
            ThingGroupProperties::builder()
                .thing_group_description("line one")
                .build(),
        )
        .send()
        .await?;
    assert_eq!(updated.version(), 2);
    let err = client
        .update_thing_group()
        .thing_group_name("line1")
        .expected_version(1)
        .thing_group_properties(
            ThingGroupProperties::builder()
                .thing_group_description("stale")
                .build(),
        )
        .send()
        .await
        .expect_err("a stale expectedVersion must fail")
        .into_service_error();
    assert!(err.is_version_conflict_exception(), "{err:?}");
    let line = client
        .describe_thing_group()
        .thing_group_name("line1")
        .send()
        .await?;
    assert_eq!(line.version(), 2);
    assert_eq!(
        line.thing_group_properties()
            .and_then(|p| p.thing_group_description()),
        Some("line one")
    );

    for thing in ["d1", "d2", "d3"] {
        client.create_thing().thing_name(thing).send().await?;
    }
    client
        .add_thing_to_thing_group()
        .thing_group_name("plant")
        .thing_name("d1")
        .send()
        .await?;
    client
        .add_thing_to_thing_group()
        .thing_group_name("line1")
        .thing_name("d2")
        .send()
        .await?;
    // By ARN, as consoles and scripts often do.
    client
        .add_thing_to_thing_group()
        .thing_group_arn(arn("cell1"))
        .thing_arn(format!(
            "arn:aws:iot:{}:{}:thing/d3",
            server.endpoint.region, server.account_id
        ))
        .send()
        .await?;

    // Adding to a group that does not exist is refused.
    let err = client
        .add_thing_to_thing_group()
        .thing_group_name("nowhere")
        .thing_name("d1")
        .send()
        .await
        .expect_err("a missing group must fail")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    let things_in = |group: &'static str, recursive: bool| {
        let client = client.clone();
        async move {
            let things: BTreeSet<String> = client
                .list_things_in_thing_group()
                .thing_group_name(group)
                .recursive(recursive)
                .max_results(2)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await?
                .into_iter()
                .collect();
            anyhow::Ok(things)
        }
    };
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(things_in("plant", false).await?, set(&["d1"]));
    assert_eq!(things_in("plant", true).await?, set(&["d1", "d2", "d3"]));
    assert_eq!(things_in("line1", true).await?, set(&["d2", "d3"]));

    let groups_of_d3 = client
        .list_thing_groups_for_thing()
        .thing_name("d3")
        .send()
        .await?;
    let groups: Vec<(Option<&str>, Option<&str>)> = groups_of_d3
        .thing_groups()
        .iter()
        .map(|g| (g.group_name(), g.group_arn()))
        .collect();
    assert_eq!(groups, [(Some("cell1"), Some(arn("cell1").as_str()))]);

    client
        .remove_thing_from_thing_group()
        .thing_group_name("line1")
        .thing_name("d2")
        .send()
        .await?;
    assert_eq!(things_in("line1", true).await?, set(&["d3"]));
    let groups_of_d2 = client
        .list_thing_groups_for_thing()
        .thing_name("d2")
        .send()
        .await?;
    assert!(groups_of_d2.thing_groups().is_empty());

    // Listings about a thing or group that does not exist.
    let err = client
        .list_things_in_thing_group()
        .thing_group_name("nowhere")
        .send()
        .await
        .expect_err("a missing group has no things")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let err = client
        .list_thing_groups_for_thing()
        .thing_name("ghost")
        .send()
        .await
        .expect_err("a missing thing has no groups")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    // DeleteThingGroup with a stale expectedVersion is refused and the group stays.
    let err = client
        .delete_thing_group()
        .thing_group_name("cell1")
        .expected_version(7)
        .send()
        .await
        .expect_err("a stale expectedVersion must fail")
        .into_service_error();
    assert!(err.is_version_conflict_exception(), "{err:?}");
    assert_eq!(things_in("cell1", false).await?, set(&["d3"]));

    // A group with a child group cannot be deleted, and stays.
    let err = client
        .delete_thing_group()
        .thing_group_name("line1")
        .send()
        .await
        .expect_err("a group with children cannot be deleted")
        .into_service_error();
    assert!(err.is_invalid_request_exception(), "{err:?}");
    client
        .describe_thing_group()
        .thing_group_name("line1")
        .send()
        .await?;

    client
        .delete_thing_group()
        .thing_group_name("cell1")
        .send()
        .await?;
    let err = client
        .describe_thing_group()
        .thing_group_name("cell1")
        .send()
        .await
        .expect_err("a deleted group is gone")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let groups_of_d3 = client
        .list_thing_groups_for_thing()
        .thing_name("d3")
        .send()
        .await?;
    assert!(groups_of_d3.thing_groups().is_empty());
    assert_eq!(things_in("plant", true).await?, set(&["d1"]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_endpoint_names_the_mqtt_and_jobs_listeners() -> Result<()> {
    let server = Server::start().await?;
    let client = server.client()?;
    let data = client
        .describe_endpoint()
        .endpoint_type("iot:Data-ATS")
        .send()
        .await?;
    assert_eq!(
        data.endpoint_address(),
        Some(server.mqtt_addr.to_string().as_str())
    );
    let jobs = client
        .describe_endpoint()
        .endpoint_type("iot:Jobs")
        .send()
        .await?;
    assert_eq!(
        jobs.endpoint_address(),
        Some(server.http_addr.to_string().as_str())
    );
    let err = client
        .describe_endpoint()
        .endpoint_type("iot:Nothing")
        .send()
        .await
        .expect_err("an unknown endpoint type must fail")
        .into_service_error();
    assert!(err.is_invalid_request_exception(), "{err:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_bad_signatures_are_refused_and_change_nothing() -> Result<()> {
    let server = Server::start().await?;
    let client = server.client()?;
    let thing_count = |client: Client| async move {
        let things = client.list_things().send().await?;
        anyhow::Ok(things.things().len())
    };

    for bad in ["bad name!", "has/slash", &"x".repeat(129)] {
        let err = client
            .create_thing()
            .thing_name(bad)
            .send()
            .await
            .expect_err("an invalid thing name must fail");
        let service = err.into_service_error();
        assert!(
            service.is_invalid_request_exception()
                // `has/slash` cannot even reach the CreateThing route: a path with an extra
                // segment is no operation at all. Either way nothing is created.
                || service.code() == Some("UnknownOperationException"),
            "{bad}: {service:?}"
        );
    }
    let err = client
        .create_thing_group()
        .thing_group_name("bad group name")
        .send()
        .await
        .expect_err("an invalid group name must fail")
        .into_service_error();
    assert!(err.is_invalid_request_exception(), "{err:?}");
    let err = client
        .list_things()
        .attribute_value("orphan-value")
        .send()
        .await
        .expect_err("attributeValue without attributeName must fail")
        .into_service_error();
    assert!(err.is_invalid_request_exception(), "{err:?}");
    assert_eq!(thing_count(client.clone()).await?, 0);

    // Right key id, wrong secret: the signature does not verify.
    let wrong_secret =
        server.client_with_keys(&server.endpoint.access_key_id, "not-the-secret-key")?;
    let err = wrong_secret
        .create_thing()
        .thing_name("sneaky")
        .send()
        .await
        .expect_err("a bad signature must be refused");
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(403),
        "{err:?}"
    );

    // A key id the server never issued.
    let stranger = server.client_with_keys("AKIAEXAMPLEUNKNOWN00", "whatever")?;
    let err = stranger
        .create_thing()
        .thing_name("sneaky")
        .send()
        .await
        .expect_err("an unknown access key must be refused");
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    let err = stranger
        .list_things()
        .send()
        .await
        .expect_err("an unknown access key must be refused");
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");

    // None of the refused requests created anything.
    assert_eq!(thing_count(client.clone()).await?, 0);
    let err = client
        .describe_thing()
        .thing_name("sneaky")
        .send()
        .await
        .expect_err("sneaky was never created")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    // The server still answers the rightful client.
    client.create_thing().thing_name("fine").send().await?;
    let attrs: BTreeMap<String, String> = client
        .describe_thing()
        .thing_name("fine")
        .send()
        .await?
        .attributes()
        .map(|a| a.clone().into_iter().collect())
        .unwrap_or_default();
    assert!(attrs.is_empty());
    Ok(())
}
