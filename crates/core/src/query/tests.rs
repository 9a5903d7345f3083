//! Tests of the query language: parsing, errors with positions, typed evaluation, and two
//! properties — printing then parsing a tree gives the same tree, and the compiled matcher
//! agrees with a deliberately naive reference evaluator on random queries and things.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::registry::Attributes;

fn q(text: &str) -> Query {
    parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).query
}

fn err(text: &str) -> QueryError {
    match parse(text) {
        Ok(parsed) => panic!("{text} parsed as {:?}", parsed.query),
        Err(e) => e,
    }
}

fn term(field: Option<Field>, predicate: Predicate) -> Query {
    Query::Term(Term { field, predicate })
}

fn attr(key: &str) -> Option<Field> {
    Some(Field::Attribute(key.into()))
}

fn thing(name: &str, attributes: &[(&str, &str)]) -> IndexedThing {
    IndexedThing {
        name: name.into(),
        id: format!("id-{name}"),
        type_name: None,
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        group_names: Vec::new(),
        version: 1,
        connectivity: None,
    }
}

fn schema(fields: &[(&str, FieldType)]) -> Schema {
    Schema {
        custom_fields: fields.iter().map(|(k, t)| (k.to_string(), *t)).collect(),
        connectivity: true,
    }
}

fn matching(query: &str, schema: &Schema, things: &[IndexedThing]) -> Vec<String> {
    let (_, matcher) = compile(query, schema).unwrap_or_else(|e| panic!("{query}: {e}"));
    things
        .iter()
        .filter(|t| matcher.matches(t, schema))
        .map(|t| t.name.clone())
        .collect()
}

