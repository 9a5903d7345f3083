//! What a policy is evaluated against: the request (an action on one resource) and the facts
//! about the connection that policy variables and condition keys read.
//!
//! The services fill these in (which thing the client id names, whether the certificate is
//! attached to it); this module only maps requests to AWS's action names and resource ARNs.

use std::collections::BTreeMap;

use crate::arn::ArnScope;

/// One request to authorize: an AWS IoT policy action on the resource it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzRequest {
    /// MQTT CONNECT; resource `client/{clientId}`.
    Connect {
        client_id: String,
    },
    /// MQTT PUBLISH; resource `topic/{topic}`.
    Publish {
        topic: String,
    },
    /// MQTT SUBSCRIBE, once per filter; resource `topicfilter/{filter}`, the filter compared as
    /// text (`+` and `#` are ordinary characters there).
    Subscribe {
        topic_filter: String,
    },
    /// Delivery of a message to a subscriber; resource `topic/{topic}`.
    Receive {
        topic: String,
    },
    /// PUBLISH with the RETAIN flag (checked in addition to `iot:Publish`); resource
    /// `topic/{topic}`.
    RetainPublish {
        topic: String,
    },
    /// HTTPS GetRetainedMessage; resource `topic/{topic}`.
    GetRetainedMessage {
        topic: String,
    },
    /// HTTPS ListRetainedMessages; it names no resource, so the account-wide
    /// `arn:aws:iot:{region}:{account}:*` stands in (matched by `*` and by `...:*`).
    ListRetainedMessages,
    /// Device shadow operations; resource `thing/{thingName}`.
    GetThingShadow {
        thing_name: String,
    },
    UpdateThingShadow {
        thing_name: String,
    },
    DeleteThingShadow {
        thing_name: String,
    },
    ListNamedShadowsForThing {
        thing_name: String,
    },
    /// Jobs data-plane operations a device makes; resource `thing/{thingName}`.
    DescribeJobExecution {
        thing_name: String,
    },
    GetPendingJobExecutions {
        thing_name: String,
    },
    StartNextPendingJobExecution {
        thing_name: String,
    },
    UpdateJobExecution {
        thing_name: String,
    },
}

impl AuthzRequest {
    /// The policy action, as AWS spells it.
    pub fn action(&self) -> &'static str {
        match self {
            AuthzRequest::Connect { .. } => "iot:Connect",
            AuthzRequest::Publish { .. } => "iot:Publish",
            AuthzRequest::Subscribe { .. } => "iot:Subscribe",
            AuthzRequest::Receive { .. } => "iot:Receive",
            AuthzRequest::RetainPublish { .. } => "iot:RetainPublish",
            AuthzRequest::GetRetainedMessage { .. } => "iot:GetRetainedMessage",
            AuthzRequest::ListRetainedMessages => "iot:ListRetainedMessages",
            AuthzRequest::GetThingShadow { .. } => "iot:GetThingShadow",
            AuthzRequest::UpdateThingShadow { .. } => "iot:UpdateThingShadow",
            AuthzRequest::DeleteThingShadow { .. } => "iot:DeleteThingShadow",
            AuthzRequest::ListNamedShadowsForThing { .. } => "iot:ListNamedShadowsForThing",
            AuthzRequest::DescribeJobExecution { .. } => "iotjobsdata:DescribeJobExecution",
            AuthzRequest::GetPendingJobExecutions { .. } => "iotjobsdata:GetPendingJobExecutions",
            AuthzRequest::StartNextPendingJobExecution { .. } => {
                "iotjobsdata:StartNextPendingJobExecution"
            }
            AuthzRequest::UpdateJobExecution { .. } => "iotjobsdata:UpdateJobExecution",
        }
    }

    /// Another spelling of the same action that policies may use. AWS's guide names the jobs
    /// data-plane actions `iotjobsdata:...` today; its older examples (still in many fleets'
    /// policies) name them `iot:...`. Both mean the same permission, so a statement listing
    /// either covers the request (and an explicit Deny of either denies it).
    pub fn action_alias(&self) -> Option<&'static str> {
        Some(match self {
            AuthzRequest::DescribeJobExecution { .. } => "iot:DescribeJobExecution",
            AuthzRequest::GetPendingJobExecutions { .. } => "iot:GetPendingJobExecutions",
            AuthzRequest::StartNextPendingJobExecution { .. } => "iot:StartNextPendingJobExecution",
            AuthzRequest::UpdateJobExecution { .. } => "iot:UpdateJobExecution",
            _ => return None,
        })
    }

    /// The resource ARN the policy's `Resource` patterns are matched against.
    pub fn resource_arn(&self, scope: &ArnScope) -> String {
        let (kind, name) = match self {
            AuthzRequest::Connect { client_id } => ("client", client_id.as_str()),
            AuthzRequest::Publish { topic }
            | AuthzRequest::Receive { topic }
            | AuthzRequest::RetainPublish { topic }
            | AuthzRequest::GetRetainedMessage { topic } => ("topic", topic.as_str()),
            AuthzRequest::Subscribe { topic_filter } => ("topicfilter", topic_filter.as_str()),
            AuthzRequest::ListRetainedMessages => {
                return format!("arn:aws:iot:{}:{}:*", scope.region, scope.account_id);
            }
            AuthzRequest::GetThingShadow { thing_name }
            | AuthzRequest::UpdateThingShadow { thing_name }
            | AuthzRequest::DeleteThingShadow { thing_name }
            | AuthzRequest::ListNamedShadowsForThing { thing_name }
            | AuthzRequest::DescribeJobExecution { thing_name }
            | AuthzRequest::GetPendingJobExecutions { thing_name }
            | AuthzRequest::StartNextPendingJobExecution { thing_name }
            | AuthzRequest::UpdateJobExecution { thing_name } => ("thing", thing_name.as_str()),
        };
        format!(
            "arn:aws:iot:{}:{}:{kind}/{name}",
            scope.region, scope.account_id
        )
    }
}

