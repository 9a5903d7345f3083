//! AWS IoT SQL tests, most built from the examples in AWS's SQL reference (SELECT, WHERE,
//! JSON extensions, nested object queries, data types, operators, functions, substitution
//! templates, binary payloads).

use serde_json::{Value, json};

use super::*;

fn ctx(topic: &str) -> Context<'_> {
    Context {
        topic,
        client_id: Some("device-1"),
        principal: None,
        timestamp_ms: 1_481_825_251_155,
        new_uuid: &fixed_uuid,
    }
}

fn fixed_uuid() -> String {
    "7a0c3fd1-0e5a-4c3b-8bd2-a0bd3a1b6f4e".to_string()
}

fn run_on(sql: &str, topic: &str, payload: &[u8]) -> Option<Selected> {
    let statement = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    evaluate(&statement, &ctx(topic), &Payload::parse(payload))
}

fn run(sql: &str, payload: Value) -> Option<Value> {
    match run_on(sql, "topic/subtopic", payload.to_string().as_bytes()) {
        Some(Selected::Json(v)) => Some(v),
        Some(other) => panic!("{sql}: not JSON: {other:?}"),
        None => None,
    }
}

/// The value of `SELECT VALUE expr` on `payload`; `None` for Undefined.
fn value(expr: &str, payload: Value) -> Option<Value> {
    match run_on(
        &format!("SELECT VALUE {expr} FROM 'a/b'"),
        "a/b",
        payload.to_string().as_bytes(),
    ) {
        Some(Selected::Json(v)) => Some(v),
        Some(Selected::Empty) => None,
        other => panic!("{expr}: {other:?}"),
    }
}

fn err(sql: &str) -> SqlError {
    parse(sql).expect_err(sql)
}

#[test]
fn select_clause_examples() {
    let p = json!({"color": "red", "temperature": 50});
    assert_eq!(
        run("SELECT * FROM 'topic/subtopic'", p.clone()),
        Some(p.clone())
    );
    assert_eq!(
        run("SELECT color FROM 'topic/subtopic'", p.clone()),
        Some(json!({"color": "red"}))
    );
    assert_eq!(
        run("SELECT color AS my_color FROM 'topic/subtopic'", p.clone()),
        Some(json!({"my_color": "red"}))
    );
    assert_eq!(
        run(
            "SELECT color as my_color, temperature as fahrenheit FROM 'topic/subtopic'",
            p.clone()
        ),
        Some(json!({"my_color": "red", "fahrenheit": 50}))
    );
    assert_eq!(
        run("SELECT *, 15 as speed FROM 'topic/subtopic'", p.clone()),
        Some(json!({"color": "red", "temperature": 50, "speed": 15}))
    );
    assert_eq!(
        run(
            "SELECT temperature - 32 * 5 / 9 AS celsius FROM 'topic/subtopic'",
            json!({"temperature": 68})
        ),
        Some(json!({"celsius": 68.0 - 32.0 * 5.0 / 9.0}))
    );
}

#[test]
fn where_clause_examples() {
    let sql = "SELECT * FROM 'topic/subtopic' WHERE color = 'red'";
    assert!(run(sql, json!({"color": "red"})).is_some());
    assert!(run(sql, json!({"color": "blue"})).is_none());
    // Undefined (missing field) never matches, nor does its negation.
    assert!(run(sql, json!({})).is_none());
    assert!(run("SELECT * FROM 'a' WHERE NOT (color = 'red')", json!({})).is_none());
    assert!(
        run(
            "SELECT * FROM 'a' WHERE temperature > 50 AND humidity < 40",
            json!({"temperature": 60, "humidity": 30})
        )
        .is_some()
    );
    assert!(run("SELECT * FROM 'a' WHERE 'true'", json!({})).is_some());
}

#[test]
fn json_extensions() {
    let p = json!({"foo": {"bar": "RED", "bar1": "GREEN", "bar2": "BLUE"}});
    assert_eq!(
        run("SELECT foo.bar AS bar.baz FROM 'topic/subtopic'", p),
        Some(json!({"bar": {"baz": "RED"}}))
    );
    let p = json!({"mydata": {"item2": {"0": {"my-key": "myValue"}}}});
    assert!(
        run(
            "SELECT * from 'iot/rules' WHERE get(get(get(mydata,\"item2\"),\"0\"),\"my-key\") = \"myValue\"",
            p.clone()
        )
        .is_some()
    );
    assert_eq!(
        value("mydata.item2.`0`", p.clone()),
        Some(json!({"my-key": "myValue"}))
    );
    assert_eq!(
        value("mydata.item2.0", p),
        Some(json!({"my-key": "myValue"}))
    );
    let arrays = json!({"a": [10, [20, {"c": 30}]]});
    assert_eq!(value("a[0]", arrays.clone()), Some(json!(10)));
    assert_eq!(value("a[1][1].c", arrays.clone()), Some(json!(30)));
    assert_eq!(value("a[5]", arrays.clone()), None);
    assert_eq!(value("get(a, 1)", arrays), Some(json!([20, {"c": 30}])));
    assert_eq!(
        value("{'x': 1, 'y': [1, 'a']}", json!({})),
        Some(json!({"x": 1, "y": [1, "a"]}))
    );
}