#[test]
fn parses_the_documented_shapes() {
    assert_eq!(
        q("attributes.app_version < 2.0"),
        term(
            attr("app_version"),
            Predicate::Compare(CompareOp::Lt, "2.0".into())
        )
    );
    assert_eq!(
        q("attributes.app_version<2.0"),
        q("attributes.app_version < 2.0")
    );
    assert_eq!(
        q("attributes.x:>=5"),
        term(attr("x"), Predicate::Compare(CompareOp::Ge, "5".into()))
    );
    assert_eq!(
        q("thingName:abc*"),
        term(
            Some(Field::ThingName),
            Predicate::Matches(Text(vec![Piece::Literal("abc".into()), Piece::AnyChars]))
        )
    );
    assert_eq!(
        q("connectivity.connected:*"),
        term(Some(Field::ConnectivityConnected), Predicate::Exists)
    );
    assert_eq!(q("*"), term(None, Predicate::Exists));
    assert_eq!(
        q("attributes.v:[1 TO 5}"),
        term(
            attr("v"),
            Predicate::Range {
                lower: Bound::Inclusive("1".into()),
                upper: Bound::Exclusive("5".into())
            }
        )
    );
    assert_eq!(
        q("attributes.v:{* TO 5]"),
        term(
            attr("v"),
            Predicate::Range {
                lower: Bound::Unbounded,
                upper: Bound::Inclusive("5".into())
            }
        )
    );
    // Implicit AND, precedence and exclusion.
    let a = term(
        Some(Field::ThingName),
        Predicate::Matches(Text::literal("a")),
    );
    let b = term(
        Some(Field::ThingTypeName),
        Predicate::Matches(Text::literal("b")),
    );
    let c = term(None, Predicate::Matches(Text::literal("c")));
    assert_eq!(
        q("thingName:a thingTypeName:b"),
        Query::And(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        q("thingName:a AND thingTypeName:b OR c"),
        Query::Or(vec![Query::And(vec![a.clone(), b.clone()]), c.clone()])
    );
    assert_eq!(
        q("thingName:a AND (thingTypeName:b OR c)"),
        Query::And(vec![a.clone(), Query::Or(vec![b.clone(), c.clone()])])
    );
    assert_eq!(q("-thingName:a"), Query::Not(Box::new(a.clone())));
    assert_eq!(q("NOT thingName:a"), Query::Not(Box::new(a.clone())));
    assert_eq!(q("-(thingName:a)"), Query::Not(Box::new(a.clone())));
    // Field grouping, as in AWS's example.
    assert_eq!(
        q("thingName:(tv* AND -plasma)"),
        Query::And(vec![
            term(
                Some(Field::ThingName),
                Predicate::Matches(Text(vec![Piece::Literal("tv".into()), Piece::AnyChars]))
            ),
            Query::Not(Box::new(term(
                Some(Field::ThingName),
                Predicate::Matches(Text::literal("plasma"))
            ))),
        ])
    );
    // Quoting and escaping; a sign inside a value is part of it.
    assert_eq!(
        q(r#"attributes.path:"a b\"c""#),
        term(attr("path"), Predicate::Matches(Text::literal("a b\"c")))
    );
    assert_eq!(
        q(r"attributes.path:a\/b\:c"),
        term(attr("path"), Predicate::Matches(Text::literal("a/b:c")))
    );
    assert_eq!(
        q("attributes.t:-5"),
        term(attr("t"), Predicate::Matches(Text::literal("-5")))
    );
    assert_eq!(
        q("attributes.t < -5"),
        term(attr("t"), Predicate::Compare(CompareOp::Lt, "-5".into()))
    );
    // Keywords are upper case only.
    assert_eq!(
        q("and"),
        term(None, Predicate::Matches(Text::literal("and")))
    );
}

#[test]
fn errors_point_at_the_problem() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        (
            "(thingName:a",
            12,
            "expected ')' to close the '(' at position 1",
        ),
        ("thingName:a)", 11, "no matching '('"),
        ("((a) OR b", 9, "expected ')'"),
        ("thingName:a OR", 14, "expected a term"),
        ("AND thingName:a", 0, "expected a term"),
        ("thingName:a ~2", 12, "fuzzy"),
        ("thingName:a^2", 11, "boosting"),
        ("thingName=a", 9, "unknown operator '='"),
        ("thingName:/a.*/", 10, "regular expressions"),
        ("+thingName:a", 0, "'+' operator"),
        ("thingName:a && b", 12, "use AND"),
        ("thingname:a", 0, "unknown field 'thingname'"),
        ("colour:red", 0, "unknown field 'colour'"),
        ("attributes.x:[1 TO", 18, "range bound"),
        ("attributes.x:[1 5]", 16, "expected TO"),
        ("attributes.x:[* TO *]", 19, "at least one bound"),
        ("attributes.x < 1*", 15, "cannot contain wildcards"),
        ("thingName:\"abc", 10, "never closed"),
        ("thingName:a -", 12, "'-' must be followed"),
        ("thingName:(attributes.a:b)", 11, "only values"),
        ("thingName:*a OR thingTypeName:*b", 16, "only one term"),
        ("attributes.a@b:c", 12, "must be escaped"),
    ];
    for (text, offset, message) in cases {
        let e = err(text);
        assert_eq!(e.offset, *offset, "{text}: {e}");
        assert!(e.message.contains(message), "{text}: {e}");
    }
    let thirteen = vec!["a"; 13].join(" ");
    let e = err(&thirteen);
    assert_eq!(e.offset, 24);
    assert!(e.message.contains("at most 12 terms"));
    let long = format!("thingName:{}", "a".repeat(10_240));
    assert!(err(&long).message.contains("maximum is 4096"));
    let leading = format!("thingName:*{}", "a".repeat(100));
    assert!(err(&leading).message.contains("at most 100 characters"));
}

#[test]
fn type_errors_point_at_the_term() {
    let typed = schema(&[
        ("attributes.n", FieldType::Number),
        ("attributes.b", FieldType::Boolean),
        ("attributes.v", FieldType::Version),
    ]);
    let cases: &[(&str, usize, &str)] = &[
        ("thingName:a attributes.n:abc", 12, "not a number"),
        ("attributes.n:1*", 0, "wildcards do not apply"),
        ("thingName:a OR attributes.b < 2", 15, "Boolean field"),
        ("attributes.b:maybe", 0, "not true or false"),
        ("attributes.v > x.y", 0, "not a release version"),
    ];
    for (text, offset, message) in cases {
        let e = compile(text, &typed)
            .err()
            .unwrap_or_else(|| panic!("{text} compiled"));
        assert_eq!(e.offset, *offset, "{text}: {e}");
        assert!(e.message.contains(message), "{text}: {e}");
    }
    // The same query, stored before the field became typed, compiles leniently to no match.
    let query = q("attributes.n:abc");
    assert!(
        !Matcher::compile_lenient(&query, &typed).matches(&thing("t", &[("n", "abc")]), &typed)
    );
}

