//! [`Numeric`]: a signed 64-bit integer as decimal ASCII, read as CPython's `int()`
//! reads bytes.

use super::Serializer;

/// A signed 64-bit integer stored as decimal ASCII (Python's
/// `redisext.serializer.Numeric`, which applies `int()` to the stored bytes).
///
/// Decoding accepts exactly what CPython's `int(b"…")` accepts: ASCII whitespace
/// around (space, `\t`, `\n`, `\v`, `\f`, `\r`; no other byte, so not a UTF-8
/// no-break space), one optional sign, ASCII digits with single underscores between
/// them (`1_000`), leading zeros. Python's ints are unbounded: a value beyond the
/// `i64` range is a decode error saying so.
///
/// ```
/// use redisext::serializer::{Numeric, Serializer};
/// assert_eq!(Numeric::decode(b" +1_000\n"), Ok(1000));
/// assert!(Numeric::decode(b"+-5").is_err()); // int(b"+-5") is a ValueError too
/// assert_eq!(Numeric::encode(&-7).unwrap(), b"-7");
/// ```
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

/// Parses a decimal `i64` as CPython's `int()` parses bytes in base 10.
pub(crate) fn parse_decimal(bytes: &[u8]) -> Result<i64, String> {
    // CPython's Py_ISSPACE: the ASCII whitespace of C's isspace().
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let start = bytes.iter().position(|b| !is_space(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_space(b)).map_or(start, |last| last + 1);
    let text = &bytes[start..end];
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    // A digit first and last, and every underscore between two digits.
    let well_formed = digits.first().is_some_and(u8::is_ascii_digit)
        && digits.last().is_some_and(u8::is_ascii_digit)
        && digits.windows(2).all(|pair| pair != b"__")
        && digits.iter().all(|b| b.is_ascii_digit() || *b == b'_');
    if !well_formed {
        return Err(format!(
            "not a decimal integer as Python's int() reads one (an optional sign, digits, single \
             underscores between digits, ASCII whitespace around): {}",
            String::from_utf8_lossy(bytes).escape_debug()
        ));
    }
    // Accumulated negatively, so that i64::MIN fits.
    let mut value: i64 = 0;
    for digit in digits.iter().filter(|b| **b != b'_') {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_sub(i64::from(digit - b'0')))
            .ok_or_else(|| out_of_range(text))?;
    }
    if negative { Ok(value) } else { value.checked_neg().ok_or_else(|| out_of_range(text)) }
}

fn out_of_range(text: &[u8]) -> String {
    format!(
        "the integer {} is out of the 64-bit range (Python's ints are unbounded; Numeric holds an i64)",
        String::from_utf8_lossy(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_accepts_what_python_int_accepts() {
        assert_eq!(Numeric::decode(b"42"), Ok(42));
        assert_eq!(Numeric::decode(b" -7 \n"), Ok(-7));
        assert_eq!(Numeric::decode(b"\x0b+1_000\x0c"), Ok(1000));
        assert_eq!(Numeric::decode(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(Numeric::decode(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(Numeric::decode(b"007"), Ok(7));
        for refused in [&b""[..], b" ", b"1.5", b"1__0", b"_1", b"1_", b"+-5", b"- 5", b"\xc2\xa05", b"\x1c5", b"5\x00"]
        {
            assert!(Numeric::decode(refused).is_err(), "{refused:?}");
        }
        let error = Numeric::decode(b"9223372036854775808").unwrap_err();
        assert!(error.contains("out of the 64-bit range"), "{error}");
    }
}
