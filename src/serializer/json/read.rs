//! A serde deserializer that reads JSON as CPython's `json.loads` reads it:
//! `NaN`, `Infinity` and `-Infinity` are numbers; whitespace is ` \t\n\r` only;
//! control characters inside strings, trailing commas, leading zeros and single
//! quotes are refused. Floats are read exactly (Rust's `f64::from_str`), integers
//! exactly up to 128 bits and refused beyond (Python's ints are unbounded).

use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};

use super::Error;

/// Arrays and objects nested deeper than this are refused: each level is a
/// recursion of the visitor on the stack (serde_json's limit too; Python's is
/// about 1,000, its recursion limit).
pub(super) const MAX_DEPTH: usize = 128;

pub(super) struct Reader<'de> {
    text: &'de str,
    pos: usize,
    depth: usize,
    /// A string with escapes, unescaped.
    scratch: String,
}

/// Bytes that end a run of plain string content: `"`, `\` and control characters.
const SPECIAL: [bool; 256] = {
    let mut special = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        special[byte] = true;
        byte += 1;
    }
    special[b'"' as usize] = true;
    special[b'\\' as usize] = true;
    special
};

/// A string as read: borrowed from the input when it has no escapes.
enum Text<'de, 's> {
    Borrowed(&'de str),
    Unescaped(&'s str),
}

impl Text<'_, '_> {
    fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Unescaped(s) => s,
        }
    }
}

/// A number as read.
enum Number<'de> {
    Unsigned(u64),
    Negative(i64),
    Unsigned128(u128),
    Negative128(i128),
    Float(f64),
    /// An integer beyond 128 bits, as written.
    TooLarge(&'de str),
}

impl<'de> Reader<'de> {
    pub(super) fn new(text: &'de str) -> Self {
        Reader { text, pos: 0, depth: 0, scratch: String::new() }
    }

    fn bytes(&self) -> &'de [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    /// Python's json whitespace: space, tab, newline, carriage return.
    pub(super) fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// After the value: only whitespace may follow.
    pub(super) fn end(&mut self) -> Result<(), Error> {
        self.skip_whitespace();
        if self.pos < self.text.len() {
            return Err(self.error("extra data after the JSON value"));
        }
        Ok(())
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error { message: message.into(), at: Some(self.pos) }
    }

    /// `error` with where it happened: `at line 1 column 5` (characters, from 1).
    pub(super) fn describe(&self, error: Error) -> String {
        let mut at = error.at.unwrap_or(self.pos).min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        format!("{} at line {line} column {column}", error.message)
    }

