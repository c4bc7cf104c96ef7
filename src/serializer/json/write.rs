//! A serde serializer whose output is CPython's `json.dumps(value)` with its
//! defaults: `", "` and `": "` separators, `ensure_ascii`, `allow_nan`, floats as
//! `repr`, keys as Python converts them. Serde's data model maps to JSON as
//! serde_json maps it (unit variants as strings, other variants as one-key objects).

use serde::ser::{self, Impossible, Serialize};

use super::Error;
use super::float::write_python_float;

/// serde_json's names for its arbitrary-precision number and raw value (present
/// when some crate in the build enables those serde_json features).
const SERDE_JSON_NUMBER: &str = "$serde_json::private::Number";
const SERDE_JSON_RAW_VALUE: &str = "$serde_json::private::RawValue";

/// Methods that refuse their value with `$error`.
macro_rules! refuse {
    ($error:expr; $($method:ident($($arg:ty),*) -> $ok:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ok, Error> {
            Err($error)
        }
    )*};
}

pub(super) struct Writer<'a> {
    pub(super) out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn string(&mut self, text: &str) {
        write_string(self.out, text);
    }
}

/// Bytes written as they are inside a string: printable ASCII but `"` and `\`.
const PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut byte = b' ';
    while byte <= b'~' {
        plain[byte as usize] = byte != b'"' && byte != b'\\';
        byte += 1;
    }
    plain
};

/// Appends `text` as a JSON string with `ensure_ascii`: `\"`, `\\`, `\n`, `\r`,
/// `\t`, `\b`, `\f`, other control characters, DEL and everything beyond ASCII as
/// `\u00XX` (lowercase hex), characters beyond the BMP as a surrogate pair.
pub(super) fn write_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (mut start, mut at) = (0, 0);
    while at < bytes.len() {
        let byte = bytes[at];
        if PLAIN[usize::from(byte)] {
            at += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..at]);
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => b"",
        };
        if escape.is_empty() {
            let ch = text[at..].chars().next().unwrap_or('\u{fffd}');
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                out.extend_from_slice(b"\\u");
                out.extend((0..4).rev().map(|shift| HEX[usize::from((*unit >> (shift * 4)) & 0xf)]));
            }
            at += ch.len_utf8();
        } else {
            out.extend_from_slice(escape);
            at += 1;
        }
        start = at;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Decimal integers without going through `fmt` (nor 128-bit division when the
/// value fits 64 bits).
mod itoa_like {
    pub(crate) trait Integer {
        fn write(self, out: &mut Vec<u8>);
    }

    fn unsigned(mut n: u64, out: &mut Vec<u8>) {
        let mut buf = [0u8; 20];
        let mut at = buf.len();
        loop {
            at -= 1;
            buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&buf[at..]);
    }

    fn unsigned_wide(n: u128, out: &mut Vec<u8>) {
        const TEN_TO_19: u128 = 10_000_000_000_000_000_000;
        match u64::try_from(n) {
            Ok(n) => unsigned(n, out),
            Err(_) => {
                // The high digits, then the low 19 with their leading zeros.
                unsigned_wide(n / TEN_TO_19, out);
                let low = (n % TEN_TO_19) as u64;
                let mut digits = Vec::with_capacity(19);
                unsigned(low, &mut digits);
                out.extend(std::iter::repeat_n(b'0', 19 - digits.len()));
                out.extend_from_slice(&digits);
            }
        }
    }

    macro_rules! integers {
        (signed: $($s:ty),*; unsigned: $($u:ty),*) => {
            $(impl Integer for $s {
                fn write(self, out: &mut Vec<u8>) {
                    if self < 0 {
                        out.push(b'-');
                    }
                    unsigned(i64::from(self).unsigned_abs(), out);
                }
            })*
            $(impl Integer for $u {
                fn write(self, out: &mut Vec<u8>) {
                    unsigned(u64::from(self), out);
                }
            })*
        };
    }
    integers!(signed: i8, i16, i32, i64; unsigned: u8, u16, u32, u64);

    impl Integer for i128 {
        fn write(self, out: &mut Vec<u8>) {
            if self < 0 {
                out.push(b'-');
            }
            unsigned_wide(self.unsigned_abs(), out);
        }
    }

    impl Integer for u128 {
        fn write(self, out: &mut Vec<u8>) {
            unsigned_wide(self, out);
        }
    }
}

macro_rules! integer_values {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<(), Error> {
            itoa_like::Integer::write(v, self.out);
            Ok(())
        }
    )*};
}

