use serde_json::json;

use super::*;

fn why(schema: Value, value: Value) -> String {
    match check(&schema, &value) {
        Ok(()) => "ok".into(),
        Err(v) => v.to_string(),
    }
}

#[test]
fn type_names_one_or_several_and_null() {
    assert_eq!(why(json!({"type": "string"}), json!("x")), "ok");
    assert_eq!(
        why(json!({"type": "string"}), json!(1)),
        "$: expected string, got integer"
    );
    assert_eq!(why(json!({"type": ["string", "null"]}), json!(null)), "ok");
    assert_eq!(
        why(json!({"type": ["string", "null"]}), json!(true)),
        "$: expected string or null, got boolean"
    );
    assert_eq!(
        why(json!({"type": "null"}), json!({})),
        "$: expected null, got object"
    );
    assert_eq!(why(json!({"type": "array"}), json!([])), "ok");
    // A type no draft defines rejects nothing.
    assert_eq!(why(json!({"type": "decimal"}), json!("1.5")), "ok");
}

#[test]
fn an_integer_is_a_number_without_a_fractional_part() {
    assert_eq!(why(json!({"type": "integer"}), json!(3)), "ok");
    assert_eq!(why(json!({"type": "integer"}), json!(3.0)), "ok");
    assert_eq!(why(json!({"type": "integer"}), json!(-7)), "ok");
    assert_eq!(
        why(json!({"type": "integer"}), json!(3.5)),
        "$: expected integer, got number"
    );
    assert_eq!(why(json!({"type": "number"}), json!(3)), "ok");
    assert_eq!(
        why(json!({"type": "integer"}), json!("3")),
        "$: expected integer, got string"
    );
}

#[test]
fn properties_required_and_paths() {
    let schema = json!({"type": "object",
        "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
        "required": ["city", "temperature"]});
    assert_eq!(
        why(schema.clone(), json!({"city": "Paris", "temperature": 21})),
        "ok"
    );
    assert_eq!(
        why(
            schema.clone(),
            json!({"city": "Paris", "temperature": "warm"})
        ),
        "$.temperature: expected number, got string"
    );
    assert_eq!(
        why(schema.clone(), json!({"city": "Paris"})),
        "$: missing required property 'temperature'"
    );
    // Properties the schema does not name are allowed unless it says otherwise.
    assert_eq!(
        why(schema, json!({"city": "Paris", "temperature": 1, "x": 1})),
        "ok"
    );
    let nested =
        json!({"properties": {"a b": {"items": {"properties": {"c": {"type": "string"}}}}}});
    assert_eq!(
        why(nested, json!({"a b": [{"c": "x"}, {"c": 2}]})),
        "$[\"a b\"][1].c: expected string, got integer"
    );
}

#[test]
fn additional_properties_false_or_a_schema() {
    let closed = json!({"properties": {"a": {}}, "additionalProperties": false});
    assert_eq!(why(closed.clone(), json!({"a": 1})), "ok");
    assert_eq!(
        why(closed, json!({"a": 1, "b": 2})),
        "$.b: property is not allowed"
    );
    let typed = json!({"additionalProperties": {"type": "integer"}});
    assert_eq!(why(typed.clone(), json!({"x": 1, "y": 2})), "ok");
    assert_eq!(
        why(typed, json!({"x": 1, "y": "2"})),
        "$.y: expected integer, got string"
    );
    // A pattern might cover the key: without a regex engine, it is not called extra.
    let patterned = json!({"patternProperties": {"^x": {}}, "additionalProperties": false});
    assert_eq!(why(patterned, json!({"x1": 1})), "ok");
}

#[test]
fn items_prefix_items_and_tuples() {
    let list = json!({"type": "array", "items": {"type": "string"}});
    assert_eq!(why(list.clone(), json!(["a", "b"])), "ok");
    assert_eq!(
        why(list, json!(["a", null])),
        "$[1]: expected string, got null"
    );
    let tuple = json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false});
    assert_eq!(why(tuple.clone(), json!(["a", 1])), "ok");
    assert_eq!(
        why(tuple.clone(), json!([1, 1])),
        "$[0]: expected string, got integer"
    );
    assert_eq!(
        why(tuple, json!(["a", 1, 2])),
        "$[2]: no further item is allowed"
    );
    let draft7 = json!({"items": [{"type": "string"}], "additionalItems": {"type": "boolean"}});
    assert_eq!(why(draft7.clone(), json!(["a", true, false])), "ok");
    assert_eq!(
        why(draft7, json!(["a", 1])),
        "$[1]: expected boolean, got integer"
    );
}

#[test]
fn enum_and_const_compare_json_values() {
    let e = json!({"enum": ["red", "green", 1]});
    assert_eq!(why(e.clone(), json!("green")), "ok");
    assert_eq!(why(e.clone(), json!(1.0)), "ok");
    assert_eq!(why(e, json!("blue")), "$: not one of the enum values");
    assert_eq!(why(json!({"const": {"a": [1]}}), json!({"a": [1]})), "ok");
    assert_eq!(
        why(json!({"const": "x"}), json!("y")),
        "$: expected the constant \"x\""
    );
}

