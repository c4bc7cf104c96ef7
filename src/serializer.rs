//! Serializers: how model values become the bytes stored in Redis, in the formats
//! Python redisext uses, so both languages read each other's values.
//!
//! | serializer | value | bytes in Redis | Python counterpart |
//! |---|---|---|---|
//! | [`Raw`] | `[u8]` / `Vec<u8>` | as given | no `SERIALIZER` |
//! | [`Str`] | `str` / `String` | UTF-8 | `redisext.serializer.String` |
//! | [`Numeric`] | `i64` | decimal ASCII | `redisext.serializer.Numeric` |
//! | [`Json<T>`] | any serde type | `json.dumps` defaults, byte for byte | `redisext.serializer.JSON` |
//! | [`Pickle<T>`] | any serde type | pickle protocol 3 (reads 2–5) | `redisext.serializer.Pickle` |

use std::io;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Turns model values into bytes and back.
///
/// Implement it to store your own format; the models only call these two functions.
pub trait Serializer: Send + Sync + 'static {
    /// What a model accepts (may be unsized: `str`, `[u8]`).
    type Value: ?Sized;
    /// What a model returns.
    type Owned: Send + 'static;
    /// The name used in error messages.
    const NAME: &'static str;

    /// Encodes a value; the error text says why it cannot be stored.
    fn encode(value: &Self::Value) -> Result<Vec<u8>, String>;

    /// Decodes stored bytes; the error text says why they are not a valid value.
    fn decode(bytes: &[u8]) -> Result<Self::Owned, String>;
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

    fn decode(bytes: &[u8]) -> Result<String, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("not UTF-8: {}", e.utf8_error()))
    }
}

/// A signed 64-bit integer stored as decimal ASCII (Python's
/// `redisext.serializer.Numeric`, which applies `int()` to the bytes: surrounding
/// whitespace and a leading `+` are accepted, as there).
#[derive(Clone, Copy, Debug, Default)]
pub struct Numeric;

impl Serializer for Numeric {
    type Value = i64;
    type Owned = i64;
    const NAME: &'static str = "Numeric";

    fn encode(value: &i64) -> Result<Vec<u8>, String> {
        Ok(value.to_string().into_bytes())
    }

    fn decode(bytes: &[u8]) -> Result<i64, String> {
        parse_decimal(bytes)
    }
}

/// Parses a decimal `i64` as Python's `int()` does for ASCII input (spaces around,
/// optional sign, `_` between digits).
pub(crate) fn parse_decimal(bytes: &[u8]) -> Result<i64, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not ASCII digits".to_owned())?;
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    let well_formed = !unsigned.is_empty()
        && !unsigned.starts_with('_')
        && !unsigned.ends_with('_')
        && !unsigned.contains("__")
        && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return Err("not a decimal integer".to_owned());
    }
    digits.replace('_', "").parse::<i64>().map_err(|_| "integer out of the 64-bit range".to_owned())
}

/// JSON, written exactly as Python's `json.dumps` does with its defaults, so a value
/// written by either language is byte-identical and set or sorted-set membership
/// works across them.
///
/// The defaults in question: `", "` and `": "` separators, every non-ASCII
/// character (and DEL) escaped as `\uXXXX` with surrogate pairs, floats as Python's
/// `repr` (`1e+16`, `1e-05`, `100.0`), `NaN` and `Infinity` allowed. Object keys are
/// written in the order serde gives them: struct fields in declaration order, so
/// declare them in the order the Python side builds its dicts (Python keeps
/// insertion order); avoid `HashMap`, whose order is random.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned + Send + 'static> Serializer for Json<T> {
    type Value = T;
    type Owned = T;
    const NAME: &'static str = "Json";

    fn encode(value: &T) -> Result<Vec<u8>, String> {
        to_python_json(value)
    }

    fn decode(bytes: &[u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// Serializes a value as Python's `json.dumps(value)` would.
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
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut serializer).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A `serde_json` formatter with the output of Python's `json.dumps` defaults.
#[derive(Clone, Copy, Debug, Default)]
pub struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        // Python has no f32: it would print the f64 the value widens to.
        writer.write_all(python_float_repr(f64::from(value)).as_bytes())
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(python_float_repr(value).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        // serde_json has already escaped quotes, backslashes and control characters;
        // `ensure_ascii=True` also escapes DEL and everything beyond ASCII.
        let mut start = 0;
        for (index, ch) in fragment.char_indices() {
            if (' '..='~').contains(&ch) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..index])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = index + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Formats a float as Python's `repr(float)` (and so `json.dumps`) does.
pub(crate) fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity".to_owned() } else { "-Infinity".to_owned() };
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as Python's repr does;
    // only the layout differs.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-5 < exponent && exponent < 16) {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.unsigned_abs());
    }
    let point = exponent + 1; // digits before the decimal point
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{sign}{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        format!("{sign}{whole}.{fraction}")
    }
}

