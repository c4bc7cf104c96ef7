//! [`Json<T>`]: JSON written exactly as CPython's `json.dumps` writes it and read
//! as its `json.loads` reads it.

mod float;
mod read;
mod write;

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Serializer, falsy_hint, generic_name};

/// JSON, written exactly as Python's `json.dumps` does with its defaults, and read
/// as its `json.loads` reads, so a value written by either language is
/// byte-identical and set or sorted-set membership works across them.
///
/// - **Output**: `", "` and `": "` separators; every non-ASCII character (and DEL)
///   escaped as `\uXXXX`, beyond the BMP as a surrogate pair (`\ud83d\ude00`);
///   floats as Python's `repr` (`1e+16`, `1e-05`, `100.0`, `-0.0`, ties to even
///   as CPython breaks them); `NaN`, `Infinity`, `-Infinity` as Python writes them
///   (they are not standard JSON: other JSON readers may refuse them); integers up
///   to 128 bits; map keys converted as Python converts them (`{1: 2}` →
///   `{"1": 2}`, `NaN` → `"NaN"`), keys of other kinds refused as Python refuses them.
/// - **Input**: what `json.loads` accepts, and nothing else (no trailing commas,
///   leading zeros or control characters in strings); floats read exactly;
///   `NaN`/`Infinity`/`-Infinity` read as floats; integers exact up to 128 bits,
///   a typed error beyond (Python's ints are unbounded), never turned into a float:
///   an integer is read into an `f64` only when the `f64` holds it exactly.
///   `serde_json::Value` cannot hold NaN or an infinity (it would make it null):
///   reading one into it is an error. Arrays and objects nest at most 128 deep.
/// - **Key order**: objects are written in the order serde gives their entries,
///   and read in the input's order into types that keep it: struct fields in
///   declaration order (declare them in the order the Python side builds its dicts:
///   Python keeps insertion order), `BTreeMap` sorted, `HashMap` in random order
///   (avoid it for shared members), an order-keeping map (`indexmap::IndexMap`) as
///   read. `serde_json::Value` sorts its keys unless serde_json's `preserve_order`
///   feature is on in your build: enable it in your own `Cargo.toml` to keep
///   Python's order in dynamic values. redisext does not enable it for you, because
///   a feature is on for every crate in a build: it would change the key order of
///   every `serde_json::Map` your program uses.
///
/// ```
/// use redisext::serializer::{Json, Serializer};
/// assert_eq!(Json::<f64>::encode(&1e16).unwrap(), b"1e+16");
/// assert_eq!(Json::<Vec<f64>>::encode(&vec![f64::NAN, -0.0]).unwrap(), b"[NaN, -0.0]");
/// assert!(Json::<f64>::decode(b"NaN").unwrap().is_nan());
/// assert_eq!(Json::<f64>::decode(b"9.999999999999999e-05").unwrap(), 9.999999999999999e-05);
/// assert_eq!(Json::<String>::decode(br#""\ud83d\ude00""#).unwrap(), "\u{1F600}");
/// // Python's ints are unbounded; Rust's are not: an error, never a float.
/// assert!(Json::<serde_json::Value>::decode(b"18446744073709551616").is_err());
/// assert_eq!(Json::<u128>::decode(b"18446744073709551616").unwrap(), 1 << 64);
/// ```
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned + Send + 'static> Serializer for Json<T> {
    type Value = T;
    type Owned = T;
    const NAME: &'static str = "Json";

    fn name() -> String {
        generic_name::<T>(Self::NAME)
    }

    fn encode(value: &T) -> Result<Vec<u8>, String> {
        to_python_json(value)
    }

    fn decode(bytes: &[u8]) -> Result<T, String> {
        from_python_json(bytes).map_err(|reason| reason + falsy_hint(bytes))
    }
}

