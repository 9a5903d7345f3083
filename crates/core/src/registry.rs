//! The thing registry's model and rules: things, thing types, thing groups, and how an update
//! request turns the current record into the next one.
//!
//! The store persists these records; the services decide *whether* a change may happen (does
//! the type exist, does the version match) and call the functions here to compute *what* the
//! change is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::limits::*;
use crate::names::{check_attribute_key, check_attribute_value, check_description, check_tag};
use crate::time::Timestamp;

/// Registry attributes: string keys to string values, kept sorted for stable output.
pub type Attributes = BTreeMap<String, String>;

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A registered thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thing {
    pub name: String,
    pub id: String,
    pub type_name: Option<String>,
    pub attributes: Attributes,
    /// Starts at 1; every UpdateThing adds 1.
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A thing type.
#[derive(Debug, Clone, PartialEq)]
pub struct ThingType {
    pub name: String,
    pub id: String,
    pub description: Option<String>,
    pub searchable_attributes: Vec<String>,
    /// `mqtt5Configuration` as sent; drover stores and returns it.
    pub mqtt5_configuration: Option<serde_json::Value>,
    pub deprecated: bool,
    pub deprecation_date: Option<Timestamp>,
    pub created_at: Timestamp,
    pub tags: Vec<Tag>,
}

/// The query that selects a dynamic thing group's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicGroupQuery {
    pub query_string: String,
    pub query_version: String,
    pub index_name: String,
    /// ACTIVE, BUILDING or REBUILDING.
    pub status: String,
}

/// A thing group, static or dynamic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingGroup {
    pub name: String,
    pub id: String,
    pub parent: Option<String>,
    pub description: Option<String>,
    pub attributes: Attributes,
    /// Starts at 1; every UpdateThingGroup adds 1.
    pub version: i64,
    pub created_at: Timestamp,
    pub tags: Vec<Tag>,
    pub dynamic: Option<DynamicGroupQuery>,
}

/// AWS's `AttributePayload`: a set of attributes and whether to merge them into the current
/// ones or replace them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributePayload {
    pub attributes: Option<Attributes>,
    pub merge: bool,
}

impl AttributePayload {
    /// Checks each given key and value. The count is checked on the result of applying the
    /// payload, since merging changes it.
    pub fn validate_entries(&self) -> Result<(), ValidationError> {
        for (key, value) in self.attributes.iter().flatten() {
            check_attribute_key(key)?;
            check_attribute_value(key, value)?;
        }
        Ok(())
    }
}

/// Checks every key and value and the attribute count.
pub fn validate_attributes(attributes: &Attributes, max: usize) -> Result<(), ValidationError> {
    for (key, value) in attributes {
        check_attribute_key(key)?;
        check_attribute_value(key, value)?;
    }
    if attributes.len() > max {
        return Err(ValidationError::new(format!(
            "A maximum of {max} attributes is allowed; {} were given",
            attributes.len()
        )));
    }
    Ok(())
}

/// Checks a tag list: each tag and the count.
pub fn validate_tags(tags: &[Tag]) -> Result<(), ValidationError> {
    for tag in tags {
        check_tag(&tag.key, &tag.value)?;
    }
    if tags.len() > MAX_TAGS {
        return Err(ValidationError::new(format!(
            "A maximum of {MAX_TAGS} tags is allowed"
        )));
    }
    Ok(())
}

/// The attributes after applying `payload` to `current`.
///
/// With `merge` the given keys are upserted and a key set to `""` is removed; without it the
/// given map replaces the current one (empty values are dropped there too, since AWS uses
/// `""` to mean "no such attribute"). An absent map leaves the attributes unchanged.
pub fn apply_attribute_payload(current: &Attributes, payload: &AttributePayload) -> Attributes {
    let Some(given) = &payload.attributes else {
        return current.clone();
    };
    let mut next = if payload.merge {
        current.clone()
    } else {
        Attributes::new()
    };
    for (key, value) in given {
        if value.is_empty() {
            next.remove(key);
        } else {
            next.insert(key.clone(), value.clone());
        }
    }
    next
}

/// What CreateThing asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingSpec {
    pub name: String,
    pub type_name: Option<String>,
    pub attributes: Attributes,
}

impl ThingSpec {
    pub fn validate(&self) -> Result<(), ValidationError> {
        crate::names::check_name("thingName", &self.name)?;
        if let Some(type_name) = &self.type_name {
            crate::names::check_name("thingTypeName", type_name)?;
        }
        validate_attributes(&self.attributes, MAX_ATTRIBUTES_PER_THING)
    }