#[test]
fn the_version_scenario_under_each_typing() {
    let things: Vec<IndexedThing> = ["1.0", "1.5", "2.0", "2.1", "10.0", "1.9", "1.10"]
        .iter()
        .map(|v| thing(&format!("t-{v}"), &[("app_version", v)]))
        .collect();
    let query = "attributes.app_version < 2.0";
    // AWS's default: attributes are strings, so "10.0" < "2.0".
    assert_eq!(
        matching(query, &Schema::default(), &things),
        ["t-1.0", "t-1.5", "t-10.0", "t-1.9", "t-1.10"]
    );
    let number = schema(&[("attributes.app_version", FieldType::Number)]);
    assert_eq!(
        matching(query, &number, &things),
        ["t-1.0", "t-1.5", "t-1.9", "t-1.10"]
    );
    // As numbers 1.10 is 1.1 < 1.9; as releases 1.9 < 1.10.
    let version = schema(&[("attributes.app_version", FieldType::Version)]);
    assert_eq!(
        matching("attributes.app_version > 1.9", &number, &things),
        ["t-2.0", "t-2.1", "t-10.0"]
    );
    assert_eq!(
        matching("attributes.app_version > 1.9", &version, &things),
        ["t-2.0", "t-2.1", "t-10.0", "t-1.10"]
    );
    assert_eq!(
        matching("attributes.app_version:2", &version, &things),
        ["t-2.0"]
    );
}

#[test]
fn matching_is_case_insensitive_and_covers_every_field() {
    let mut sensor = thing("Sensor-1", &[("Colour", "Red"), ("flag", "TRUE")]);
    sensor.type_name = Some("Pump".into());
    sensor.group_names = vec!["Line-A".into()];
    sensor.version = 7;
    sensor.connectivity = Some(Connectivity {
        connected: false,
        timestamp: 1_700_000_000_000,
        disconnect_reason: Some("CLIENT_INITIATED_DISCONNECT".into()),
    });
    let other = thing("other", &[]);
    let things = [sensor, other];
    let s = schema(&[("attributes.flag", FieldType::Boolean)]);
    let cases: &[(&str, &[&str])] = &[
        ("thingName:sensor-1", &["Sensor-1"]),
        ("thingName:SENS*", &["Sensor-1"]),
        ("thingName:s?nsor-?", &["Sensor-1"]),
        ("thingName:*", &["Sensor-1", "other"]),
        ("*", &["Sensor-1", "other"]),
        ("red", &["Sensor-1"]),
        ("line-a", &["Sensor-1"]),
        ("thingTypeName:pump", &["Sensor-1"]),
        ("thingGroupNames:line*", &["Sensor-1"]),
        ("attributes.colour:red", &[]),
        ("attributes.Colour:RED", &["Sensor-1"]),
        ("attributes.Colour:*", &["Sensor-1"]),
        ("NOT attributes.Colour:*", &["other"]),
        ("attributes.flag:true", &["Sensor-1"]),
        ("registry.version >= 7", &["Sensor-1"]),
        ("registry.version:[1 TO 6]", &["other"]),
        ("connectivity.connected:false", &["Sensor-1", "other"]),
        ("connectivity.connected:true", &[]),
        ("connectivity.timestamp > 1600000000000", &["Sensor-1"]),
        (
            "connectivity.disconnectReason:client_initiated*",
            &["Sensor-1"],
        ),
        ("shadow.reported.temp > 3", &[]),
        ("thingId:id-other", &["other"]),
    ];
    for (query, expected) in cases {
        assert_eq!(&matching(query, &s, &things), expected, "{query}");
    }
    let off = Schema::default();
    assert!(matching("connectivity.connected:false", &off, &things).is_empty());
}

