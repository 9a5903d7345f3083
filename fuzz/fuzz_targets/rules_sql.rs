//! Fuzzes the AWS IoT SQL parser and evaluator of topic rules: no statement text may panic the
//! parser, every error must point inside the input, and every statement that parses must
//! evaluate without panicking against a JSON payload and a binary one. The input also goes
//! through the substitution-template parser, which shares the expression grammar.

#![no_main]

use drover_core::rules::{Context, Payload, Template, evaluate, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = Context {
        topic: "devices/d1/telemetry",
        client_id: Some("d1"),
        principal: None,
        timestamp_ms: 1_700_000_000_000,
        new_uuid: &|| "00000000-0000-4000-8000-000000000000".to_string(),
    };
    let json = Payload::parse(
        br#"{"a": {"b": [1, 2.5, "x", null, {"c": true}]}, "temp": 41, "s": "abc"}"#,
    );
    let binary = Payload::parse(b"\x00\xff\x10");
    match parse(text) {
        Ok(statement) => {
            let _ = evaluate(&statement, &ctx, &json);
            let _ = evaluate(&statement, &ctx, &binary);
        }
        Err(e) => assert!(e.offset <= text.len() && e.line >= 1 && e.column >= 1),
    }
    if let Ok(template) = Template::parse(text) {
        let _ = template.render(&ctx, &json);
        let _ = template.render_defined(&ctx, &binary);
    }
});
