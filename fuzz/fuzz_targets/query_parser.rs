//! Fuzzes the fleet-index query parser: no input may panic, a query that parses must print
//! to a query that parses back to the same tree, and compiling and evaluating it must not panic.

#![no_main]

use drover_core::query::{self, FieldType, IndexedThing, Matcher, Schema};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = query::parse(text) else {
        return;
    };
    let printed = parsed.query.to_string();
    // Printing may quote or escape, so a query near a length limit can print past it.
    if printed.chars().count() <= 100 {
        let reparsed = query::parse(&printed).expect("a printed query parses");
        assert_eq!(reparsed.query, parsed.query, "printed as {printed}");
    }
    let schema = Schema {
        custom_fields: [
            ("attributes.n".to_string(), FieldType::Number),
            ("attributes.v".to_string(), FieldType::Version),
            ("attributes.b".to_string(), FieldType::Boolean),
        ]
        .into(),
        connectivity: true,
    };
    let thing = IndexedThing {
        name: "Thing-1".into(),
        id: "id".into(),
        type_name: Some("t".into()),
        attributes: [("n".to_string(), "1.5".to_string()), ("v".to_string(), "1.10".to_string())].into(),
        group_names: vec!["g".into()],
        version: 3,
        connectivity: None,
    };
    let _ = Matcher::compile(&parsed, &schema).map(|m| m.matches(&thing, &schema));
    let _ = query::plan(&parsed.query, &schema);
});