#[test]
fn nested_object_queries() {
    let p = json!({"e": [
        {"n": "temperature", "u": "Cel", "t": 1234, "v": 22.5},
        {"n": "light", "u": "lm", "t": 1235, "v": 135},
        {"n": "acidity", "u": "pH", "t": 1235, "v": 7}
    ]});
    assert_eq!(
        run(
            "SELECT (SELECT VALUE n FROM e) as sensors FROM 'my/topic'",
            p.clone()
        ),
        Some(json!({"sensors": ["temperature", "light", "acidity"]}))
    );
    assert_eq!(
        run(
            "SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'my/topic'",
            p.clone()
        ),
        Some(json!({"temperature": [{"v": 22.5}]}))
    );
    assert_eq!(
        run(
            "SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v as temperature FROM 'topic'",
            p
        ),
        Some(json!({"temperature": 22.5}))
    );
}

#[test]
fn undefined_is_left_out_and_null_kept() {
    assert_eq!(
        run("SELECT foo, bar FROM 'a'", json!({"foo": null})),
        Some(json!({"foo": null}))
    );
    assert_eq!(value("NULL", json!({})), Some(Value::Null));
    assert_eq!(value("isUndefined(bar)", json!({})), Some(json!(true)));
    assert_eq!(
        value("isNull(foo)", json!({"foo": null})),
        Some(json!(true))
    );
    assert_eq!(value("bar + 1", json!({})), None);
    assert_eq!(value("abs('abc')", json!({})), None);
}

#[test]
fn numbers_follow_sql_2016() {
    assert_eq!(value("10.0", json!({})), Some(json!(10)));
    assert_eq!(value("1 + 2", json!({})), Some(json!(3)));
    assert_eq!(value("1 + 2.5", json!({})), Some(json!(3.5)));
    assert_eq!(value("7 / 2", json!({})), Some(json!(3.5)));
    assert_eq!(value("8 / 2", json!({})), Some(json!(4)));
    assert_eq!(value("7 % 3", json!({})), Some(json!(1)));
    assert_eq!(value("1 / 0", json!({})), None);
    assert_eq!(value("'5' + 1", json!({})), Some(json!(6)));
    assert_eq!(value("'x' + 1", json!({})), None);
    assert_eq!(value("-a", json!({"a": 4})), Some(json!(-4)));
    assert_eq!(
        value("9223372036854775807 + 1", json!({})),
        Some(json!(9.223372036854776e18))
    );
}

#[test]
fn operators_across_types() {
    assert_eq!(value("5 = 5.0", json!({})), Some(json!(true)));
    assert_eq!(value("'5' = 5", json!({})), Some(json!(false)));
    assert_eq!(value("'5' < 6", json!({})), Some(json!(true)));
    assert_eq!(value("'abc' < 6", json!({})), None);
    assert_eq!(
        value("a <> b", json!({"a": [1, 2], "b": [1, 2]})),
        Some(json!(false))
    );
    assert_eq!(value("true AND 'TRUE'", json!({})), Some(json!(true)));
    assert_eq!(value("true AND 5", json!({})), None);
    assert_eq!(value("NOT 'false'", json!({})), Some(json!(true)));
    assert_eq!(value("3 IN a", json!({"a": [1, 2, 3]})), Some(json!(true)));
    assert_eq!(value("3 IN (1, 2)", json!({})), Some(json!(false)));
    assert_eq!(
        value("a CONTAINS 2", json!({"a": [1, 2, 3]})),
        Some(json!(true))
    );
    assert_eq!(
        value("'hello' CONTAINS 'ell'", json!({})),
        Some(json!(true))
    );
    // AND binds tighter than OR; comparisons tighter than both.
    assert_eq!(
        value("1 = 2 AND 1 = 1 OR 2 > 1", json!({})),
        Some(json!(true))
    );
}