#[test]
fn plans_pick_an_indexable_conjunct() {
    let s = schema(&[("attributes.n", FieldType::Number)]);
    let plan_of = |text: &str| plan(&q(text), &s);
    assert_eq!(
        plan_of("thingName:ABC*"),
        CandidateScan::Names(ValueRange::Prefix("abc".into()))
    );
    assert_eq!(
        plan_of("thingTypeName:x AND attributes.serial:AB12"),
        CandidateScan::Attribute {
            key: "serial".into(),
            values: ValueRange::Equals("ab12".into())
        }
    );
    assert_eq!(
        plan_of("attributes.n > 3"),
        CandidateScan::Attribute {
            key: "n".into(),
            values: ValueRange::Any
        }
    );
    assert_eq!(
        plan_of("thingName:a OR thingName:b"),
        CandidateScan::Union(vec![
            CandidateScan::Names(ValueRange::Equals("a".into())),
            CandidateScan::Names(ValueRange::Equals("b".into())),
        ])
    );
    assert_eq!(
        plan_of("thingName:a OR thingTypeName:b"),
        CandidateScan::All
    );
    assert_eq!(
        plan_of("attributes.site:S1 attributes.model:m7 thingTypeName:x"),
        CandidateScan::Intersect(vec![
            CandidateScan::Attribute {
                key: "site".into(),
                values: ValueRange::Equals("s1".into())
            },
            CandidateScan::Attribute {
                key: "model".into(),
                values: ValueRange::Equals("m7".into())
            },
        ])
    );
    assert_eq!(plan_of("NOT thingName:a"), CandidateScan::All);
    assert_eq!(plan_of("thingName:*a"), CandidateScan::All);
}

// ---- properties ---------------------------------------------------------------------------

fn arb_literal() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "B", "1", "0", ".", "-", "_", " ", ":", "\"", "\\", "(", "*", "?", "/", "@",
            "AND", "TO", "é",
        ]),
        1..4,
    )
    .prop_map(|parts| parts.concat())
}

fn arb_text() -> impl Strategy<Value = Text> {
    let piece = prop_oneof![
        3 => arb_literal().prop_map(Piece::Literal),
        1 => Just(Piece::AnyChar),
        1 => Just(Piece::AnyChars),
    ];
    (arb_literal(), prop::collection::vec(piece, 0..4)).prop_map(|(first, rest)| {
        // Normalise as the lexer does: merge literals, collapse `**`.
        let mut pieces: Vec<Piece> = vec![Piece::Literal(first)];
        for piece in rest {
            match (pieces.last_mut(), piece) {
                (Some(Piece::Literal(s)), Piece::Literal(t)) => s.push_str(&t),
                (Some(Piece::AnyChars), Piece::AnyChars) => {}
                (_, piece) => pieces.push(piece),
            }
        }
        Text(pieces)
    })
}

fn arb_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        Just(Field::ThingName),
        Just(Field::ThingId),
        Just(Field::ThingTypeName),
        Just(Field::ThingGroupNames),
        prop::sample::select(vec!["app_version", "n", "b", "v", "a:b", "x.y", "k-1"])
            .prop_map(|k| Field::Attribute(k.to_string())),
        Just(Field::RegistryVersion),
        Just(Field::ConnectivityConnected),
        Just(Field::ConnectivityTimestamp),
        Just(Field::ConnectivityDisconnectReason),
        Just(Field::Shadow("reported.temp".into())),
    ]
}

fn arb_bound() -> impl Strategy<Value = Bound> {
    prop_oneof![
        Just(Bound::Unbounded),
        arb_literal().prop_map(Bound::Inclusive),
        arb_literal().prop_map(Bound::Exclusive),
    ]
}

fn arb_term() -> impl Strategy<Value = Query> {
    let op = prop::sample::select(vec![
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ]);
    prop_oneof![
        (prop::option::of(arb_field()), arb_text())
            .prop_map(|(field, text)| term(field, Predicate::Matches(text))),
        prop::option::of(arb_field()).prop_map(|field| term(field, Predicate::Exists)),
        (arb_field(), arb_bound(), arb_bound())
            .prop_filter("one bound", |(_, l, u)| *l != Bound::Unbounded
                || *u != Bound::Unbounded)
            .prop_map(|(field, lower, upper)| term(Some(field), Predicate::Range { lower, upper })),
        (arb_field(), op, arb_literal())
            .prop_map(|(field, op, value)| term(Some(field), Predicate::Compare(op, value))),
    ]
}

