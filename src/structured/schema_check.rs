//! Whether a JSON value satisfies a JSON Schema, as far as the schemas clients send for
//! structured outputs go (OpenAI strict schemas, pydantic's `model_json_schema()`,
//! zod-to-json-schema, the Anthropic SDK's transformed schemas).
//!
//! Lenient by design: a keyword it does not know (`pattern`, `format`, `not`, `if`, …) never
//! rejects an answer, and `oneOf` is read as `anyOf` (with keywords ignored, two branches may
//! both seem to match where the real validator would tell them apart). A refused answer the
//! schema allows would be worse than an accepted one it does not.
//!
//! Bounded: workers run on small stacks, and a schema is client input. Nesting beyond
//! [`MAX_DEPTH`] (a `$ref` cycle, a deep recursive model) and work beyond [`MAX_STEPS`] (`anyOf`
//! branches retried at every level) count as satisfied.
//!
//! Knows nothing of HTTP, client formats or Kiro: a schema and a value in, a verdict out.

use std::fmt;

use serde_json::{Map, Value};

/// Schema levels followed below the root (each property, item, branch or `$ref` is one). A
/// level takes under 1 KiB of stack, even unoptimised: 48 of them fit a worker's stack with
/// room to spare.
pub const MAX_DEPTH: usize = 48;

/// Schema nodes visited in one check.
pub const MAX_STEPS: usize = 100_000;

/// The first place where a value breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as `$.a.b[2]`.
    pub path: String,
    /// What is wrong there, e.g. `expected number, got string`.
    pub reason: String,
    /// How many steps below the root `path` is (to prefer the deepest of several).
    levels: usize,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Whether `value` satisfies `schema`; the first violation found when it does not.
pub fn check(schema: &Value, value: &Value) -> Result<(), Violation> {
    let mut checker = Checker {
        root: schema,
        steps: 0,
    };
    checker
        .node(schema, value, &mut Vec::new(), 0)
        .map_err(|v| *v)
}

/// A verdict as passed up the recursion: boxed, so that each level's frame stays small.
type Verdict = Result<(), Box<Violation>>;

/// One step of a path into the value.
enum Seg<'v> {
    Key(&'v str),
    Index(usize),
}

fn render(path: &[Seg<'_>]) -> String {
    let mut s = String::from("$");
    for seg in path {
        match seg {
            Seg::Key(k) if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Key(k) => {
                s.push('[');
                s.push_str(&Value::String((*k).to_string()).to_string());
                s.push(']');
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn violation(path: &[Seg<'_>], reason: String) -> Box<Violation> {
    Box::new(Violation {
        path: render(path),
        reason,
        levels: path.len(),
    })
}

struct Checker<'s> {
    root: &'s Value,
    steps: usize,
}

impl<'s> Checker<'s> {
    /// `value` (at `path`) against `schema`, `depth` levels below the root schema.
    fn node<'v>(
        &mut self,
        schema: &'s Value,
        value: &'v Value,
        path: &mut Vec<Seg<'v>>,
        depth: usize,
    ) -> Verdict {
        self.steps += 1;
        if depth > MAX_DEPTH || self.steps > MAX_STEPS {
            return Ok(());
        }
        let s = match schema {
            Value::Object(s) => s,
            Value::Bool(false) => return Err(violation(path, "no value is allowed here".into())),
            _ => return Ok(()),
        };
        // OpenAPI's `nullable: true`, which some clients still write instead of a type list.
        if value.is_null() && s.get("nullable") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        if let Some(target) = s.get("$ref").and_then(Value::as_str) {
            // An unresolvable reference is not the answer's fault.
            if let Some(sub) = self.resolve(target) {
                self.node(sub, value, path, depth + 1)?;
            }
        }
        check_type(s, value, path)?;
        check_constants(s, value, path)?;
        check_bounds(s, value, path)?;
        self.combinators(s, value, path, depth)?;
        match value {
            Value::Object(map) => self.object(s, map, path, depth),
            Value::Array(items) => self.array(s, items, path, depth),
            _ => Ok(()),
        }
    }

    /// The schema a local `$ref` (`#`, `#/$defs/…`, `#/definitions/…`, any `#/` pointer) names.
    fn resolve(&self, target: &str) -> Option<&'s Value> {
        let pointer = target.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(self.root);
        }
        self.root.pointer(pointer)
    }

    fn combinators<'v>(
        &mut self,
        s: &'s Map<String, Value>,
        value: &'v Value,
        path: &mut Vec<Seg<'v>>,
        depth: usize,
    ) -> Verdict {
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.node(sub, value, path, depth + 1)?;
            }
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(branches) = s.get(keyword).and_then(Value::as_array) {
                self.any_branch(keyword, branches, value, path, depth)?;
            }
        }
        Ok(())
    }

    /// At least one branch matches. When none does, the violation that got deepest into the
    /// value says more than "no branch matched" (`Optional[Model]` with a bad field inside).
    fn any_branch<'v>(
        &mut self,
        keyword: &str,
        branches: &'s [Value],
        value: &'v Value,
        path: &mut Vec<Seg<'v>>,
        depth: usize,
    ) -> Verdict {
        if branches.is_empty() {
            return Ok(());
        }
        let mut deepest: Option<Box<Violation>> = None;
        for sub in branches {
            match self.node(sub, value, path, depth + 1) {
                Ok(()) => return Ok(()),
                Err(v) => {
                    if deepest.as_ref().is_none_or(|d| v.levels > d.levels) {
                        deepest = Some(v);
                    }
                }
            }
        }
        match deepest {
            Some(v) if v.levels > path.len() => Err(v),
            _ => Err(violation(
                path,
                format!("matches none of the {keyword} branches"),
            )),
        }
    }

    fn object<'v>(
        &mut self,
        s: &'s Map<String, Value>,
        map: &'v Map<String, Value>,
        path: &mut Vec<Seg<'v>>,
        depth: usize,
    ) -> Verdict {
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            if let Some(missing) = required
                .iter()
                .filter_map(Value::as_str)
                .find(|k| !map.contains_key(*k))
            {
                return Err(violation(
                    path,
                    format!("missing required property '{missing}'"),
                ));
            }
        }
        let properties = s.get("properties").and_then(Value::as_object);
        // Without a regex engine, a key a pattern might cover cannot be called extra.
        let additional = s
            .get("additionalProperties")
            .filter(|_| !s.contains_key("patternProperties"));
        for (key, item) in map {
            let sub = match properties.and_then(|p| p.get(key)) {
                Some(sub) => sub,
                None => match additional {
                    Some(sub) => sub,
                    None => continue,
                },
            };
            path.push(Seg::Key(key));
            let verdict = match sub {
                Value::Bool(false) => Err(violation(path, "property is not allowed".into())),
                _ => self.node(sub, item, path, depth + 1),
            };
            path.pop();
            verdict?;
        }
        Ok(())
    }

    fn array<'v>(
        &mut self,
        s: &'s Map<String, Value>,
        items: &'v [Value],
        path: &mut Vec<Seg<'v>>,
        depth: usize,
    ) -> Verdict {
        // `prefixItems` (2020-12) or an `items` array (draft 4–7) fix the first items; `items`
        // (2020-12) or `additionalItems` (older) cover the rest.
        let (prefix, rest) = match (s.get("prefixItems"), s.get("items")) {
            (Some(Value::Array(p)), rest) => (p.as_slice(), rest),
            (_, Some(Value::Array(p))) => (p.as_slice(), s.get("additionalItems")),
            (_, rest) => (&[][..], rest),
        };
        for (i, item) in items.iter().enumerate() {
            let sub = match prefix.get(i).or(rest) {
                Some(sub) => sub,
                None => break,
            };
            path.push(Seg::Index(i));
            let verdict = match sub {
                Value::Bool(false) => Err(violation(path, "no further item is allowed".into())),
                _ => self.node(sub, item, path, depth + 1),
            };
            path.pop();
            verdict?;
        }
        Ok(())
    }
}