    /// A repeated CreateThing succeeds when it asks for exactly what exists (AWS semantics).
    pub fn matches(&self, existing: &Thing) -> bool {
        self.type_name == existing.type_name && self.attributes == existing.attributes
    }

    pub fn into_thing(self, id: String, now: Timestamp) -> Thing {
        Thing {
            name: self.name,
            id,
            type_name: self.type_name,
            attributes: self.attributes,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// What UpdateThing asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingUpdate {
    pub type_name: Option<String>,
    pub remove_thing_type: bool,
    pub attribute_payload: Option<AttributePayload>,
    pub expected_version: Option<i64>,
}

impl ThingUpdate {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(type_name) = &self.type_name {
            crate::names::check_name("thingTypeName", type_name)?;
            if self.remove_thing_type {
                return Err(ValidationError::new(
                    "Cannot specify both thingTypeName and removeThingType",
                ));
            }
        }
        if let Some(payload) = &self.attribute_payload {
            payload.validate_entries()?;
        }
        Ok(())
    }

    /// The thing after this update, with its version bumped. Fails when the result would
    /// exceed the attribute limit.
    pub fn apply(&self, current: &Thing, now: Timestamp) -> Result<Thing, ValidationError> {
        let mut next = current.clone();
        if let Some(payload) = &self.attribute_payload {
            next.attributes = apply_attribute_payload(&current.attributes, payload);
            validate_attributes(&next.attributes, MAX_ATTRIBUTES_PER_THING)?;
        }
        if self.remove_thing_type {
            next.type_name = None;
        } else if let Some(type_name) = &self.type_name {
            next.type_name = Some(type_name.clone());
        }
        next.version = current.version + 1;
        next.updated_at = now;
        Ok(next)
    }
}

/// What CreateThingType asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThingTypeSpec {
    pub name: String,
    pub description: Option<String>,
    pub searchable_attributes: Vec<String>,
    pub mqtt5_configuration: Option<serde_json::Value>,
    pub tags: Vec<Tag>,
}

impl ThingTypeSpec {
    pub fn validate(&self) -> Result<(), ValidationError> {
        crate::names::check_name("thingTypeName", &self.name)?;
        if let Some(description) = &self.description {
            check_description("thingTypeProperties.thingTypeDescription", description)?;
        }
        for attribute in &self.searchable_attributes {
            check_attribute_key(attribute)?;
        }
        if self.searchable_attributes.len() > MAX_SEARCHABLE_ATTRIBUTES {
            return Err(ValidationError::new(format!(
                "A thing type can have at most {MAX_SEARCHABLE_ATTRIBUTES} searchable attributes"
            )));
        }
        validate_tags(&self.tags)
    }

    /// A repeated CreateThingType succeeds when it asks for exactly what exists.
    pub fn matches(&self, existing: &ThingType) -> bool {
        self.description == existing.description
            && self.searchable_attributes == existing.searchable_attributes
            && self.mqtt5_configuration == existing.mqtt5_configuration
    }

    pub fn into_thing_type(self, id: String, now: Timestamp) -> ThingType {
        ThingType {
            name: self.name,
            id,
            description: self.description,
            searchable_attributes: self.searchable_attributes,
            mqtt5_configuration: self.mqtt5_configuration,
            deprecated: false,
            deprecation_date: None,
            created_at: now,
            tags: self.tags,
        }
    }
}

/// What CreateThingGroup (or CreateDynamicThingGroup) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingGroupSpec {
    pub name: String,
    pub parent: Option<String>,
    pub description: Option<String>,
    pub attributes: Attributes,
    pub tags: Vec<Tag>,
    pub dynamic: Option<DynamicGroupQuery>,
}

impl ThingGroupSpec {
    pub fn validate(&self) -> Result<(), ValidationError> {
        crate::names::check_name("thingGroupName", &self.name)?;
        if let Some(parent) = &self.parent {
            crate::names::check_name("parentGroupName", parent)?;
            if parent == &self.name {
                return Err(ValidationError::new(
                    "A thing group cannot be its own parent",
                ));
            }
        }
        if let Some(description) = &self.description {
            check_description("thingGroupProperties.thingGroupDescription", description)?;
        }
        validate_attributes(&self.attributes, MAX_ATTRIBUTES_PER_GROUP)?;
        validate_tags(&self.tags)
    }

    /// A repeated CreateThingGroup succeeds when it asks for exactly what exists.
    pub fn matches(&self, existing: &ThingGroup) -> bool {
        self.parent == existing.parent
            && self.description == existing.description
            && self.attributes == existing.attributes
            && self.dynamic.as_ref().map(|d| &d.query_string)
                == existing.dynamic.as_ref().map(|d| &d.query_string)
    }