fn arb_query() -> impl Strategy<Value = Query> {
    arb_term().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|q| Query::Not(Box::new(q))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Query::And),
            prop::collection::vec(inner, 2..4).prop_map(Query::Or),
        ]
    })
}

fn count_terms(query: &Query) -> (usize, usize) {
    match query {
        Query::Term(Term {
            predicate: Predicate::Matches(text),
            ..
        }) => (1, usize::from(text.starts_with_wildcard())),
        Query::Term(_) => (1, 0),
        Query::Not(inner) => count_terms(inner),
        Query::And(qs) | Query::Or(qs) => qs
            .iter()
            .map(count_terms)
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
    }
}

fn within_limits(query: &Query) -> bool {
    let (terms, leading) = count_terms(query);
    terms <= 12 && leading == 0
}

/// The reference evaluator: straight from the tree, recomputing everything, regex for
/// wildcards. Slow and obvious on purpose.
fn reference(query: &Query, thing: &IndexedThing, schema: &Schema) -> bool {
    match query {
        Query::And(qs) => qs.iter().all(|q| reference(q, thing, schema)),
        Query::Or(qs) => qs.iter().any(|q| reference(q, thing, schema)),
        Query::Not(q) => !reference(q, thing, schema),
        Query::Term(term) => reference_term(term, thing, schema),
    }
}

fn values_of(field: &Field, thing: &IndexedThing, schema: &Schema) -> Vec<String> {
    let connectivity = |f: &dyn Fn(&Connectivity) -> Option<String>| -> Vec<String> {
        if !schema.connectivity {
            return vec![];
        }
        thing
            .connectivity
            .as_ref()
            .and_then(f)
            .into_iter()
            .collect()
    };
    match field {
        Field::ThingName => vec![thing.name.clone()],
        Field::ThingId => vec![thing.id.clone()],
        Field::ThingTypeName => thing.type_name.clone().into_iter().collect(),
        Field::ThingGroupNames => thing.group_names.clone(),
        Field::Attribute(k) => thing.attributes.get(k).cloned().into_iter().collect(),
        Field::RegistryVersion => vec![thing.version.to_string()],
        Field::ConnectivityConnected => {
            if schema.connectivity {
                vec![
                    thing
                        .connectivity
                        .as_ref()
                        .is_some_and(|c| c.connected)
                        .to_string(),
                ]
            } else {
                vec![]
            }
        }
        Field::ConnectivityTimestamp => connectivity(&|c| Some(c.timestamp.to_string())),
        Field::ConnectivityDisconnectReason => connectivity(&|c| c.disconnect_reason.clone()),
        Field::Shadow(_) => vec![],
    }
}

fn regex_of(text: &Text) -> regex::Regex {
    let mut pattern = String::from("(?is)^");
    for piece in &text.0 {
        match piece {
            Piece::Literal(s) => pattern.push_str(&regex::escape(s)),
            Piece::AnyChar => pattern.push('.'),
            Piece::AnyChars => pattern.push_str(".*"),
        }
    }
    pattern.push('$');
    regex::Regex::new(&pattern).expect("escaped pattern")
}

/// One end of a reference interval: the value and whether it is included.
type End<T> = Option<(T, bool)>;

