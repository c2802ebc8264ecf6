//! Claims path pointers (OpenID4VP 1.0 §7): a non-empty array of keys,
//! indices and nulls that points into a JSON credential, and its processing
//! (§7.1.1).
//!
//! Processing is the specification's, error cases included: a key applied
//! to something that is not an object, or an index or null applied to
//! something that is not an array, is an error for the whole pointer, even
//! when other branches of a null would have matched. Errors and empty
//! selections are both "selects nothing" here: §6.4 treats a claim that
//! cannot be selected as absent, whatever the reason.

use std::fmt;

use serde_json::{Map, Value};

use super::{DcqlError, MAX_PATH_LEN, MAX_STRING_CHARS};

/// One element of a claims path pointer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElement {
    /// A string: the member of an object with this name.
    Key(String),
    /// A non-negative integer: the element of an array at this index.
    Index(u64),
    /// `null`: every element of an array.
    All,
}

impl PathElement {
    /// The element as it is written in a query.
    pub fn to_value(&self) -> Value {
        match self {
            PathElement::Key(key) => Value::String(key.clone()),
            PathElement::Index(index) => Value::from(*index),
            PathElement::All => Value::Null,
        }
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Key(key) => f.write_str(key),
            PathElement::Index(index) => write!(f, "{index}"),
            PathElement::All => f.write_str("*"),
        }
    }
}

/// A checked claims path pointer: 1 to [`MAX_PATH_LEN`] elements, keys of
/// at most [`MAX_STRING_CHARS`] characters.
///
/// Shown (`Display`) as its elements joined by dots, with `*` for null
/// (`degrees.*.type`): for people and logs, not to be parsed back, since a
/// key may itself contain a dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimsPath(Vec<PathElement>);

impl ClaimsPath {
    /// A pointer as written in a query (`["address", "street_address"]`).
    pub fn parse(value: &Value) -> Result<Self, DcqlError> {
        Self::parse_at(value, "path")
    }

    pub(super) fn parse_at(value: &Value, at: &str) -> Result<Self, DcqlError> {
        let Value::Array(items) = value else {
            return Err(DcqlError::WrongType {
                at: at.to_owned(),
                expected: "an array",
            });
        };
        if items.is_empty() {
            return Err(DcqlError::Empty { at: at.to_owned() });
        }
        if items.len() > MAX_PATH_LEN {
            return Err(DcqlError::TooMany {
                at: at.to_owned(),
                max: MAX_PATH_LEN,
            });
        }
        let mut elements = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("{at}[{i}]");
            elements.push(match item {
                Value::String(key) if key.chars().count() > MAX_STRING_CHARS => {
                    return Err(DcqlError::TooLong {
                        at,
                        max: MAX_STRING_CHARS,
                    });
                }
                Value::String(key) => PathElement::Key(key.clone()),
                Value::Null => PathElement::All,
                // `as_u64` is `None` for negative numbers and for any
                // number written with a fraction or exponent (`1.5`, `1.0`).
                Value::Number(number) => match number.as_u64() {
                    Some(index) => PathElement::Index(index),
                    None => return Err(DcqlError::InvalidPathElement { at }),
                },
                _ => return Err(DcqlError::InvalidPathElement { at }),
            });
        }
        Ok(Self(elements))
    }

    pub fn elements(&self) -> &[PathElement] {
        &self.0
    }

    /// The pointer as written in a query.
    pub fn to_value(&self) -> Value {
        Value::Array(self.0.iter().map(PathElement::to_value).collect())
    }

    /// §7.1 processing: the selected JSON values (empty = selects nothing / error per spec).
    ///
    /// `claims` is the credential's top-level object; anything else selects
    /// nothing.
    pub fn select<'v>(&self, claims: &'v Value) -> Vec<&'v Value> {
        self.resolve_value(claims)
            .into_iter()
            .map(|(_, value)| value)
            .collect()
    }

    /// Concrete paths (every All expanded to the indices it matched) that lead to selected values.
    ///
    /// In the order of [`ClaimsPath::select`], one for each value it
    /// returns.
    pub fn concrete(&self, claims: &Value) -> Vec<Vec<PathElement>> {
        self.resolve_value(claims)
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    fn resolve_value<'v>(&self, claims: &'v Value) -> Vec<(Vec<PathElement>, &'v Value)> {
        match claims {
            Value::Object(claims) => self.resolve(claims),
            _ => Vec::new(),
        }
    }

    /// Each selected value with its concrete path (no [`PathElement::All`]),
    /// in document order; empty when the pointer selects nothing or its
    /// processing fails.
    pub fn resolve<'v>(
        &self,
        claims: &'v Map<String, Value>,
    ) -> Vec<(Vec<PathElement>, &'v Value)> {
        // The root is an object, so only a key applies to it.
        let Some((PathElement::Key(first), rest)) = self.0.split_first() else {
            return Vec::new();
        };
        let Some(value) = claims.get(first) else {
            return Vec::new();
        };
        let mut selected = vec![(vec![PathElement::Key(first.clone())], value)];
        for element in rest {
            let mut next = Vec::new();
            for (path, value) in selected {
                let step = |next: &mut Vec<_>, element: PathElement, value| {
                    let mut path = path.clone();
                    path.push(element);
                    next.push((path, value));
                };
                match (element, value) {
                    (PathElement::Key(key), Value::Object(object)) => {
                        if let Some(value) = object.get(key) {
                            step(&mut next, element.clone(), value);
                        }
                    }
                    (PathElement::Index(index), Value::Array(array)) => {
                        let found = usize::try_from(*index).ok().and_then(|i| array.get(i));
                        if let Some(value) = found {
                            step(&mut next, element.clone(), value);
                        }
                    }
                    (PathElement::All, Value::Array(array)) => {
                        for (index, value) in array.iter().enumerate() {
                            step(&mut next, PathElement::Index(index as u64), value);
                        }
                    }
                    // §7.1.1: a key on a non-object, or an index or null on
                    // a non-array, aborts processing with an error.
                    _ => return Vec::new(),
                }
            }
            if next.is_empty() {
                return next;
            }
            selected = next;
        }
        selected
    }
}

impl fmt::Display for ClaimsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, element) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{element}")?;
        }
        Ok(())
    }
}