    pub fn into_group(self, id: String, now: Timestamp) -> ThingGroup {
        ThingGroup {
            name: self.name,
            id,
            parent: self.parent,
            description: self.description,
            attributes: self.attributes,
            version: 1,
            created_at: now,
            tags: self.tags,
            dynamic: self.dynamic,
        }
    }
}

/// What UpdateThingGroup asks for (`thingGroupProperties`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingGroupUpdate {
    pub description: Option<String>,
    pub attribute_payload: Option<AttributePayload>,
    pub expected_version: Option<i64>,
}

impl ThingGroupUpdate {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(description) = &self.description {
            check_description("thingGroupProperties.thingGroupDescription", description)?;
        }
        if let Some(payload) = &self.attribute_payload {
            payload.validate_entries()?;
        }
        Ok(())
    }

    pub fn apply(&self, current: &ThingGroup) -> Result<ThingGroup, ValidationError> {
        let mut next = current.clone();
        if let Some(description) = &self.description {
            next.description = Some(description.clone());
        }
        if let Some(payload) = &self.attribute_payload {
            next.attributes = apply_attribute_payload(&current.attributes, payload);
            validate_attributes(&next.attributes, MAX_ATTRIBUTES_PER_GROUP)?;
        }
        next.version = current.version + 1;
        Ok(next)
    }
}

/// Does `expected` (if given) match the record's `current` version?
pub fn version_matches(expected: Option<i64>, current: i64) -> bool {
    expected.is_none_or(|e| e == current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn thing() -> Thing {
        ThingSpec {
            name: "dev1".into(),
            type_name: None,
            attributes: attrs(&[("app_version", "1.0"), ("site", "a")]),
        }
        .into_thing("id".into(), Timestamp(1))
    }

    #[test]
    fn merge_upserts_and_empty_value_removes() {
        let payload = AttributePayload {
            attributes: Some(attrs(&[("app_version", "2.0"), ("site", ""), ("new", "x")])),
            merge: true,
        };
        let next = apply_attribute_payload(&thing().attributes, &payload);
        assert_eq!(next, attrs(&[("app_version", "2.0"), ("new", "x")]));
    }

    #[test]
    fn replace_drops_keys_not_given() {
        let payload = AttributePayload {
            attributes: Some(attrs(&[("k", "v")])),
            merge: false,
        };
        assert_eq!(
            apply_attribute_payload(&thing().attributes, &payload),
            attrs(&[("k", "v")])
        );
        let absent = AttributePayload {
            attributes: None,
            merge: false,
        };
        assert_eq!(
            apply_attribute_payload(&thing().attributes, &absent),
            thing().attributes
        );
    }

    #[test]
    fn update_bumps_version_and_handles_type() {
        let mut current = thing();
        current.type_name = Some("sensor".into());
        let update = ThingUpdate {
            remove_thing_type: true,
            ..Default::default()
        };
        let next = update.apply(&current, Timestamp(5)).unwrap();
        assert_eq!(next.type_name, None);
        assert_eq!(next.version, 2);
        assert_eq!(next.updated_at, Timestamp(5));
        let both = ThingUpdate {
            type_name: Some("t".into()),
            remove_thing_type: true,
            ..Default::default()
        };
        assert!(both.validate().is_err());
    }

    #[test]
    fn update_refuses_too_many_attributes() {
        let many: Attributes = (0..=MAX_ATTRIBUTES_PER_THING)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let update = ThingUpdate {
            attribute_payload: Some(AttributePayload {
                attributes: Some(many),
                merge: true,
            }),
            ..Default::default()
        };
        assert!(update.validate().is_ok());
        assert!(update.apply(&thing(), Timestamp(2)).is_err());
    }

    #[test]
    fn repeated_create_matches_only_identical_specs() {
        let existing = thing();
        let same = ThingSpec {
            name: "dev1".into(),
            type_name: None,
            attributes: existing.attributes.clone(),
        };
        assert!(same.matches(&existing));
        let different = ThingSpec {
            attributes: attrs(&[("x", "y")]),
            ..same
        };
        assert!(!different.matches(&existing));
    }

    #[test]
    fn expected_version() {
        assert!(version_matches(None, 4));
        assert!(version_matches(Some(4), 4));
        assert!(!version_matches(Some(3), 4));
    }

    #[test]
    fn group_specs_validate() {
        let spec = ThingGroupSpec {
            name: "g".into(),
            parent: Some("g".into()),
            ..Default::default()
        };
        assert!(spec.validate().is_err());
        let spec = ThingGroupSpec {
            name: "g".into(),
            description: Some("line A".into()),
            ..Default::default()
        };
        assert!(spec.validate().is_ok());
    }
}