fn reference_term(term: &Term, thing: &IndexedThing, schema: &Schema) -> bool {
    let Some(field) = &term.field else {
        let mut all = vec![thing.name.clone(), thing.id.clone()];
        all.extend(thing.type_name.clone());
        all.extend(thing.group_names.clone());
        all.extend(thing.attributes.values().cloned());
        return match &term.predicate {
            Predicate::Exists => true,
            Predicate::Matches(text) => all.iter().any(|v| regex_of(text).is_match(v)),
            _ => false,
        };
    };
    let kind = schema.field_type(field);
    let num = |s: &str| s.parse::<f64>().ok().filter(|n| n.is_finite());
    let boolean = |s: &str| {
        ["true", "false"]
            .iter()
            .position(|b| s.eq_ignore_ascii_case(b))
            .map(|i| i == 0)
    };
    let values: Vec<String> = values_of(field, thing, schema)
        .into_iter()
        .filter(|v| match kind {
            FieldType::String => true,
            FieldType::Number => num(v).is_some(),
            FieldType::Boolean => boolean(v).is_some(),
            FieldType::Version => Version::parse(v).is_some(),
        })
        .collect();
    let (lower, upper) = match &term.predicate {
        Predicate::Exists => return !values.is_empty(),
        Predicate::Matches(text) => {
            return values.iter().any(|v| match (kind, text.as_literal()) {
                (FieldType::String, _) => regex_of(text).is_match(v),
                (FieldType::Version, None) => regex_of(text).is_match(v),
                (FieldType::Number, Some(l)) => num(&l).is_some_and(|n| num(v) == Some(n)),
                (FieldType::Boolean, Some(l)) => boolean(&l).is_some_and(|b| boolean(v) == Some(b)),
                (FieldType::Version, Some(l)) => {
                    Version::parse(&l).is_some_and(|x| Version::parse(v) == Some(x))
                }
                _ => false,
            });
        }
        Predicate::Range { lower, upper } => (lower.clone(), upper.clone()),
        Predicate::Compare(op, value) => match op {
            CompareOp::Lt => (Bound::Unbounded, Bound::Exclusive(value.clone())),
            CompareOp::Le => (Bound::Unbounded, Bound::Inclusive(value.clone())),
            CompareOp::Gt => (Bound::Exclusive(value.clone()), Bound::Unbounded),
            CompareOp::Ge => (Bound::Inclusive(value.clone()), Bound::Unbounded),
        },
    };
    fn within<T: PartialOrd>(v: &T, lower: &Option<(T, bool)>, upper: &Option<(T, bool)>) -> bool {
        lower
            .as_ref()
            .is_none_or(|(b, inc)| if *inc { v >= b } else { v > b })
            && upper
                .as_ref()
                .is_none_or(|(b, inc)| if *inc { v <= b } else { v < b })
    }
    fn ends<T>(
        lower: &Bound,
        upper: &Bound,
        f: impl Fn(&str) -> Option<T>,
    ) -> Option<(End<T>, End<T>)> {
        let end = |b: &Bound| match b {
            Bound::Unbounded => Some(None),
            Bound::Inclusive(v) => f(v).map(|x| Some((x, true))),
            Bound::Exclusive(v) => f(v).map(|x| Some((x, false))),
        };
        Some((end(lower)?, end(upper)?))
    }
    match kind {
        FieldType::String => {
            ends(&lower, &upper, |s| Some(s.to_ascii_lowercase())).is_some_and(|(l, u)| {
                values
                    .iter()
                    .any(|v| within(&v.to_ascii_lowercase(), &l, &u))
            })
        }
        FieldType::Number => ends(&lower, &upper, num).is_some_and(|(l, u)| {
            values
                .iter()
                .any(|v| num(v).is_some_and(|n| within(&n, &l, &u)))
        }),
        FieldType::Version => ends(&lower, &upper, Version::parse).is_some_and(|(l, u)| {
            values
                .iter()
                .any(|v| Version::parse(v).is_some_and(|x| within(&x, &l, &u)))
        }),
        FieldType::Boolean => false,
    }
}

fn arb_thing() -> impl Strategy<Value = IndexedThing> {
    let value = prop::sample::select(vec![
        "1.0", "1.5", "2.0", "2.1", "10.0", "1.10", "1.9", "abc", "ABC", "true", "False", "-3",
        "1e3", "a:b", "AND", "2.0-rc1",
    ]);
    let key = prop::sample::select(vec!["app_version", "n", "b", "v", "a:b", "x.y", "k-1"]);
    (
        prop::sample::select(vec!["a", "B1", "tv-1", "TV-2", "plasma", "AND", "x.y"]),
        prop::collection::btree_map(
            key.prop_map(String::from),
            value.prop_map(String::from),
            0..4,
        ),
        prop::option::of(prop::sample::select(vec!["Pump", "1.0"])),
        prop::collection::vec(prop::sample::select(vec!["g1", "G2", "abc"]), 0..2),
        1i64..12,
        prop::option::of((
            any::<bool>(),
            0i64..3_000_000,
            prop::option::of(Just("CLIENT_ERROR")),
        )),
    )
        .prop_map(
            |(name, attributes, type_name, mut groups, version, connectivity)| {
                groups.sort();
                groups.dedup();
                IndexedThing {
                    name: name.to_string(),
                    id: format!("{name}-id"),
                    type_name: type_name.map(String::from),
                    attributes: attributes as Attributes,
                    group_names: groups.into_iter().map(String::from).collect(),
                    version,
                    connectivity: connectivity.map(|(connected, timestamp, reason)| Connectivity {
                        connected,
                        timestamp,
                        disconnect_reason: reason.map(String::from),
                    }),
                }
            },
        )
}