    fn literal(&mut self, word: &str) -> Result<(), Error> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!(
                "arrays and objects nested deeper than {MAX_DEPTH} levels (Python reads about 1,000; \
                 this reader stops at {MAX_DEPTH} to keep within the stack)"
            )));
        }
        self.pos += 1;
        Ok(())
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// A number as Python's scanner matches one: `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`,
    /// or `-Infinity`.
    fn number(&mut self) -> Result<Number<'de>, Error> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
            if self.peek() == Some(b'I') {
                self.literal("Infinity")?;
                return Ok(Number::Float(f64::NEG_INFINITY));
            }
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.error("expected a JSON value")),
        }
        let integer_end = self.pos;
        let bytes = self.bytes();
        let digit_at = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_digit);
        let mut float = false;
        // A part Python's pattern does not match is left for the caller to refuse.
        if self.peek() == Some(b'.') && digit_at(self.pos + 1) {
            self.pos += 1;
            self.skip_digits();
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(bytes.get(self.pos + 1), Some(b'+' | b'-')));
            if digit_at(self.pos + 1 + sign) {
                self.pos += 1 + sign;
                self.skip_digits();
                float = true;
            }
        }
        let text = &self.text[start..self.pos];
        if float {
            // Rust's parse is exact (correctly rounded), as Python's float() is; both
            // read 1e400 as infinity.
            return text.parse().map(Number::Float).map_err(|_| self.error("not a number"));
        }
        let digits = &self.text[start + usize::from(negative)..integer_end];
        let magnitude = if digits.len() <= 19 {
            // Fits a u64: no 128-bit arithmetic.
            Some(u128::from(digits.bytes().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))))
        } else {
            digits.bytes().try_fold(0u128, |n, d| n.checked_mul(10)?.checked_add(u128::from(d - b'0')))
        };
        Ok(match (negative, magnitude) {
            (_, None) => Number::TooLarge(text),
            (false, Some(n)) => u64::try_from(n).map_or(Number::Unsigned128(n), Number::Unsigned),
            (true, Some(n)) => match 0i128.checked_sub_unsigned(n) {
                Some(n) => i64::try_from(n).map_or(Number::Negative128(n), Number::Negative),
                None => Number::TooLarge(text),
            },
        })
    }

    /// A string (at its opening quote) with Python's escapes.
    fn string(&mut self) -> Result<Text<'de, '_>, Error> {
        self.pos += 1;
        let start = self.pos;
        let special = |b: &u8| SPECIAL[usize::from(*b)];
        // Most strings have no escape: borrow them.
        match self.bytes()[self.pos..].iter().position(special) {
            Some(offset) if self.bytes()[self.pos + offset] == b'"' => {
                self.pos += offset + 1;
                return Ok(Text::Borrowed(&self.text[start..self.pos - 1]));
            }
            Some(offset) => self.pos += offset,
            None => self.pos = self.text.len(),
        }
        self.scratch.clear();
        self.scratch.push_str(&self.text[start..self.pos]);
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("a string without its closing quote"));
            };
            match byte {
                b'"' => {
                    self.pos += 1;
                    return Ok(Text::Unescaped(&self.scratch));
                }
                b'\\' => {
                    let ch = self.escape()?;
                    self.scratch.push(ch);
                }
                _ if byte < 0x20 => {
                    return Err(self.error(
                        "a control character inside a string (Python's json.loads refuses it too, \
                         and json.dumps writes it escaped)",
                    ));
                }
                _ => {
                    let run = self.bytes()[self.pos..].iter().position(special).unwrap_or(self.text.len() - self.pos);
                    self.scratch.push_str(&self.text[self.pos..self.pos + run]);
                    self.pos += run;
                }
            }
        }
    }

    /// One escape, at its backslash: `\" \\ \/ \b \f \n \r \t \uXXXX`, and a
    /// surrogate pair as `ensure_ascii` writes a character beyond the BMP.
    fn escape(&mut self) -> Result<char, Error> {
        self.pos += 1;
        let simple = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                if (0xd800..0xdc00).contains(&unit) && self.text[self.pos..].starts_with("\\u") {
                    self.pos += 2;
                    let low = self.hex4()?;
                    if (0xdc00..0xe000).contains(&low) {
                        let code = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                        return char::from_u32(code).ok_or_else(|| self.error("an invalid surrogate pair"));
                    }
                    self.pos -= 6;
                }
                return char::from_u32(unit).ok_or_else(|| {
                    self.error(format!(
                        "a lone surrogate \\u{unit:04x}: Python's json.loads keeps it in its str, \
                         Rust strings cannot hold it"
                    ))
                });
            }
            _ => return Err(self.error("an invalid escape in a string")),
        };
        self.pos += 1;
        Ok(simple)
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self.text.get(self.pos..self.pos + 4).filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
        let unit = digits
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("an invalid \\uXXXX escape"))?;
        self.pos += 4;
        Ok(unit)
    }

    /// Visits a number; `context` is added to a visitor's error for integers beyond
    /// 64 bits, which most Rust types cannot hold.
    fn visit_number<V: Visitor<'de>>(&self, number: Number<'de>, visitor: V) -> Result<V::Value, Error> {
        let wide = |error: Error, n: &dyn fmt::Display| {
            error.context(format!("the integer {n} needs more than 64 bits (Python's ints are unbounded)"))
        };
        match number {
            Number::Unsigned(n) => visitor.visit_u64(n),
            Number::Negative(n) => visitor.visit_i64(n),
            Number::Unsigned128(n) => visitor.visit_u128(n).map_err(|e| wide(e, &n)),
            Number::Negative128(n) => visitor.visit_i128(n).map_err(|e| wide(e, &n)),
            Number::Float(f) if !f.is_finite() && holds_finite_numbers_only(&visitor) => Err(Error::new(format!(
                "{}: serde_json::Value holds finite numbers only (it would make it null); \
                 read it into an f64",
                if f.is_nan() { "NaN" } else { "an infinity" }
            ))),
            Number::Float(f) => visitor.visit_f64(f),
            Number::TooLarge(text) => Err(self.error(format!(
                "the integer {} has {} digits: beyond 128 bits, the most a Rust integer holds \
                 (Python's ints are unbounded)",
                preview(text),
                text.trim_start_matches('-').len()
            ))),
        }
    }

    /// A float target: an integer is read only when the float holds it exactly, so
    /// that a Python int never silently becomes another number.
    fn float<V: Visitor<'de>>(&mut self, visitor: V, exact: fn(bool, u128) -> Option<f64>) -> Result<V::Value, Error> {
        self.skip_whitespace();
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            return de::Deserializer::deserialize_any(self, visitor);
        }
        let number = self.number()?;
        let integer = match number {
            Number::Unsigned(n) => Some((false, u128::from(n))),
            Number::Negative(n) => Some((true, u128::from(n.unsigned_abs()))),
            Number::Unsigned128(n) => Some((false, n)),
            Number::Negative128(n) => Some((true, n.unsigned_abs())),
            Number::Float(_) | Number::TooLarge(_) => None,
        };
        match integer {
            Some((negative, magnitude)) => match exact(negative, magnitude) {
                Some(float) => match number {
                    Number::Unsigned(_) | Number::Negative(_) => self.visit_number(number, visitor),
                    _ => visitor.visit_f64(float),
                },
                None => Err(self.error(format!(
                    "the integer {}{magnitude} has no exact floating-point value (Python's ints are \
                     exact): read it into an integer type",
                    if negative { "-" } else { "" }
                ))),
            },
            None => self.visit_number(number, visitor),
        }
    }
}

