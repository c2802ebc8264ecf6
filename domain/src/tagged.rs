//! Reading an event from its type and data without copying the data.
//!
//! Events travel as `{"type": ..., "data": ...}` (adjacently tagged enums).
//! The store keeps the two apart, so decoding used to build that object
//! (a deep copy of the data) and hand it to `serde_json::from_value`, whose
//! map yields `data` before `type` (keys sorted): serde then buffered the
//! whole data before it knew the variant. Here serde sees the same map,
//! borrowed, with the tag first, and reads the data once. A profile of a
//! read-model rebuild showed the copy and the buffering as the largest part
//! of its own CPU.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde_json::Value;

/// `E` from the object `{"type": event_type, "data": data}`.
pub(crate) fn from_tagged<E: DeserializeOwned>(
    event_type: &str,
    data: &Value,
) -> Result<E, serde_json::Error> {
    E::deserialize(Tagged { event_type, data })
}

struct Tagged<'a> {
    event_type: &'a str,
    data: &'a Value,
}

impl<'de> de::Deserializer<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(Entries {
            tagged: self,
            next: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The two entries, the tag first.
struct Entries<'a> {
    tagged: Tagged<'a>,
    next: u8,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let key = match self.next {
            0 => "type",
            1 => "data",
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        self.next += 1;
        match self.next {
            1 => seed.deserialize(BorrowedStrDeserializer::new(self.tagged.event_type)),
            _ => seed.deserialize(self.tagged.data),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(2 - usize::from(self.next.min(2)))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum Event {
        Unit,
        Named { name: String, count: u32 },
        Wrapped(Inner),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        list: Vec<Option<String>>,
    }

    /// Whatever `from_value` on the built object gives, this gives: every
    /// shape of variant, and the same refusals.
    #[test]
    fn reads_what_the_built_object_reads() {
        let cases = [
            ("Unit", json!(null)),
            ("Named", json!({"name": "n", "count": 3})),
            ("Wrapped", json!({"list": ["a", null]})),
            ("Named", json!({"name": "n"})),
            ("Named", json!({"name": "n", "count": -1})),
            ("Wrapped", json!({"list": [], "extra": 1})),
            ("Unknown", json!({})),
            ("Named", json!([1, 2])),
        ];
        for (event_type, data) in cases {
            let built: Result<Event, _> =
                serde_json::from_value(json!({"type": event_type, "data": data}));
            let tagged: Result<Event, _> = from_tagged(event_type, &data);
            match (built, tagged) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{event_type} {data}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{event_type} {data}: {a:?} against {b:?}"),
            }
        }
        let named: Event = from_tagged("Named", &json!({"name": "n", "count": 3})).unwrap();
        assert_eq!(
            named,
            Event::Named {
                name: "n".into(),
                count: 3
            }
        );
    }
}
