//! One event record as ordered JSON fields, and the compact JSON every batch
//! is written in. Shared by the generator, which builds valid records, and by
//! `corrupt`, which breaks them.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

/// One record as ordered JSON fields. Kept as fields rather than a typed
/// struct so that `corrupt` can remove a field or give it the wrong type.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub fields: Vec<(&'static str, Value)>,
}

impl Record {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Replaces the field in place, or appends it.
    pub fn set(&mut self, key: &'static str, value: Value) {
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.fields.retain(|(k, _)| *k != key);
    }

    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (key, value) in &self.fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Compact JSON, no whitespace at all.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Strings and finite numbers (serde_json::Value cannot hold NaN) into a
    // Vec: serialization has no way to fail.
    serde_json::to_vec(value).expect("records of strings and numbers always serialize")
}
