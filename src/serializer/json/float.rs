//! Floats written as CPython's `float.__repr__` writes them (and so `json.dumps`).

use std::fmt::Write as _;

/// The shortest decimal digits of a finite, non-negative double: the value is
/// `0.d₁d₂…dₙ × 10^(exponent + 1)`, i.e. `d₁.d₂…dₙ × 10^exponent`.
struct Digits {
    digits: [u8; 17],
    len: usize,
    exponent: i32,
}

impl Digits {
    /// The shortest round-trip digits (Ryū's, as Rust's own `{:e}` would give),
    /// read back from its text (`1e16`, `0.001`, `123.456`, `5e-324`).
    fn shortest(value: f64) -> Digits {
        let mut buffer = ryu::Buffer::new();
        let text = buffer.format_finite(value).as_bytes();
        let e = text.iter().position(|b| *b == b'e').unwrap_or(text.len());
        let written_exponent: i32 =
            std::str::from_utf8(text.get(e + 1..).unwrap_or_default()).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
        let mantissa = &text[..e];
        let point = mantissa.iter().position(|b| *b == b'.').unwrap_or(mantissa.len());
        let mut digits = Digits { digits: [0; 17], len: 0, exponent: 0 };
        let mut leading_zeros = 0;
        for byte in mantissa.iter().filter(|b| b.is_ascii_digit()) {
            if digits.len == 0 && *byte == b'0' {
                leading_zeros += 1;
            } else if digits.len < digits.digits.len() {
                digits.digits[digits.len] = *byte;
                digits.len += 1;
            }
        }
        while digits.len > 1 && digits.digits[digits.len - 1] == b'0' {
            digits.len -= 1;
        }
        if digits.len == 0 {
            // Zero.
            digits.digits[0] = b'0';
            digits.len = 1;
            return digits;
        }
        digits.exponent = point as i32 + written_exponent - leading_zeros - 1;
        digits
    }

    /// The digits as an integer.
    fn as_integer(&self) -> u128 {
        self.digits[..self.len].iter().fold(0, |n, d| n * 10 + u128::from(d - b'0'))
    }

    /// Digits for the integer `n` of `len` digits standing where `self`'s were
    /// (`n` may have gained a digit by carrying: `999 + 1`).
    fn from_integer(mut n: u128, len: usize, exponent: i32) -> Digits {
        let mut exponent = exponent;
        let mut count = decimal_len(n);
        if count > len {
            exponent += 1;
        }
        while n.is_multiple_of(10) && count > 1 {
            n /= 10;
            count -= 1;
        }
        let mut digits = Digits { digits: [b'0'; 17], len: count.min(17), exponent };
        for slot in digits.digits[..digits.len].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        digits
    }

    /// Whether these digits read back as `value`.
    fn reads_as(&self, value: f64) -> bool {
        let mut text = StackText::default();
        let digits = std::str::from_utf8(&self.digits[..self.len]).unwrap_or("0");
        let _ = write!(text, "0.{digits}e{}", self.exponent + 1);
        std::str::from_utf8(&text.bytes[..text.len]).ok().and_then(|t| t.parse::<f64>().ok()) == Some(value)
    }
}

/// Python (David Gay's dtoa, mode 0) and Ryū both give the shortest digits that
/// read back as the double, the nearest such when there are several. When the
/// double lies exactly halfway between the two nearest, Python takes the one whose
/// last digit is even (`1059438285926254.25` → `…254.2`); Ryū may take the other.
fn round_half_to_even(value: f64, digits: Digits) -> Digits {
    // value = m · 2^q exactly, with m odd.
    let bits = value.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mut m, mut q) = if biased == 0 { (fraction, -1074) } else { (fraction | 1 << 52, biased - 1075) };
    if m == 0 {
        return digits;
    }
    q += m.trailing_zeros() as i32;
    m >>= m.trailing_zeros();
    // With q >= 0 the value is an integer and its shortest digits never tie. With
    // q < 0 its exact digits are m · 5^-q, ending in 5; a tie needs exactly one more
    // digit than the shortest (at most 18), so 5^-q < 10^18: -q <= 25.
    if !(-25..0).contains(&q) {
        return digits;
    }
    let exact = u128::from(m) * 5u128.pow(q.unsigned_abs());
    if decimal_len(exact) != digits.len + 1 {
        return digits;
    }
    let below = exact / 10;
    let even = if below.is_multiple_of(2) { below } else { below + 1 };
    let chosen = digits.as_integer();
    if chosen == even || (chosen != below && chosen != below + 1) {
        return digits;
    }
    // The even candidate is as near; it is Python's choice when it also reads back
    // (it may not, just above a power of two, where the doubles below are closer).
    let candidate = Digits::from_integer(even, digits.len, digits.exponent);
    if candidate.reads_as(value) { candidate } else { digits }
}

fn decimal_len(mut n: u128) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Appends `value` as Python's `repr(float)` writes it: `NaN`, `Infinity` and
/// `-Infinity` as `json.dumps` writes them; `1e+16`, `1e-05`, `100.0`, `-0.0`.
pub(crate) fn write_python_float(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    if value.is_sign_negative() {
        out.push(b'-');
    }
    let magnitude = value.abs();
    let Digits { digits, len, exponent } = round_half_to_even(magnitude, Digits::shortest(magnitude));
    let digits = &digits[..len];
    // Python's repr: scientific notation below 1e-4 and from 1e16 on.
    if !(-5 < exponent && exponent < 16) {
        out.push(digits[0]);
        if len > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.extend_from_slice(if exponent < 0 { b"e-" } else { b"e+" });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(magnitude.to_string().as_bytes());
        return;
    }
    let point = exponent + 1; // digits before the decimal point
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
        out.extend_from_slice(digits);
    } else if point as usize >= len {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', point as usize - len));
        out.extend_from_slice(b".0");
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        out.extend_from_slice(whole);
        out.push(b'.');
        out.extend_from_slice(fraction);
    }
}

/// `value` as Python's `repr(float)` writes it.
#[cfg(test)]
pub(crate) fn python_float_repr(value: f64) -> String {
    let mut out = Vec::new();
    write_python_float(&mut out, value);
    String::from_utf8(out).unwrap_or_default()
}

/// A fixed buffer to format a float into without allocating.
struct StackText {
    bytes: [u8; 40],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        StackText { bytes: [0; 40], len: 0 }
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::excessive_precision)] // the exact halfway values, written out
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
            // Ties: halfway between two shortest candidates, Python takes the even one...
            (1059438285926254.25, "1059438285926254.2"),
            // ...unless it does not read back (just above a power of two).
            (2f64.powi(-24), "5.960464477539063e-08"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float_repr(*value), *expected, "repr({value:?})");
        }
    }
}