/// The facts about a connection (or HTTPS caller) that policy variables and condition keys
/// resolve to. Absent facts leave their variables unresolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzContext {
    /// Region and account of every resource ARN.
    pub scope: ArnScope,
    /// The MQTT client id (`iot:ClientId`); `None` on HTTPS requests.
    pub client_id: Option<String>,
    /// The thing the connection is evaluated as: the registry thing named by the client id
    /// (or exclusively attached to the certificate), if one exists.
    pub thing: Option<ConnectionThing>,
    /// The client certificate, when the caller authenticated with one.
    pub certificate: Option<CertificateFacts>,
}

impl AuthzContext {
    pub fn new(scope: ArnScope) -> Self {
        Self {
            scope,
            client_id: None,
            thing: None,
            certificate: None,
        }
    }
}

/// A registry thing as the thing policy variables see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionThing {
    pub name: String,
    pub type_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// Whether the authenticating principal (certificate) is attached to this thing. AWS only
    /// resolves the thing variables for an attached thing, so an unattached thing is visible
    /// to policies only as `iot:Connection.Thing.IsAttached` = `false`.
    pub is_attached: bool,
}

/// Facts about the client certificate that the `iot:Certificate.*` variables read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertificateFacts {
    /// The AWS certificate id (SHA-256 of the DER, hex). No policy variable reads it; it is here
    /// for the decision's log line and the caller's bookkeeping.
    pub id: String,
    /// The serial number as AWS prints it (decimal).
    pub serial_number: Option<String>,
    pub subject: DistinguishedName,
    pub issuer: DistinguishedName,
}

/// The attributes of an X.509 distinguished name that AWS exposes as
/// `iot:Certificate.Subject.*` and `iot:Certificate.Issuer.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnAttribute {
    Country,
    Organization,
    OrganizationalUnit,
    DistinguishedNameQualifier,
    State,
    CommonName,
    SerialNumber,
    Title,
    Surname,
    GivenName,
    Initials,
    Pseudonym,
    GenerationQualifier,
}

impl DnAttribute {
    pub const ALL: [DnAttribute; 13] = [
        DnAttribute::Country,
        DnAttribute::Organization,
        DnAttribute::OrganizationalUnit,
        DnAttribute::DistinguishedNameQualifier,
        DnAttribute::State,
        DnAttribute::CommonName,
        DnAttribute::SerialNumber,
        DnAttribute::Title,
        DnAttribute::Surname,
        DnAttribute::GivenName,
        DnAttribute::Initials,
        DnAttribute::Pseudonym,
        DnAttribute::GenerationQualifier,
    ];

    /// The name in the policy variable (`iot:Certificate.Subject.{name}`).
    pub fn name(self) -> &'static str {
        match self {
            DnAttribute::Country => "Country",
            DnAttribute::Organization => "Organization",
            DnAttribute::OrganizationalUnit => "OrganizationalUnit",
            DnAttribute::DistinguishedNameQualifier => "DistinguishedNameQualifier",
            DnAttribute::State => "State",
            DnAttribute::CommonName => "CommonName",
            DnAttribute::SerialNumber => "SerialNumber",
            DnAttribute::Title => "Title",
            DnAttribute::Surname => "Surname",
            DnAttribute::GivenName => "GivenName",
            DnAttribute::Initials => "Initials",
            DnAttribute::Pseudonym => "Pseudonym",
            DnAttribute::GenerationQualifier => "GenerationQualifier",
        }
    }
}

/// A distinguished name, one value per attribute (the first, when a certificate repeats one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DistinguishedName(pub BTreeMap<DnAttribute, String>);

impl DistinguishedName {
    pub fn with(mut self, attribute: DnAttribute, value: impl Into<String>) -> Self {
        self.0.insert(attribute, value.into());
        self
    }

    pub fn get(&self, attribute: DnAttribute) -> Option<&str> {
        self.0.get(&attribute).map(String::as_str)
    }
}
