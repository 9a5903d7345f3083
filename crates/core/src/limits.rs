//! AWS IoT registry limits that drover enforces, in one place.
//!
//! Values follow the AWS IoT quotas page and the botocore model. Where drover deliberately
//! differs, the constant says so (and README.md documents it).

/// Names of things, thing types and thing groups: 1..=128 chars of `[a-zA-Z0-9:_-]`.
pub const MAX_NAME_LEN: usize = 128;
/// Attribute keys: up to 128 chars of `[a-zA-Z0-9_.,@/:#-]`.
pub const MAX_ATTRIBUTE_KEY_LEN: usize = 128;
/// Attribute values: up to 800 chars of `[a-zA-Z0-9_.,@/:#=\[\]-]` (empty allowed).
pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 800;
/// AWS allows 50 attributes on a thing with a thing type and 3 without one. drover deliberately
/// allows 50 on every thing: version-targeted fleets routinely carry more than three
/// attributes and the thing type rule only gets in the way (documented in README.md).
pub const MAX_ATTRIBUTES_PER_THING: usize = 50;
/// Thing group attribute payloads: AWS allows 50.
pub const MAX_ATTRIBUTES_PER_GROUP: usize = 50;
/// Thing type searchable attributes: AWS allows 3.
pub const MAX_SEARCHABLE_ATTRIBUTES: usize = 3;
/// Descriptions of thing types and thing groups.
pub const MAX_DESCRIPTION_LEN: usize = 2028;
/// A thing may belong to at most 10 thing groups.
pub const MAX_GROUPS_PER_THING: usize = 10;
/// Thing group hierarchies are at most 7 levels deep.
pub const MAX_GROUP_DEPTH: usize = 7;
/// Tags per resource.
pub const MAX_TAGS: usize = 50;
/// `maxResults` of the registry List* operations.
pub const MAX_LIST_RESULTS: i64 = 250;
/// Default page size when `maxResults` is absent (AWS returns up to the maximum).
pub const DEFAULT_LIST_RESULTS: i64 = 250;
/// ARNs given in place of names (AddThingToThingGroup and friends).
pub const MAX_ARN_LEN: usize = 2048;