/// Python pickle (`redisext.serializer.Pickle`). Writes protocol 3, which every
/// Python 3 reads; reads protocols 2 to 5, so values pickled by Python's default
/// protocol decode here.
///
/// Pickled values round-trip between the languages, but are **not byte-identical**
/// (Python writes protocol 4 or 5 with framing and memo opcodes): a pickled member
/// pushed into a `Pool` or `SortedSet` by one language is not found by `contains`
/// or `rem` from the other. Use [`Json`] for members shared across languages.
pub struct Pickle<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned + Send + 'static> Serializer for Pickle<T> {
    type Value = T;
    type Owned = T;
    const NAME: &'static str = "Pickle";

    fn encode(value: &T) -> Result<Vec<u8>, String> {
        serde_pickle::to_vec(value, serde_pickle::SerOptions::new()).map_err(|e| e.to_string())
    }

    fn decode(bytes: &[u8]) -> Result<T, String> {
        serde_pickle::from_slice(bytes, serde_pickle::DeOptions::new()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_python_repr() {
        // Each right-hand side is what CPython 3.11 prints for repr(x).
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e100, "1e+100"),
            (-2.5, "-2.5"),
            (std::f64::consts::PI, "3.141592653589793"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float_repr(*value), *expected, "repr({value:?})");
        }
    }

    #[test]
    fn json_matches_python_defaults() {
        let value = serde_json::json!({"a": [1, 2.5, null, true], "b": "é\u{1F600}\u{7f}\n\"\\"});
        // Python: json.dumps({"a": [1, 2.5, None, True], "b": "é😀\x7f\n\"\\"})
        assert_eq!(
            to_python_json(&value).unwrap(),
            br#"{"a": [1, 2.5, null, true], "b": "\u00e9\ud83d\ude00\u007f\n\"\\"}"#.to_vec()
        );
    }

    #[test]
    fn numeric_accepts_what_python_int_accepts() {
        assert_eq!(Numeric::decode(b"42"), Ok(42));
        assert_eq!(Numeric::decode(b" -7 \n"), Ok(-7));
        assert_eq!(Numeric::decode(b"+1_000"), Ok(1000));
        assert!(Numeric::decode(b"").is_err());
        assert!(Numeric::decode(b"1.5").is_err());
        assert!(Numeric::decode(b"1__0").is_err());
        assert!(Numeric::decode(b"99999999999999999999").is_err());
    }

    #[test]
    fn str_rejects_invalid_utf8() {
        assert!(Str::decode(b"\xff").is_err());
        assert_eq!(Str::decode("ü".as_bytes()), Ok("ü".to_owned()));
    }

    #[test]
    fn pickle_round_trips() {
        let bytes = Pickle::<Vec<String>>::encode(&vec!["a".to_owned(), "ü".to_owned()]).unwrap();
        assert_eq!(bytes[..2], [0x80, 3], "protocol 3 header");
        assert_eq!(Pickle::<Vec<String>>::decode(&bytes).unwrap(), vec!["a".to_owned(), "ü".to_owned()]);
    }
}