/// Whether `f64` holds the integer exactly.
fn exact_f64(negative: bool, magnitude: u128) -> Option<f64> {
    let float = magnitude as f64;
    // u128::MAX rounds up to 2^128, which `as` would saturate back to u128::MAX.
    let exact = float < 2f64.powi(128) && float as u128 == magnitude;
    exact.then_some(if negative { -float } else { float })
}

/// Whether `f32` holds the integer exactly.
fn exact_f32(negative: bool, magnitude: u128) -> Option<f64> {
    let float = magnitude as f32;
    let exact = float.is_finite() && float as u128 == magnitude;
    exact.then_some(f64::from(if negative { -float } else { float }))
}

/// serde_json::Value turns a NaN or an infinity into null (its numbers are finite):
/// such a value is refused instead of changed. Its visitor is told by what it expects.
fn holds_finite_numbers_only<'de, V: Visitor<'de>>(visitor: &V) -> bool {
    struct Expecting<'a, V>(&'a V);
    impl<'de, V: Visitor<'de>> fmt::Display for Expecting<'_, V> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.expecting(f)
        }
    }
    Expecting(visitor).to_string() == "any valid JSON value"
}

fn preview(text: &str) -> String {
    if text.len() <= 40 { text.to_owned() } else { format!("{}…{}", &text[..20], &text[text.len() - 10..]) }
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.skip_whitespace();
        match self.peek() {
            None => Err(self.error("expected a JSON value, found the end of the input")),
            Some(b'n') => {
                self.literal("null")?;
                visitor.visit_unit()
            }
            Some(b't') => {
                self.literal("true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.literal("false")?;
                visitor.visit_bool(false)
            }
            Some(b'N') => {
                self.literal("NaN")?;
                self.visit_number(Number::Float(f64::NAN), visitor)
            }
            Some(b'I') => {
                self.literal("Infinity")?;
                self.visit_number(Number::Float(f64::INFINITY), visitor)
            }
            Some(b'-' | b'0'..=b'9') => {
                let number = self.number()?;
                self.visit_number(number, visitor)
            }
            Some(b'"') => match self.string()? {
                Text::Borrowed(s) => visitor.visit_borrowed_str(s),
                Text::Unescaped(s) => visitor.visit_str(s),
            },
            Some(b'[') => {
                self.enter()?;
                let value = visitor.visit_seq(Items { reader: self, first: true })?;
                self.close(b']', "more array elements than the Rust type holds")?;
                Ok(value)
            }
            Some(b'{') => {
                self.enter()?;
                let value = visitor.visit_map(Items { reader: self, first: true })?;
                self.close(b'}', "more object entries than the Rust type reads")?;
                Ok(value)
            }
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.float(visitor, exact_f64)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.float(visitor, exact_f32)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.skip_whitespace();
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // As serde_json: a string's UTF-8 bytes, or an array of numbers.
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return self.deserialize_any(visitor);
        }
        match self.string()? {
            Text::Borrowed(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            Text::Unescaped(s) => visitor.visit_bytes(s.as_bytes()),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // As serde_json: "Variant" for a unit variant, {"Variant": data} otherwise.
        self.skip_whitespace();
        match self.peek() {
            Some(b'"') => visitor.visit_enum(Variant { reader: self, with_data: false }),
            Some(b'{') => {
                self.enter()?;
                self.skip_whitespace();
                if self.peek() != Some(b'"') {
                    return Err(self.error("expected the variant's name as the object's one key"));
                }
                let value = visitor.visit_enum(Variant { reader: self, with_data: true })?;
                self.close(b'}', "an enum's object must have exactly one key")?;
                Ok(value)
            }
            _ => Err(self.error("expected an enum: a string, or an object with one key")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl Reader<'_> {
    /// The end of an array or object: `close`, or an error saying `leftover`.
    fn close(&mut self, close: u8, leftover: &str) -> Result<(), Error> {
        self.skip_whitespace();
        if self.peek() != Some(close) {
            return Err(self.error(leftover));
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(())
    }

    /// Before an element or entry: `Some(())` when there is one, after its comma.
    fn next_item(&mut self, first: bool, close: u8) -> Result<Option<()>, Error> {
        self.skip_whitespace();
        match self.peek() {
            Some(byte) if byte == close => Ok(None),
            Some(b',') if !first => {
                self.pos += 1;
                self.skip_whitespace();
                if self.peek() == Some(close) {
                    return Err(self.error("a trailing comma (Python's json.loads refuses it too)"));
                }
                Ok(Some(()))
            }
            _ if first => Ok(Some(())),
            _ => Err(self.error(format!("expected ',' or '{}'", close as char))),
        }
    }
}

/// The elements of an array or the entries of an object, after the opening bracket.
struct Items<'a, 'de> {
    reader: &'a mut Reader<'de>,
    first: bool,
}

impl Items<'_, '_> {
    /// Whether another item follows (its comma read), before `close`.
    fn next(&mut self, close: u8) -> Result<bool, Error> {
        let more = self.reader.next_item(self.first, close)?.is_some();
        self.first = false;
        Ok(more)
    }
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        if !self.next(b']')? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        if !self.next(b'}')? {
            return Ok(None);
        }
        if self.reader.peek() != Some(b'"') {
            return Err(self.reader.error("expected an object key in double quotes"));
        }
        seed.deserialize(Key(self.reader.string()?)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.reader.colon()?;
        seed.deserialize(&mut *self.reader)
    }
}

impl Reader<'_> {
    fn colon(&mut self) -> Result<(), Error> {
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.error("expected ':' after an object key"));
        }
        self.pos += 1;
        Ok(())
    }
}

/// An object key. Python writes int, float, bool and None keys as their text
/// (`"1"`, `"1.5"`, `"NaN"`, `"true"`, `"null"`): a Rust key of such a type parses it.
struct Key<'de, 's>(Text<'de, 's>);

impl Key<'_, '_> {
    fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T, Error> {
        self.0.as_str().parse().map_err(|_| Error::new(format!("the object key {:?} is not {what}", self.0.as_str())))
    }
}

macro_rules! parsed_keys {
    ($($method:ident => $visit:ident: $t:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.$visit(self.parse::<$t>($what)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Key<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Text::Borrowed(s) => visitor.visit_borrowed_str(s),
            Text::Unescaped(s) => visitor.visit_str(s),
        }
    }

    parsed_keys! {
        deserialize_i8 => visit_i8: i8, "an i8";
        deserialize_i16 => visit_i16: i16, "an i16";
        deserialize_i32 => visit_i32: i32, "an i32";
        deserialize_i64 => visit_i64: i64, "an i64";
        deserialize_i128 => visit_i128: i128, "an i128";
        deserialize_u8 => visit_u8: u8, "a u8";
        deserialize_u16 => visit_u16: u16, "a u16";
        deserialize_u32 => visit_u32: u32, "a u32";
        deserialize_u64 => visit_u64: u64, "a u64";
        deserialize_u128 => visit_u128: u128, "a u128";
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(python_float_key(self.0.as_str())?)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f32(python_float_key(self.0.as_str())? as f32)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.as_str() {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(Error::new(format!("the object key {other:?} is not a boolean (\"true\" or \"false\")"))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(de::value::StrDeserializer::<Error>::new(self.0.as_str()))
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// A float key as Python writes it: `repr`, with `NaN`, `Infinity`, `-Infinity`.
fn python_float_key(text: &str) -> Result<f64, Error> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        // Rust's parse also takes "inf" and "nan", which Python never writes.
        _ if text.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) => {
            text.parse().map_err(|_| Error::new(format!("the object key {text:?} is not a number")))
        }
        _ => Err(Error::new(format!("the object key {text:?} is not a number"))),
    }
}

/// An enum read from a string (a unit variant) or from a one-key object.
struct Variant<'a, 'de> {
    reader: &'a mut Reader<'de>,
    with_data: bool,
}

impl<'a, 'de> de::EnumAccess<'de> for Variant<'a, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self), Error> {
        let variant = seed.deserialize(Key(self.reader.string()?))?;
        if self.with_data {
            self.reader.colon()?;
        }
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        if self.with_data { de::Deserialize::deserialize(&mut *self.reader) } else { Ok(()) }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        self.data()?;
        seed.deserialize(&mut *self.reader)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.data()?;
        de::Deserializer::deserialize_any(&mut *self.reader, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        self.data()?;
        de::Deserializer::deserialize_any(&mut *self.reader, visitor)
    }
}

impl Variant<'_, '_> {
    /// A variant with data needs the object form.
    fn data(&self) -> Result<(), Error> {
        if self.with_data {
            Ok(())
        } else {
            Err(self.reader.error("expected an object {\"Variant\": data} for an enum variant with data"))
        }
    }
}
