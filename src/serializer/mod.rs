//! Serializers: how model values become the bytes stored in Redis, in the formats
//! Python redisext uses, so both languages read each other's values.
//!
//! | serializer | value | bytes in Redis | Python counterpart |
//! |---|---|---|---|
//! | [`Raw`] | `[u8]` / `Vec<u8>` | as given | no `SERIALIZER` |
//! | [`Str`] | `str` / `String` | UTF-8 | `redisext.serializer.String` |
//! | [`Numeric`] | `i64` | decimal ASCII, read as Python's `int()` reads it | `redisext.serializer.Numeric` |
//! | [`Json<T>`] | any serde type | `json.dumps` defaults, byte for byte; read as `json.loads` reads | `redisext.serializer.JSON` |
//! | [`Pickle<T>`] | any serde type | pickle protocol 3 (reads 0–5) | `redisext.serializer.Pickle` |
//! | [`PickleValue`] | [`PyValue`]: Python's own types (tuple, set, bytes, big int) | pickle protocol 3 (reads 0–5) | `redisext.serializer.Pickle` |
//!
//! `tests/python_serializers.rs` checks each of them against CPython itself, in both
//! directions; `docs/python.md` lists every place where the two libraries differ.

mod json;
mod numeric;
mod pickle;

pub use json::{Json, from_python_json, to_python_json};
pub use numeric::Numeric;
pub(crate) use numeric::parse_decimal;
pub use pickle::{Pickle, PickleValue, PyHashableValue, PyValue};

/// Turns model values into bytes and back.
///
/// Implement it to store your own format; the models only call these functions.
pub trait Serializer: Send + Sync + 'static {
    /// What a model accepts (may be unsized: `str`, `[u8]`).
    type Value: ?Sized;
    /// What a model returns.
    type Owned: Send + 'static;
    /// The serializer's name without its type parameters (`Json`).
    const NAME: &'static str;

    /// The name used in error messages, with its type parameters (`Json<f64>`,
    /// `Pickle<Vec<String>>`). Defaults to [`NAME`](Self::NAME).
    fn name() -> String {
        Self::NAME.to_owned()
    }

    /// Encodes a value; the error text says why it cannot be stored.
    fn encode(value: &Self::Value) -> Result<Vec<u8>, String>;

    /// The length `encode` will give, when it is known without encoding (raw
    /// bytes, text): a value over the server's bulk limit is then refused before
    /// it is copied. `None` (the default) when only encoding tells.
    fn encoded_len(value: &Self::Value) -> Option<usize> {
        let _ = value;
        None
    }

    /// Decodes stored bytes; the error text says why they are not a valid value.
    fn decode(bytes: &[u8]) -> Result<Self::Owned, String>;
}

/// `NAME<T>` with `T` written without its module paths: `Json<Vec<String>>`, not
/// `Json<alloc::vec::Vec<alloc::string::String>>`.
pub(crate) fn generic_name<T: ?Sized>(name: &str) -> String {
    let full = std::any::type_name::<T>();
    let mut short = String::with_capacity(name.len() + full.len() + 2);
    short.push_str(name);
    short.push('<');
    let mut segment_start = short.len();
    let mut rest = full;
    while let Some(ch) = rest.chars().next() {
        if rest.starts_with("::") {
            // Drop the path written so far in this segment: keep only its last name.
            short.truncate(segment_start);
            rest = &rest[2..];
            continue;
        }
        short.push(ch);
        if !(ch.is_alphanumeric() || ch == '_') {
            segment_start = short.len();
        }
        rest = &rest[ch.len_utf8()..];
    }
    short.push('>');
    short
}

/// Why stored bytes may not be in a serializer's format although Python wrote them:
/// Python redisext skips its serializer for falsy values (`if value and
/// serializer`), so it stores `""` as empty bytes.
pub(crate) fn falsy_hint(bytes: &[u8]) -> &'static str {
    if bytes.is_empty() {
        " (empty bytes are what Python redisext stores for \"\": it skips its serializer for falsy \
         values; read such keys with Raw or Str)"
    } else {
        ""
    }
}

/// No serializer: values are bytes, stored as given.
#[derive(Clone, Copy, Debug, Default)]
pub struct Raw;

impl Serializer for Raw {
    type Value = [u8];
    type Owned = Vec<u8>;
    const NAME: &'static str = "Raw";

    fn encode(value: &[u8]) -> Result<Vec<u8>, String> {
        Ok(value.to_vec())
    }

    fn encoded_len(value: &[u8]) -> Option<usize> {
        Some(value.len())
    }

    fn decode(bytes: &[u8]) -> Result<Vec<u8>, String> {
        Ok(bytes.to_vec())
    }
}

/// UTF-8 text (Python's `redisext.serializer.String`). Invalid UTF-8 is a decode error.
#[derive(Clone, Copy, Debug, Default)]
pub struct Str;

impl Serializer for Str {
    type Value = str;
    type Owned = String;
    const NAME: &'static str = "Str";

    fn encode(value: &str) -> Result<Vec<u8>, String> {
        Ok(value.as_bytes().to_vec())
    }

    fn encoded_len(value: &str) -> Option<usize> {
        Some(value.len())
    }

    fn decode(bytes: &[u8]) -> Result<String, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("not UTF-8: {}", e.utf8_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_type_parameters_without_paths() {
        assert_eq!(Json::<f64>::name(), "Json<f64>");
        assert_eq!(Json::<Vec<String>>::name(), "Json<Vec<String>>");
        assert_eq!(
            Pickle::<std::collections::BTreeMap<String, (i64, Option<u8>)>>::name(),
            "Pickle<BTreeMap<String, (i64, Option<u8>)>>"
        );
        assert_eq!(Json::<[u8; 4]>::name(), "Json<[u8; 4]>");
        assert_eq!(Raw::name(), "Raw");
        assert_eq!(Numeric::name(), "Numeric");
    }

    #[test]
    fn str_rejects_invalid_utf8() {
        assert!(Str::decode(b"\xff").is_err());
        assert_eq!(Str::decode("ü".as_bytes()), Ok("ü".to_owned()));
    }
}