impl<'a, 'b> ser::Serializer for &'a mut Writer<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, 'b>;
    type SerializeTuple = Compound<'a, 'b>;
    type SerializeTupleStruct = Compound<'a, 'b>;
    type SerializeTupleVariant = Compound<'a, 'b>;
    type SerializeMap = Compound<'a, 'b>;
    type SerializeStruct = Compound<'a, 'b>;
    type SerializeStructVariant = Compound<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    integer_values!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        // Python has no f32: it would print the double the value widens to.
        write_python_float(self.out, f64::from(v));
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        write_python_float(self.out, v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        // As serde_json: an array of numbers (Python's json has no bytes).
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for byte in v {
            seq.serialize_element(byte)?;
        }
        seq.end()
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        self.string(variant);
        self.out.extend_from_slice(b": ");
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'b>, Error> {
        self.out.push(b'[');
        Ok(Compound { writer: self, first: true, close: b"]", kind: Kind::Plain })
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'b>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a, 'b>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, Error> {
        self.out.push(b'{');
        self.string(variant);
        self.out.extend_from_slice(b": [");
        Ok(Compound { writer: self, first: true, close: b"]}", kind: Kind::Plain })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, 'b>, Error> {
        self.out.push(b'{');
        Ok(Compound { writer: self, first: true, close: b"}", kind: Kind::Plain })
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'a, 'b>, Error> {
        match name {
            SERDE_JSON_NUMBER => Ok(Compound { writer: self, first: true, close: b"", kind: Kind::Number }),
            SERDE_JSON_RAW_VALUE => Ok(Compound { writer: self, first: true, close: b"", kind: Kind::Raw }),
            _ => self.serialize_map(Some(len)),
        }
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, Error> {
        self.out.push(b'{');
        self.string(variant);
        self.out.extend_from_slice(b": {");
        Ok(Compound { writer: self, first: true, close: b"}}", kind: Kind::Plain })
    }
}

/// What a struct stands for: a JSON object, or one of serde_json's private
/// wrappers whose one field holds JSON text.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Plain,
    Number,
    Raw,
}

pub(super) struct Compound<'a, 'b> {
    writer: &'a mut Writer<'b>,
    first: bool,
    close: &'static [u8],
    kind: Kind,
}

impl Compound<'_, '_> {
    fn separator(&mut self) {
        if !self.first {
            self.writer.out.extend_from_slice(b", ");
        }
        self.first = false;
    }

    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.separator();
        value.serialize(&mut *self.writer)
    }

    fn entry<T: ?Sized + Serialize>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        if self.kind != Kind::Plain {
            let text = value.serialize(TextField)?;
            write_json_text(self.writer.out, &text, self.kind);
            return Ok(());
        }
        self.separator();
        self.writer.string(key);
        self.writer.out.extend_from_slice(b": ");
        value.serialize(&mut *self.writer)
    }

    fn close(self) -> Result<(), Error> {
        self.writer.out.extend_from_slice(self.close);
        Ok(())
    }
}

/// serde_json's arbitrary-precision number (its text) or raw value, as Python
/// would write the same value.
fn write_json_text(out: &mut Vec<u8>, text: &str, kind: Kind) {
    let integer = text.strip_prefix('-').unwrap_or(text).bytes().all(|b| b.is_ascii_digit());
    match text.parse::<f64>() {
        Ok(float) if kind == Kind::Number && !integer => write_python_float(out, float),
        _ => out.extend_from_slice(text.as_bytes()),
    }
}

/// The sequence-like compounds: each element after a separator.
macro_rules! sequences {
    ($($compound:ident :: $method:ident),*) => {$(
        impl ser::$compound for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

sequences!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        self.separator();
        key.serialize(KeyWriter { out: self.writer.out })?;
        self.writer.out.extend_from_slice(b": ");
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.writer)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// The struct-like compounds: each field as an object entry.
macro_rules! structs {
    ($($compound:ident),*) => {$(
        impl ser::$compound for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
                self.entry(key, value)
            }

            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

structs!(SerializeStruct, SerializeStructVariant);

/// Writes a map key as `json.dumps` converts one: strings as they are; integers,
/// floats (`"NaN"`, `"1e+16"`), booleans (`"true"`) and None (`"null"`) as the text
/// Python writes for them; anything else refused, as Python refuses it.
struct KeyWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl KeyWriter<'_> {
    fn quoted(self, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
        self.out.push(b'"');
        write(self.out);
        self.out.push(b'"');
        Ok(())
    }
}

fn key_refused(what: &str) -> Error {
    Error::new(format!(
        "a JSON object key must be a string, number, boolean or None (Python's json.dumps refuses \
         the same), not {what}"
    ))
}

macro_rules! integer_keys {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<(), Error> {
            self.quoted(|out| itoa_like::Integer::write(v, out))
        }
    )*};
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    integer_keys!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.quoted(|out| out.extend_from_slice(if v { b"true" } else { b"false" }))
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.quoted(|out| write_python_float(out, v))
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_string(self.out, v);
        Ok(())
    }

    refuse! { key_refused("bytes");
        serialize_bytes(&[u8]) -> ();
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.quoted(|out| out.extend_from_slice(b"null"))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_refused("an enum variant with data"))
    }

    refuse! { key_refused("a sequence");
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
    }
    refuse! { key_refused("a tuple");
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
    }
    refuse! { key_refused("a map or struct");
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
    }
    refuse! { key_refused("an enum variant with data");
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

/// Takes the string field of serde_json's private number and raw-value structs.
struct TextField;

const NOT_TEXT: &str = "serde_json's private number or raw value did not hold text";

impl ser::Serializer for TextField {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_owned())
    }

    refuse! { Error::new(NOT_TEXT);
        serialize_bool(bool) -> String;
        serialize_i8(i8) -> String;
        serialize_i16(i16) -> String;
        serialize_i32(i32) -> String;
        serialize_i64(i64) -> String;
        serialize_u8(u8) -> String;
        serialize_u16(u16) -> String;
        serialize_u32(u32) -> String;
        serialize_u64(u64) -> String;
        serialize_f32(f32) -> String;
        serialize_f64(f64) -> String;
        serialize_char(char) -> String;
        serialize_bytes(&[u8]) -> String;
        serialize_none() -> String;
        serialize_unit() -> String;
        serialize_unit_struct(&'static str) -> String;
        serialize_unit_variant(&'static str, u32, &'static str) -> String;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _value: &T) -> Result<String, Error> {
        Err(Error::new(NOT_TEXT))
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, _value: &T) -> Result<String, Error> {
        Err(Error::new(NOT_TEXT))
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(Error::new(NOT_TEXT))
    }
}
