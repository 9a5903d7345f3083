//! AWS IoT ARNs: `arn:aws:iot:{region}:{account}:{kind}/{name}`.
//!
//! drover's account id is fixed per data directory; the region comes from `--region`.

/// The partition of ARNs drover issues: fixed region and account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub region: String,
    pub account_id: String,
}

/// The resource kinds that appear in registry ARNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Thing,
    ThingGroup,
    ThingType,
    Certificate,
    CaCertificate,
    Policy,
    Rule,
    /// A topic rule destination; its name is `http/{uuid}`.
    RuleDestination,
}

impl ResourceKind {
    fn prefix(self) -> &'static str {
        match self {
            ResourceKind::Thing => "thing",
            ResourceKind::ThingGroup => "thinggroup",
            ResourceKind::ThingType => "thingtype",
            ResourceKind::Certificate => "cert",
            ResourceKind::CaCertificate => "cacert",
            ResourceKind::Policy => "policy",
            ResourceKind::Rule => "rule",
            ResourceKind::RuleDestination => "ruledestination",
        }
    }
}

impl ArnScope {
    pub fn new(region: impl Into<String>, account_id: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            account_id: account_id.into(),
        }
    }

    pub fn arn(&self, kind: ResourceKind, name: &str) -> String {
        format!(
            "arn:aws:iot:{}:{}:{}/{}",
            self.region,
            self.account_id,
            kind.prefix(),
            name
        )
    }

    pub fn thing(&self, name: &str) -> String {
        self.arn(ResourceKind::Thing, name)
    }

    pub fn rule(&self, name: &str) -> String {
        self.arn(ResourceKind::Rule, name)
    }

    /// An http topic rule destination: `ruledestination/http/{id}`.
    pub fn http_rule_destination(&self, id: &str) -> String {
        self.arn(ResourceKind::RuleDestination, &format!("http/{id}"))
    }

    pub fn thing_group(&self, name: &str) -> String {
        self.arn(ResourceKind::ThingGroup, name)
    }

    pub fn thing_type(&self, name: &str) -> String {
        self.arn(ResourceKind::ThingType, name)
    }

    pub fn certificate(&self, id: &str) -> String {
        self.arn(ResourceKind::Certificate, id)
    }

    pub fn ca_certificate(&self, id: &str) -> String {
        self.arn(ResourceKind::CaCertificate, id)
    }

    pub fn policy(&self, name: &str) -> String {
        self.arn(ResourceKind::Policy, name)
    }

    /// The resource name of an ARN of `kind` in this scope, or `None` when the ARN belongs to
    /// another kind, region or account.
    pub fn parse<'a>(&self, kind: ResourceKind, arn: &'a str) -> Option<&'a str> {
        let rest = arn.strip_prefix("arn:aws:iot:")?;
        let rest = rest.strip_prefix(self.region.as_str())?.strip_prefix(':')?;
        let rest = rest
            .strip_prefix(self.account_id.as_str())?
            .strip_prefix(':')?;
        let name = rest.strip_prefix(kind.prefix())?.strip_prefix('/')?;
        (!name.is_empty()).then_some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_round_trip() {
        let scope = ArnScope::new("us-east-1", "123456789012");
        let arn = scope.thing("dev1");
        assert_eq!(arn, "arn:aws:iot:us-east-1:123456789012:thing/dev1");
        assert_eq!(scope.parse(ResourceKind::Thing, &arn), Some("dev1"));
        assert_eq!(scope.parse(ResourceKind::ThingGroup, &arn), None);
        let other = ArnScope::new("eu-west-1", "123456789012");
        assert_eq!(other.parse(ResourceKind::Thing, &arn), None);
        assert_eq!(
            scope.parse(
                ResourceKind::Thing,
                "arn:aws:iot:us-east-1:123456789012:thing/"
            ),
            None
        );
        assert_eq!(
            scope.thing_group("g"),
            "arn:aws:iot:us-east-1:123456789012:thinggroup/g"
        );
    }
}
