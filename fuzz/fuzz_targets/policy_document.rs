//! Fuzzes the AWS IoT policy-document parser: no input may panic, and evaluating a document
//! that parses against every kind of request must not panic either.

#![no_main]

use drover_core::arn::ArnScope;
use drover_core::policy::{self, AuthzContext, AuthzRequest, PolicyDocument};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(document) = PolicyDocument::parse(text) else {
        return;
    };
    let mut context = AuthzContext::new(ArnScope::new("us-east-1", "123456789012"));
    context.client_id = Some("dev-1".into());
    let topic = "$aws/things/dev-1/jobs/get".to_string();
    for request in [
        AuthzRequest::Connect { client_id: "dev-1".into() },
        AuthzRequest::Publish { topic: topic.clone() },
        AuthzRequest::Subscribe { topic_filter: "$aws/things/dev-1/#".into() },
        AuthzRequest::Receive { topic },
    ] {
        let decision = policy::evaluate(&[("fuzzed", &document)], &request, &context);
        let _ = decision.to_string();
    }
});
