//! The JSON value contract records are built as. Not `serde_json::Value`:
//! objects keep their members in the contract's order (serde_json sorts them)
//! and may hold a name twice (the `duplicate_field` breakage), and integers
//! stay integers, written without fraction or exponent.

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    /// Always finite.
    Num(f64),
    Str(String),
    Array(Vec<Json>),
    /// Members in the order written; a name may appear twice.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The contract's `enum`/`const` values. A whole number is an integer
    /// when it fits i64, so an integer column gets `3`, not `3.0`.
    pub fn from_value(value: &Value) -> Json {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Json::Int(i),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9e15 => Json::Int(f as i64),
                (None, f) => Json::Num(f.unwrap_or_default()),
            },
            Value::String(s) => Json::Str(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Json::from_value).collect()),
            Value::Object(members) => Json::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), Json::from_value(v)))
                    .collect(),
            ),
        }
    }

    /// As serde_json reads the written text: the last of duplicate names wins.
    #[cfg(test)]
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&crate::record::to_json(self)).expect("our JSON reads back")
    }

    /// Equality as JSON Schema's `enum` and `const` see it: numbers by value,
    /// objects regardless of member order.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Json::Null, Value::Null) => true,
            (Json::Bool(a), Value::Bool(b)) => a == b,
            (Json::Int(a), Value::Number(b)) => match b.as_i64() {
                Some(b) => *a == b,
                None => b.as_f64() == Some(*a as f64),
            },
            (Json::Num(a), Value::Number(b)) => b.as_f64() == Some(*a),
            (Json::Str(a), Value::String(b)) => a == b,
            (Json::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
            }
            (Json::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).is_some_and(|other| v.same_as(other)))
            }
            _ => false,
        }
    }

    /// The first member called `name`, of an object.
    #[cfg(test)]
    pub fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Int(i) => serializer.serialize_i64(*i),
            Json::Num(f) => serializer.serialize_f64(*f),
            Json::Str(s) => serializer.serialize_str(s),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn written_in_order_with_integers_as_integers() {
        let record = Json::Object(vec![
            ("b".into(), Json::Int(3)),
            ("a".into(), Json::Num(2.5)),
            (
                "b".into(),
                Json::Array(vec![Json::Null, Json::Str("é".into())]),
            ),
        ]);
        assert_eq!(
            crate::record::to_json(&record),
            r#"{"b":3,"a":2.5,"b":[null,"é"]}"#.as_bytes()
        );
        assert_eq!(record.get("b"), Some(&Json::Int(3)));
        assert_eq!(Json::from_value(&json!(4.0)), Json::Int(4));
        assert!(Json::Int(4).same_as(&json!(4.0)));
        assert!(!Json::Str("4".into()).same_as(&json!(4)));
    }
}