#[test]
fn case_statements() {
    let sql = "SELECT CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' \
               WHEN 'red' THEN 'stop' ELSE 'you are not at a stop light' END as instructions \
               FROM 'topic/subtopic'";
    assert_eq!(
        run(sql, json!({"color": "yellow"})),
        Some(json!({"instructions": "caution"}))
    );
    assert_eq!(
        run(sql, json!({"color": "blue"})),
        Some(json!({"instructions": "you are not at a stop light"}))
    );
    assert_eq!(
        value(
            "CASE WHEN t > 30 THEN 'hot' WHEN t > 10 THEN 'mild' END",
            json!({"t": 20})
        ),
        Some(json!("mild"))
    );
    assert_eq!(
        value("CASE WHEN t > 30 THEN 'hot' END", json!({"t": 20})),
        None
    );
}

#[test]
fn context_functions() {
    let topic = "$aws/events/jobExecution/job-42/succeeded";
    let sql = "SELECT topic(4) as job_id, topic() as t, clientid() as c, timestamp() as ts, \
               newuuid() as id, principal() as p, * FROM '$aws/events/jobExecution/+/succeeded'";
    let out = run_on(sql, topic, br#"{"status":"SUCCEEDED"}"#);
    assert_eq!(
        out,
        Some(Selected::Json(json!({
            "job_id": "job-42",
            "t": topic,
            "c": "device-1",
            "ts": 1_481_825_251_155i64,
            "id": "7a0c3fd1-0e5a-4c3b-8bd2-a0bd3a1b6f4e",
            "status": "SUCCEEDED"
        })))
    );
    assert_eq!(value("topic(9)", json!({})), None);
    assert_eq!(value("topic(0)", json!({})), None);
}

#[test]
fn string_functions() {
    let p = json!({});
    assert_eq!(value("concat('a', 'b', 1)", p.clone()), Some(json!("ab1")));
    assert_eq!(
        value("concat([1], 2, [3])", p.clone()),
        Some(json!([1, 2, 3]))
    );
    assert_eq!(value("lower('AbC')", p.clone()), Some(json!("abc")));
    assert_eq!(value("upper('AbC')", p.clone()), Some(json!("ABC")));
    assert_eq!(
        value("substring('123456', 0)", p.clone()),
        Some(json!("123456"))
    );
    assert_eq!(
        value("substring('123456', 2)", p.clone()),
        Some(json!("3456"))
    );
    assert_eq!(
        value("substring('123456', 1, 4)", p.clone()),
        Some(json!("234"))
    );
    assert_eq!(
        value("substring('123456', -1, 10)", p.clone()),
        Some(json!("123456"))
    );
    assert_eq!(value("length('héllo')", p.clone()), Some(json!(5)));
    assert_eq!(value("length(a)", json!({"a": [1, 2]})), Some(json!(2)));
    assert_eq!(value("trim('  x ')", p.clone()), Some(json!("x")));
    assert_eq!(
        value("startswith('device/1', 'device')", p.clone()),
        Some(json!(true))
    );
    assert_eq!(
        value("endswith('device/1', '2')", p.clone()),
        Some(json!(false))
    );
    assert_eq!(
        value("replace('a-b-c', '-', '/')", p.clone()),
        Some(json!("a/b/c"))
    );
    assert_eq!(value("indexof('abcd', 'cd')", p.clone()), Some(json!(2)));
    assert_eq!(
        value("regexp_matches('v2.0.1', '^v[0-9]+')", p.clone()),
        Some(json!(true))
    );
    assert_eq!(
        value(
            "regexp_replace(a, '.*:thing/', '')",
            json!({"a": "arn:aws:iot:us-east-1:1:thing/t1"})
        ),
        Some(json!("t1"))
    );
    assert_eq!(
        value("regexp_substr('abc123', '[0-9]+')", p.clone()),
        Some(json!("123"))
    );
    assert_eq!(value("encode('hi', 'base64')", p), Some(json!("aGk=")));
}

#[test]
fn math_functions() {
    let p = json!({});
    assert_eq!(value("abs(-5)", p.clone()), Some(json!(5)));
    assert_eq!(value("abs('-5.123')", p.clone()), Some(json!(5.123)));
    assert_eq!(value("ceil(1.2)", p.clone()), Some(json!(2)));
    assert_eq!(value("floor(-1.2)", p.clone()), Some(json!(-2)));
    assert_eq!(value("round(2.5)", p.clone()), Some(json!(3)));
    assert_eq!(value("mod(8, 3)", p.clone()), Some(json!(2)));
    assert_eq!(value("mod(-8, 3)", p.clone()), Some(json!(-2)));
    assert_eq!(value("power(2, 10)", p.clone()), Some(json!(1024)));
    assert_eq!(value("power(4, 0.5)", p.clone()), Some(json!(2)));
    assert_eq!(value("sqrt(2)", p.clone()), Some(json!(2f64.sqrt())));
    assert_eq!(value("sqrt(-1)", p.clone()), None);
    assert_eq!(value("trunc(2.3456, 2)", p.clone()), Some(json!(2.34)));
    assert_eq!(value("cast('3' AS Int)", p.clone()), Some(json!(3)));
    assert_eq!(value("cast(2.7 AS Int)", p.clone()), Some(json!(2)));
    assert_eq!(value("cast(true AS Decimal)", p.clone()), Some(json!(1)));
    assert_eq!(value("cast(0 AS Boolean)", p.clone()), Some(json!(false)));
    assert_eq!(value("cast(12 AS String)", p.clone()), Some(json!("12")));
    assert_eq!(value("cast('x' AS Int)", p), None);
}

#[test]
fn binary_payloads() {
    let bytes = [0xff, 0x00, 0x10, 0x80];
    assert_eq!(
        run_on("SELECT * FROM 'a/b'", "a/b", &bytes),
        Some(Selected::Binary(bytes.to_vec()))
    );
    assert_eq!(
        run_on("SELECT temperature FROM 'a/b'", "a/b", &bytes),
        Some(Selected::Json(json!({})))
    );
    assert_eq!(
        run_on("SELECT * FROM 'a/b' WHERE t > 1", "a/b", &bytes),
        None
    );
    assert_eq!(
        run_on(
            "SELECT encode(*, 'base64') AS data FROM 'a/b'",
            "a/b",
            b"hello"
        ),
        Some(Selected::Json(json!({"data": "aGVsbG8="})))
    );
}

#[test]
fn from_filters_and_keywords() {
    let s = parse("select * from '$aws/events/jobExecution/+/succeeded'").unwrap();
    assert_eq!(s.from, "$aws/events/jobExecution/+/succeeded");
    assert_eq!(parse("SELECT * FROM 'a/#'").unwrap().from, "a/#");
    assert_eq!(
        parse("SELECT `select` FROM 'a'").unwrap().select.items,
        vec![Projection::Expr {
            expr: Expr::Field("select".into()),
            name: vec!["select".into()]
        }]
    );
}

#[test]
fn errors_point_at_their_position() {
    let e = err("SELECT * FROM");
    assert_eq!((e.line, e.column), (1, 14));
    assert!(e.message.contains("topic filter"), "{e}");
    let e = err("SELECT * FROM 'a/#/b'");
    assert_eq!(e.column, 15);
    assert!(e.message.contains("'#'"), "{e}");
    let e = err("SELECT a,\n  b +\nFROM 'x'");
    assert_eq!((e.line, e.column), (3, 1));
    let e = err("SELECT nosuch(1) FROM 'x'");
    assert_eq!(e.column, 8);
    assert!(e.message.contains("unknown function"), "{e}");
    let e = err("SELECT topic(1, 2) FROM 'x'");
    assert!(e.message.contains("takes 0 to 1"), "{e}");
    let e = err("SELECT * FROM 'x' WHERE a = 'open");
    assert_eq!(e.column, 29);
    let e = err("SELECT * FROM 'x' WHERE");
    assert!(e.message.contains("expected an expression"), "{e}");
    assert!(
        err("SELECT * FROM 'x' extra")
            .message
            .contains("end of the statement")
    );
    assert!(err("").message.contains("SELECT"));
    assert!(err("SELECT FROM 'x'").message.contains("expression"));
    let e = err(&format!("SELECT * FROM 'x' WHERE {}", "(".repeat(500)));
    assert!(e.message.contains("nest deeper"), "{e}");
    assert!(
        err(&format!("SELECT '{}' FROM 'x'", "a".repeat(3000)))
            .message
            .contains("2048")
    );
    assert_eq!(err("SELECT ü FROM 'x'").column, 8);
}

#[test]
fn templates() {
    let c = ctx("things/dev-7/status");
    let payload = Payload::parse(br#"{"statusDetails": {"appVersion": "2.0"}, "n": 3}"#);
    let t = Template::parse("alerts/${topic(2)}/v${statusDetails.appVersion}").unwrap();
    assert_eq!(t.render(&c, &payload), "alerts/dev-7/v2.0");
    assert!(!t.is_literal());
    assert_eq!(
        Template::parse("${n + 1}").unwrap().render(&c, &payload),
        "4"
    );
    assert_eq!(
        Template::parse("${missing}").unwrap().render(&c, &payload),
        ""
    );
    assert_eq!(
        Template::parse("${missing}")
            .unwrap()
            .render_defined(&c, &payload),
        None
    );
    assert_eq!(
        Template::parse("${get({'a': '}'}, 'a')}")
            .unwrap()
            .render(&c, &payload),
        "}"
    );
    assert!(Template::parse("plain").unwrap().is_literal());
    let e = Template::parse("x/${topic(}").unwrap_err();
    assert_eq!(e.offset, 10);
    assert!(Template::parse("x/${a").is_err());
}

#[test]
fn rule_names_and_actions() {
    use super::actions::*;
    assert!(check_rule_name("my_rule_1").is_ok());
    for bad in ["", "has-dash", "sp ace", &"x".repeat(129)] {
        assert!(check_rule_name(bad).is_err(), "{bad:?}");
    }
    let republish =
        parse_action(&json!({"republish": {"topic": "a/${topic(1)}", "roleArn": "r", "qos": 1}}));
    assert!(matches!(
        republish,
        Ok(ActionSpec::Republish { qos: 1, .. })
    ));
    let http = parse_action(
        &json!({"http": {"url": "https://h/x", "headers": [{"key": "k", "value": "${a}"}]}}),
    );
    assert!(
        matches!(http, Ok(ActionSpec::Http { ref headers, confirmation_url: None, .. }) if headers.len() == 1)
    );
    let templated = parse_action(
        &json!({"http": {"url": "https://h/${topic(2)}", "confirmationUrl": "https://h/"}}),
    );
    assert!(matches!(
        templated,
        Ok(ActionSpec::Http {
            confirmation_url: Some(_),
            ..
        })
    ));
    let attrs = parse_action(
        &json!({"http": {"url": "drover:thing-attributes/${thingArn}",
        "headers": [{"key": "app_version", "value": "${statusDetails.appVersion}"}]}}),
    );
    assert!(matches!(attrs, Ok(ActionSpec::ThingAttributes { .. })));
    for bad in [
        json!({"lambda": {"functionArn": "f"}}),
        json!({"republish": {"topic": "a"}, "http": {"url": "https://h"}}),
        json!({"republish": {"topic": "a", "qos": 2}}),
        json!({"republish": {"topic": "${nosuch()}"}}),
        json!({"http": {"url": "ftp://h"}}),
        json!({"http": {"url": "drover:thing-attributes/x"}}),
        json!({"http": {"url": "drover:thing-attributes/", "headers": [{"key": "a", "value": "b"}]}}),
        // AWS: the confirmation URL is a prefix of the URL, and a templated URL needs one.
        json!({"http": {"url": "https://h/x", "confirmationUrl": "https://other/"}}),
        json!({"http": {"url": "https://h/x", "confirmationUrl": "ftp://h/"}}),
        json!({"http": {"url": "https://h/${topic(2)}"}}),
        json!("republish"),
    ] {
        assert!(parse_action(&bad).is_err(), "{bad}");
    }
    assert!(parse_actions(&vec![json!({"republish": {"topic": "a"}}); 11]).is_err());
    assert_eq!(
        thing_name_of("arn:aws:iot:us-east-1:123:thing/dev1"),
        "dev1"
    );
    assert_eq!(thing_name_of("dev1"), "dev1");
}

mod properties {
    use proptest::prelude::*;

    proptest! {
        /// No input makes the parser panic; every error points inside the input.
        #[test]
        fn parser_never_panics(src in "\\PC{0,120}") {
            if let Err(e) = super::parse(&src) {
                prop_assert!(e.offset <= src.len());
                prop_assert!(e.line >= 1 && e.column >= 1);
            }
        }

        #[test]
        fn statements_of_tokens_never_panic(words in proptest::collection::vec(
            prop_oneof![
                Just("SELECT"), Just("FROM"), Just("WHERE"), Just("'a/+'"), Just("*"),
                Just("a"), Just("."), Just("("), Just(")"), Just("["), Just("]"), Just(","),
                Just("1"), Just("2.5"), Just("+"), Just("="), Just("AND"), Just("CASE"),
                Just("WHEN"), Just("THEN"), Just("END"), Just("topic"), Just("{"), Just("}"),
                Just(":"), Just("'s'"), Just("AS"), Just("VALUE"), Just("IN"), Just("NOT"),
            ], 0..24)) {
            let src = words.join(" ");
            if let Ok(statement) = super::parse(&src) {
                let c = super::ctx("a/b");
                let _ = super::evaluate(&statement, &c, &super::Payload::parse(b"{\"a\":[1,{\"a\":2}]}"));
            }
        }
    }
}