fn arb_schema() -> impl Strategy<Value = Schema> {
    let kind = prop::sample::select(vec![
        FieldType::String,
        FieldType::Number,
        FieldType::Boolean,
        FieldType::Version,
    ]);
    (
        prop::collection::btree_map(
            prop::sample::select(vec![
                "attributes.app_version",
                "attributes.n",
                "attributes.b",
                "attributes.v",
            ])
            .prop_map(String::from),
            kind,
            0..4,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(custom_fields, connectivity): (BTreeMap<String, FieldType>, bool)| Schema {
                custom_fields,
                connectivity,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn printing_then_parsing_is_identity(query in arb_query().prop_filter("limits", within_limits)) {
        let printed = query.to_string();
        let reparsed = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(reparsed.query, query, "printed as {}", printed);
    }

    #[test]
    fn matcher_agrees_with_the_reference(
        query in arb_query().prop_filter("limits", within_limits),
        things in prop::collection::vec(arb_thing(), 1..8),
        schema in arb_schema(),
    ) {
        let matcher = Matcher::compile_lenient(&query, &schema);
        for thing in &things {
            prop_assert_eq!(
                matcher.matches(thing, &schema),
                reference(&query, thing, &schema),
                "query {} on {:?} under {:?}", query, thing, schema
            );
        }
    }

    #[test]
    fn plans_never_lose_a_match(
        query in arb_query().prop_filter("limits", within_limits),
        things in prop::collection::vec(arb_thing(), 1..8),
        schema in arb_schema(),
    ) {
        let scan = plan(&query, &schema);
        let matcher = Matcher::compile_lenient(&query, &schema);
        for thing in things.iter().filter(|t| matcher.matches(t, &schema)) {
            prop_assert!(in_scan(&scan, thing), "{} matches {:?} outside {:?}", query, thing, scan);
        }
    }

    #[test]
    fn the_parser_never_panics(text in "\\PC{0,64}") {
        let _ = parse(&text);
    }
}

fn in_range(range: &ValueRange, value: &str) -> bool {
    let value = value.to_ascii_lowercase();
    match range {
        ValueRange::Any => true,
        ValueRange::Equals(v) => value == *v,
        ValueRange::Prefix(p) => value.starts_with(p.as_str()),
        ValueRange::Between { lower, upper } => {
            (match lower {
                Bound::Unbounded => true,
                Bound::Inclusive(l) => value >= *l,
                Bound::Exclusive(l) => value > *l,
            }) && (match upper {
                Bound::Unbounded => true,
                Bound::Inclusive(u) => value <= *u,
                Bound::Exclusive(u) => value < *u,
            })
        }
    }
}

fn in_scan(scan: &CandidateScan, thing: &IndexedThing) -> bool {
    match scan {
        CandidateScan::All => true,
        CandidateScan::Names(range) => in_range(range, &thing.name),
        CandidateScan::Attribute { key, values } => thing
            .attributes
            .get(key)
            .is_some_and(|v| in_range(values, v)),
        CandidateScan::Intersect(scans) => scans.iter().all(|s| in_scan(s, thing)),
        CandidateScan::Union(scans) => scans.iter().any(|s| in_scan(s, thing)),
    }
}

#[test]
fn queries_know_whether_they_read_connectivity() {
    assert!(q("connectivity.connected:true").uses_connectivity());
    assert!(q("attributes.a:1 AND NOT connectivity.timestamp > 5").uses_connectivity());
    assert!(q("thingName:a* OR (x AND connectivity.disconnectReason:*)").uses_connectivity());
    assert!(!q("attributes.app_version < 2.0").uses_connectivity());
    assert!(!q("*").uses_connectivity());
}