/// Serializes a value as Python's `json.dumps(value)` would (see [`Json`]).
///
/// ```
/// #[derive(serde::Serialize)]
/// struct User { name: String, age: u32, score: f64 }
/// let bytes = redisext::serializer::to_python_json(&User { name: "Zoë".into(), age: 7, score: 1e16 })?;
/// assert_eq!(bytes, br#"{"name": "Zo\u00eb", "age": 7, "score": 1e+16}"#);
/// # Ok::<(), String>(())
/// ```
pub fn to_python_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(64);
    value.serialize(&mut write::Writer { out: &mut out }).map_err(|e| e.message)?;
    Ok(out)
}

/// Deserializes JSON as Python's `json.loads` reads it (see [`Json`]).
///
/// ```
/// let values: Vec<f64> = redisext::serializer::from_python_json(b"[Infinity, 1e-05, 0.1]")?;
/// assert_eq!(values, [f64::INFINITY, 1e-5, 0.1]);
/// # Ok::<(), String>(())
/// ```
pub fn from_python_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 ({e}); Python's redisext refuses it too (it decodes the bytes as UTF-8)"))?;
    let mut reader = read::Reader::new(text);
    T::deserialize(&mut reader).and_then(|value| reader.end().map(|()| value)).map_err(|e| reader.describe(e))
}

/// An error of the JSON reader or writer: what went wrong, and where in the input.
#[derive(Debug)]
pub(crate) struct Error {
    message: String,
    /// The byte offset in the input, when known.
    at: Option<usize>,
}

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Error { message: message.into(), at: None }
    }

    fn context(self, context: String) -> Self {
        Error { message: format!("{} ({context})", self.message), ..self }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl serde::de::Error for Error {
    fn custom<M: fmt::Display>(message: M) -> Self {
        Error::new(message.to_string())
    }
}

impl serde::ser::Error for Error {
    fn custom<M: fmt::Display>(message: M) -> Self {
        Error::new(message.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_matches_python_defaults() {
        let value = serde_json::json!({"a": [1, 2.5, null, true], "b": "é\u{1F600}\u{7f}\n\"\\"});
        // Python: json.dumps({"a": [1, 2.5, None, True], "b": "é😀\x7f\n\"\\"})
        assert_eq!(
            to_python_json(&value).unwrap(),
            br#"{"a": [1, 2.5, null, true], "b": "\u00e9\ud83d\ude00\u007f\n\"\\"}"#.to_vec()
        );
        assert_eq!(to_python_json(&serde_json::json!([[], {}])).unwrap(), b"[[], {}]");
    }

    #[test]
    fn keys_are_converted_as_python_converts_them() {
        let map = std::collections::BTreeMap::from([(1, "a"), (-2, "b")]);
        assert_eq!(to_python_json(&map).unwrap(), br#"{"-2": "b", "1": "a"}"#);
        assert_eq!(
            from_python_json::<std::collections::BTreeMap<i32, String>>(br#"{"-2": "b", "1": "a"}"#),
            Ok([(-2, "b".to_owned()), (1, "a".to_owned())].into())
        );
        let error = to_python_json(&std::collections::BTreeMap::from([(vec![1u8], 1u8)])).unwrap_err();
        assert!(error.contains("not a sequence"), "{error}");
    }

    #[test]
    fn refuses_what_python_refuses() {
        for text in [
            "",
            "01",
            "1.",
            ".5",
            "+1",
            "[1,]",
            "{\"a\":1,}",
            "nan",
            "-NaN",
            "\"\u{1}\"",
            "\"\\x\"",
            "1 2",
            "'a'",
            "True",
        ] {
            assert!(from_python_json::<serde_json::Value>(text.as_bytes()).is_err(), "{text:?}");
        }
        let error = from_python_json::<serde_json::Value>(b"[1,\n 2,]").unwrap_err();
        assert!(error.ends_with("at line 2 column 4"), "{error}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let error = from_python_json::<serde_json::Value>(deep.as_bytes()).unwrap_err();
        assert!(error.contains("nested deeper than 128"), "{error}");
        let fine = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(from_python_json::<serde_json::Value>(fine.as_bytes()).is_ok());
    }
}
