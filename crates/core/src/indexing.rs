//! The fleet-indexing configuration (UpdateIndexingConfiguration / GetIndexingConfiguration):
//! its model, its rules, and the [`Schema`] it gives the query evaluator.
//!
//! The serde shape is AWS's wire shape, and the store keeps it as that JSON, so an operator
//! reading the settings table sees what `aws iot get-indexing-configuration` shows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::query::{FieldType, Schema};

/// One indexed field with its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexField {
    pub name: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub field_type: Option<String>,
}

/// `thingIndexingConfiguration`. Members drover stores but does not act on (device defender,
/// named shadows, filter) are kept as sent so a get returns what the update set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingIndexingConfiguration {
    pub thing_indexing_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_connectivity_indexing_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_defender_indexing_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_shadow_indexing_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<IndexField>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<IndexField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
}

/// `thingGroupIndexingConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupIndexingConfiguration {
    pub thing_group_indexing_mode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<IndexField>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<IndexField>,
}

/// The whole indexing configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexingConfiguration {
    pub thing_indexing_configuration: ThingIndexingConfiguration,
    pub thing_group_indexing_configuration: ThingGroupIndexingConfiguration,
}

impl Default for IndexingConfiguration {
    /// Indexing is off until an operator turns it on, as on AWS.
    fn default() -> Self {
        IndexingConfiguration {
            thing_indexing_configuration: ThingIndexingConfiguration {
                thing_indexing_mode: "OFF".into(),
                thing_connectivity_indexing_mode: Some("OFF".into()),
                device_defender_indexing_mode: None,
                named_shadow_indexing_mode: None,
                managed_fields: Vec::new(),
                custom_fields: Vec::new(),
                filter: None,
            },
            thing_group_indexing_configuration: ThingGroupIndexingConfiguration {
                thing_group_indexing_mode: "OFF".into(),
                managed_fields: Vec::new(),
                custom_fields: Vec::new(),
            },
        }
    }
}

fn one_of(member: &str, value: &str, allowed: &[&str]) -> Result<(), ValidationError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy \
             constraint: Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        )))
    }
}

/// Fields the index manages itself; they cannot be redeclared as custom fields.
const MANAGED_THING_FIELDS: &[(&str, &str)] = &[
    ("thingName", "String"),
    ("thingId", "String"),
    ("thingTypeName", "String"),
    ("thingGroupNames", "String"),
    ("registry.version", "Number"),
];
const MANAGED_CONNECTIVITY_FIELDS: &[(&str, &str)] = &[
    ("connectivity.connected", "Boolean"),
    ("connectivity.timestamp", "Number"),
    ("connectivity.disconnectReason", "String"),
];

fn fields(list: &[(&str, &str)]) -> Vec<IndexField> {
    list.iter()
        .map(|(name, kind)| IndexField {
            name: Some(name.to_string()),
            field_type: Some(kind.to_string()),
        })
        .collect()
}

impl IndexingConfiguration {
    pub fn thing_indexing_enabled(&self) -> bool {
        self.thing_indexing_configuration.thing_indexing_mode != "OFF"
    }

    /// Checks an update and returns the configuration to store: custom fields validated and
    /// de-duplicated, managed fields filled in by mode.
    pub fn validated(mut self) -> Result<IndexingConfiguration, ValidationError> {
        let things = &mut self.thing_indexing_configuration;
        one_of(
            "thingIndexingConfiguration.thingIndexingMode",
            &things.thing_indexing_mode,
            &["OFF", "REGISTRY", "REGISTRY_AND_SHADOW"],
        )?;
        let connectivity = things
            .thing_connectivity_indexing_mode
            .get_or_insert_with(|| "OFF".into());
        one_of(
            "thingIndexingConfiguration.thingConnectivityIndexingMode",
            connectivity,
            &["OFF", "STATUS"],
        )?;
        if things.thing_indexing_mode == "OFF" && connectivity != "OFF" {
            return Err(ValidationError::new(
                "thingConnectivityIndexingMode must be OFF when thingIndexingMode is OFF",
            ));
        }
        if let Some(mode) = &things.device_defender_indexing_mode {
            one_of(
                "thingIndexingConfiguration.deviceDefenderIndexingMode",
                mode,
                &["OFF", "VIOLATIONS"],
            )?;
        }
        if let Some(mode) = &things.named_shadow_indexing_mode {
            one_of(
                "thingIndexingConfiguration.namedShadowIndexingMode",
                mode,
                &["OFF", "ON"],
            )?;
        }
        let mut seen = BTreeMap::new();
        for field in &things.custom_fields {
            let name = field.name.clone().unwrap_or_default();
            let kind = field.field_type.clone().unwrap_or_default();
            one_of(
                "thingIndexingConfiguration.customFields.type",
                &kind,
                &["Number", "String", "Boolean", "Version"],
            )?;
            let managed = MANAGED_THING_FIELDS
                .iter()
                .chain(MANAGED_CONNECTIVITY_FIELDS)
                .any(|(managed, _)| *managed == name);
            if managed {
                return Err(ValidationError::new(format!(
                    "Field {name} is a managed field and cannot be declared as a custom field"
                )));
            }
            let key = name.strip_prefix("attributes.").unwrap_or_default();
            if key.is_empty() && !name.starts_with("shadow.") {
                return Err(ValidationError::new(format!(
                    "Custom field {name:?} must name a registry attribute (attributes.NAME) \
                     or a shadow field (shadow.…)"
                )));
            }
            if !key.is_empty() {
                crate::names::check_attribute_key(key)?;
            }
            if let Some(previous) = seen.insert(name.clone(), kind.clone())
                && previous != kind
            {
                return Err(ValidationError::new(format!(
                    "Custom field {name} is declared twice, as {previous} and as {kind}"
                )));
            }
        }
        things.custom_fields = seen
            .into_iter()
            .map(|(name, kind)| IndexField {
                name: Some(name),
                field_type: Some(kind),
            })
            .collect();
        things.managed_fields = if things.thing_indexing_mode == "OFF" {
            Vec::new()
        } else if connectivity == "STATUS" {
            fields(MANAGED_THING_FIELDS)
                .into_iter()
                .chain(fields(MANAGED_CONNECTIVITY_FIELDS))
                .collect()
        } else {
            fields(MANAGED_THING_FIELDS)
        };
        let groups = &mut self.thing_group_indexing_configuration;
        one_of(
            "thingGroupIndexingConfiguration.thingGroupIndexingMode",
            &groups.thing_group_indexing_mode,
            &["OFF", "ON"],
        )?;
        if groups.thing_group_indexing_mode == "ON" {
            return Err(ValidationError::new(
                "drover does not index thing groups (AWS_ThingGroups); \
                 thingGroupIndexingMode must be OFF",
            ));
        }
        groups.managed_fields = Vec::new();
        Ok(self)
    }

    /// The typing the query evaluator applies.
    pub fn schema(&self) -> Schema {
        let things = &self.thing_indexing_configuration;
        let custom_fields = things
            .custom_fields
            .iter()
            .filter_map(|field| {
                let kind = match field.field_type.as_deref()? {
                    "Number" => FieldType::Number,
                    "Boolean" => FieldType::Boolean,
                    "Version" => FieldType::Version,
                    _ => FieldType::String,
                };
                Some((field.name.clone()?, kind))
            })
            .collect();
        Schema {
            custom_fields,
            connectivity: things.thing_connectivity_indexing_mode.as_deref() == Some("STATUS"),
        }
    }
}