#[test]
fn any_of_one_of_all_of() {
    let any = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
    assert_eq!(why(any.clone(), json!(1)), "ok");
    assert_eq!(
        why(any, json!(true)),
        "$: matches none of the anyOf branches"
    );
    // oneOf is read as anyOf: two branches that both seem to match do not reject.
    let one = json!({"oneOf": [{"type": "number"}, {"type": "integer"}]});
    assert_eq!(why(one, json!(1)), "ok");
    let all = json!({"allOf": [{"required": ["a"]}, {"required": ["b"]}]});
    assert_eq!(why(all.clone(), json!({"a": 1, "b": 2})), "ok");
    assert_eq!(
        why(all, json!({"a": 1})),
        "$: missing required property 'b'"
    );
    // Optional[Model]: the violation inside the model says more than "no branch".
    let optional = json!({"anyOf": [
        {"type": "object", "properties": {"n": {"type": "integer"}}}, {"type": "null"}]});
    assert_eq!(
        why(optional, json!({"n": "x"})),
        "$.n: expected integer, got string"
    );
}

#[test]
fn nullable_allows_null() {
    let s = json!({"type": "string", "nullable": true});
    assert_eq!(why(s.clone(), json!(null)), "ok");
    assert_eq!(why(s, json!(2)), "$: expected string, got integer");
}

#[test]
fn refs_to_defs_and_definitions_resolve() {
    // What pydantic writes for a model with a nested model and an enum.
    let pydantic = json!({
        "$defs": {
            "Color": {"enum": ["red", "green"], "title": "Color", "type": "string"},
            "Point": {"properties": {"x": {"title": "X", "type": "integer"},
                "y": {"title": "Y", "type": "integer"}},
                "required": ["x", "y"], "title": "Point", "type": "object"}
        },
        "properties": {"at": {"$ref": "#/$defs/Point"}, "color": {"$ref": "#/$defs/Color"},
            "alt": {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}], "default": null}},
        "required": ["at", "color"], "title": "Shape", "type": "object"});
    assert_eq!(
        why(
            pydantic.clone(),
            json!({"at": {"x": 1, "y": 2}, "color": "red", "alt": null})
        ),
        "ok"
    );
    assert_eq!(
        why(pydantic.clone(), json!({"at": {"x": 1}, "color": "red"})),
        "$.at: missing required property 'y'"
    );
    assert_eq!(
        why(pydantic, json!({"at": {"x": 1, "y": 2}, "color": "blue"})),
        "$.color: not one of the enum values"
    );
}

#[test]
fn refs_to_definitions_and_nowhere() {
    let draft7 = json!({"definitions": {"N": {"type": "integer"}},
        "items": {"$ref": "#/definitions/N"}});
    assert_eq!(
        why(draft7, json!([1, "2"])),
        "$[1]: expected integer, got string"
    );
    // A reference that leads nowhere is not the answer's fault.
    assert_eq!(why(json!({"$ref": "#/$defs/Gone"}), json!(1)), "ok");
    assert_eq!(why(json!({"$ref": "other.json#/$defs/A"}), json!(1)), "ok");
}

#[test]
fn a_recursive_model_is_checked_to_the_bottom() {
    let tree = json!({"$defs": {"Node": {"type": "object",
        "properties": {"name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
        "required": ["name"]}}, "$ref": "#/$defs/Node"});
    let good = json!({"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]});
    assert_eq!(why(tree.clone(), good), "ok");
    let bad = json!({"name": "a", "children": [{"name": "b", "children": [{"name": 3}]}]});
    assert_eq!(
        why(tree, bad),
        "$.children[0].children[0].name: expected string, got integer"
    );
}

#[test]
fn cycles_and_deep_nesting_stop_at_the_bound_on_a_workers_stack() {
    let worker = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            // A reference to itself, and a branching one that would take 2^depth steps.
            assert_eq!(why(json!({"$ref": "#"}), json!(1)), "ok");
            let fork = json!({"$defs": {"A": {"anyOf": [{"$ref": "#/$defs/A"},
                {"$ref": "#/$defs/A"}, {"type": "string"}]}}, "$ref": "#/$defs/A"});
            assert_eq!(why(fork, json!(1)), "ok");
            // A value nested deeper than the bound: below it, anything passes.
            let mut schema = json!({"type": "integer"});
            let mut value = json!("deep");
            for _ in 0..MAX_DEPTH + 10 {
                schema = json!({"type": "array", "items": schema});
                value = json!([value]);
            }
            assert_eq!(why(schema.clone(), value), "ok");
            let mut shallow = json!("x");
            for _ in 0..10 {
                shallow = json!([shallow]);
            }
            assert_eq!(
                why(schema, shallow),
                "$[0][0][0][0][0][0][0][0][0][0]: expected array, got string"
            );
        })
        .unwrap();
    worker.join().unwrap();
}

#[test]
fn bounds_on_numbers_strings_and_arrays() {
    let s = json!({"minimum": 0, "exclusiveMaximum": 10});
    assert_eq!(why(s.clone(), json!(0)), "ok");
    assert_eq!(why(s.clone(), json!(-1)), "$: below the minimum");
    assert_eq!(why(s, json!(10)), "$: not below the exclusive maximum");
    assert_eq!(
        why(json!({"maxLength": 2}), json!("été")),
        "$: longer than maxLength"
    );
    assert_eq!(why(json!({"maxLength": 3}), json!("été")), "ok");
    assert_eq!(
        why(json!({"minItems": 1}), json!([])),
        "$: fewer items than minItems"
    );
}

#[test]
fn keywords_it_does_not_know_reject_nothing() {
    let s = json!({"type": "string", "pattern": "^[0-9]+$", "format": "email",
        "not": {"type": "string"}, "x-custom": 1});
    assert_eq!(why(s, json!("hello")), "ok");
    assert_eq!(why(json!(true), json!({"a": 1})), "ok");
    assert_eq!(why(json!("not a schema"), json!(1)), "ok");
}