/// The JSON Schema type name of `value` (`integer` for a number without a fractional part).
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) if is_integer(value) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// JSON Schema counts `3.0` as an integer: the value matters, not how it was written.
fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => true,
        Value::Number(n) => n
            .as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0),
        _ => false,
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => is_integer(value),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        // A type name no draft defines: not the answer's fault.
        _ => true,
    }
}

fn check_type(s: &Map<String, Value>, value: &Value, path: &[Seg<'_>]) -> Verdict {
    let names: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    if names.is_empty() || names.iter().any(|t| has_type(value, t)) {
        return Ok(());
    }
    Err(violation(
        path,
        format!("expected {}, got {}", names.join(" or "), type_of(value)),
    ))
}

fn check_constants(s: &Map<String, Value>, value: &Value, path: &[Seg<'_>]) -> Verdict {
    if let Some(c) = s.get("const") {
        if !same(c, value) {
            return Err(violation(path, format!("expected the constant {c}")));
        }
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        if !options.iter().any(|o| same(o, value)) {
            return Err(violation(path, "not one of the enum values".into()));
        }
    }
    Ok(())
}

/// JSON equality, where `1` and `1.0` are the same number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// `minimum`/`maximum` (and their exclusive forms), `minLength`/`maxLength`,
/// `minItems`/`maxItems`: cheap, and pydantic and zod write them for constrained fields.
fn check_bounds(s: &Map<String, Value>, value: &Value, path: &[Seg<'_>]) -> Verdict {
    let num = |k: &str| s.get(k).and_then(Value::as_f64);
    let count = |k: &str| s.get(k).and_then(Value::as_u64);
    let broken = match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if num("minimum").is_some_and(|m| x < m) {
                Some("below the minimum")
            } else if num("maximum").is_some_and(|m| x > m) {
                Some("above the maximum")
            } else if num("exclusiveMinimum").is_some_and(|m| x <= m) {
                Some("not above the exclusive minimum")
            } else if num("exclusiveMaximum").is_some_and(|m| x >= m) {
                Some("not below the exclusive maximum")
            } else {
                None
            }
        }
        Value::String(t) => {
            let len = t.chars().count() as u64;
            if count("minLength").is_some_and(|m| len < m) {
                Some("shorter than minLength")
            } else if count("maxLength").is_some_and(|m| len > m) {
                Some("longer than maxLength")
            } else {
                None
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if count("minItems").is_some_and(|m| len < m) {
                Some("fewer items than minItems")
            } else if count("maxItems").is_some_and(|m| len > m) {
                Some("more items than maxItems")
            } else {
                None
            }
        }
        _ => None,
    };
    match broken {
        Some(reason) => Err(violation(path, reason.into())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
