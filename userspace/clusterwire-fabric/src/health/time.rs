//! Go's `time.RFC3339Nano` text form of a timestamp, and the reference's latency text.
//!
//! Go marshals a `time.Time` to JSON with the layout `2006-01-02T15:04:05.999999999Z07:00`:
//! the `.999999999` element prints the nanoseconds with trailing zeros removed, and no dot at
//! all when they are zero; `Z07:00` prints `Z` for a zero UTC offset. Years outside 0..=9999 are
//! a marshalling error in Go. clusterwire always writes UTC.
//!
//! Parsing accepts what Go's RFC 3339 parser accepts (`T`/`t`, `Z`/`z`, `+hh:mm`/`-hh:mm`, a
//! fraction of 1 to 9 digits after `.` or `,`) and a fraction longer than 9 digits, truncated
//! to nanoseconds as Go does.

use std::fmt::Write as _;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// A timestamp that is not RFC 3339 text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {text:?}: {reason}")]
pub struct TimestampError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

const SECONDS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `ts` in UTC as Go's `time.RFC3339Nano` prints it, e.g. `2026-11-29T06:55:01.0453Z`.
///
/// Returns `None` for a year outside 0..=9999, which Go refuses to marshal.
pub fn format_rfc3339_nano(ts: Timestamp) -> Option<String> {
    let secs = ts.as_second();
    let nanos = ts.subsec_nanosecond();
    // jiff keeps the sub-second part with the sign of the seconds: normalize to a floor.
    let (secs, nanos) = if nanos < 0 {
        (secs - 1, nanos + 1_000_000_000)
    } else {
        (secs, nanos)
    };
    let days = secs.div_euclid(SECONDS_PER_DAY);
    let of_day = secs.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        let _ = write!(out, ".{}", digits.trim_end_matches('0'));
    }
    out.push('Z');
    Some(out)
}

/// Parses RFC 3339 text (see the module documentation for what is accepted).
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, TimestampError> {
    let fail = |reason| TimestampError {
        text: text.to_owned(),
        reason,
    };
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>, what| -> Result<i64, TimestampError> {
        let digits = b.get(range).ok_or_else(|| fail(what))?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(fail(what));
        }
        Ok(digits
            .iter()
            .fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, allowed: &[u8], what| match b.get(at) {
        Some(c) if allowed.contains(c) => Ok(()),
        _ => Err(fail(what)),
    };
    let year = num(0..4, "expected a 4-digit year")?;
    sep(4, b"-", "expected '-' after the year")?;
    let month = num(5..7, "expected a 2-digit month")?;
    sep(7, b"-", "expected '-' after the month")?;
    let day = num(8..10, "expected a 2-digit day")?;
    sep(10, b"Tt", "expected 'T' between date and time")?;
    let hour = num(11..13, "expected a 2-digit hour")?;
    sep(13, b":", "expected ':' after the hour")?;
    let minute = num(14..16, "expected 2-digit minutes")?;
    sep(16, b":", "expected ':' after the minutes")?;
    let second = num(17..19, "expected 2-digit seconds")?;
    if !(1..=12).contains(&month) {
        return Err(fail("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(fail("day out of range"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(fail("time of day out of range"));
    }
    let mut at = 19;
    let mut nanos: i64 = 0;
    if matches!(b.get(at), Some(b'.' | b',')) {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        let len = at - start;
        if len == 0 {
            return Err(fail("expected digits after the decimal separator"));
        }
        for _ in len..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() => {
            let hh = num(at + 1..at + 3, "expected a 2-digit offset hour")?;
            sep(at + 3, b":", "expected ':' in the offset")?;
            let mm = num(at + 4..at + 6, "expected 2-digit offset minutes")?;
            if hh > 23 || mm > 59 {
                return Err(fail("offset out of range"));
            }
            let offset = hh * 3600 + mm * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return Err(fail("expected 'Z' or a +hh:mm offset at the end")),
    };
    let secs =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second
            - offset;
    let nanos = i32::try_from(nanos).map_err(|_| fail("fraction out of range"))?;
    Timestamp::new(secs, nanos).map_err(|_| fail("out of the supported range"))
}

/// The reference's text for a latency in `Connection.status.latency.value`: `N/A` for zero,
/// whole milliseconds (`12ms`) when at least 1 ms, else whole microseconds (`850μs`, with the
/// Greek small letter mu U+03BC). Go's `Duration.Milliseconds()`/`Microseconds()` truncate
/// toward zero, so 1.999 ms prints `1ms` and a negative latency (clock step) prints
/// microseconds, as in the reference.
pub fn format_latency(latency: SignedDuration) -> String {
    let nanos = latency.as_nanos();
    if nanos == 0 {
        return "N/A".to_owned();
    }
    let millis = nanos / 1_000_000;
    if millis > 0 {
        format!("{millis}ms")
    } else {
        format!("{}\u{3bc}s", nanos / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64, nanos: i32) -> Timestamp {
        Timestamp::new(secs, nanos).unwrap()
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        // 2026-11-29T06:55:01Z is 1_795_935_301 s after the epoch.
        assert_eq!(
            format_rfc3339_nano(ts(1_795_935_301, 0)).as_deref(),
            Some("2026-11-29T06:55:01Z"),
            "no fraction, no dot when the nanoseconds are zero"
        );
        assert_eq!(
            format_rfc3339_nano(ts(1_795_935_301, 45_300_000)).as_deref(),
            Some("2026-11-29T06:55:01.0453Z"),
            "trailing zeros trimmed, leading zeros kept"
        );
        assert_eq!(
            format_rfc3339_nano(ts(1_795_935_301, 123_456_789)).as_deref(),
            Some("2026-11-29T06:55:01.123456789Z")
        );
        assert_eq!(
            format_rfc3339_nano(ts(1_795_935_301, 1)).as_deref(),
            Some("2026-11-29T06:55:01.000000001Z")
        );
        assert_eq!(
            format_rfc3339_nano(Timestamp::UNIX_EPOCH).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            format_rfc3339_nano(ts(-1, 500_000_000)).as_deref(),
            Some("1969-12-31T23:59:59.5Z")
        );
        assert_eq!(
            format_rfc3339_nano(ts(951_782_400, 0)).as_deref(),
            Some("2000-02-29T00:00:00Z"),
            "leap day"
        );
        assert_eq!(format_rfc3339_nano(ts(-62_167_219_201, 0)), None, "year -1");
    }

    #[test]
    fn parses_what_go_prints_and_round_trips() {
        for (text, secs, nanos) in [
            ("2026-11-29T06:55:01Z", 1_795_935_301, 0),
            ("2026-11-29T06:55:01.0453Z", 1_795_935_301, 45_300_000),
            ("2026-11-29T06:55:01.123456789Z", 1_795_935_301, 123_456_789),
        ] {
            let parsed = parse_rfc3339(text).unwrap();
            assert_eq!(parsed, ts(secs, nanos), "{text}");
            assert_eq!(format_rfc3339_nano(parsed).as_deref(), Some(text));
        }
    }

    #[test]
    fn parses_offsets_lowercase_commas_and_long_fractions() {
        let expected = ts(1_795_935_301, 500_000_000);
        for text in [
            "2026-11-29T07:55:01.5+01:00",
            "2026-11-29T01:25:01.5-05:30",
            "2026-11-29t06:55:01.5z",
            "2026-11-29T06:55:01,5Z",
            "2026-11-29T06:55:01.5000000009Z",
        ] {
            assert_eq!(parse_rfc3339(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_text_with_a_reason() {
        for (text, reason) in [
            ("", "expected a 4-digit year"),
            ("2026-11-29 06:55:01Z", "expected 'T' between date and time"),
            ("2026-02-29T00:00:00Z", "day out of range"),
            ("2026-11-29T24:00:00Z", "time of day out of range"),
            ("2026-11-29T06:55:60Z", "time of day out of range"),
            (
                "2026-11-29T06:55:01.Z",
                "expected digits after the decimal separator",
            ),
            (
                "2026-11-29T06:55:01",
                "expected 'Z' or a +hh:mm offset at the end",
            ),
            (
                "2026-11-29T06:55:01Zjunk",
                "expected 'Z' or a +hh:mm offset at the end",
            ),
            (
                "2026-11-29T06:55:01+0100",
                "expected 'Z' or a +hh:mm offset at the end",
            ),
            ("2026-13-29T06:55:01Z", "month out of range"),
        ] {
            let err = parse_rfc3339(text).unwrap_err();
            assert_eq!((err.text.as_str(), err.reason), (text, reason));
        }
    }

    #[test]
    fn latency_text_follows_the_reference_rule() {
        let cases = [
            (SignedDuration::ZERO, "N/A"),
            (SignedDuration::from_nanos(1), "0\u{3bc}s"),
            (SignedDuration::from_nanos(999), "0\u{3bc}s"),
            (SignedDuration::from_micros(850), "850\u{3bc}s"),
            (SignedDuration::from_nanos(999_999), "999\u{3bc}s"),
            (SignedDuration::from_millis(1), "1ms"),
            (SignedDuration::from_nanos(1_999_999), "1ms"),
            (SignedDuration::from_millis(12), "12ms"),
            (SignedDuration::from_secs(3), "3000ms"),
            (SignedDuration::from_millis(-5), "-5000\u{3bc}s"),
        ];
        for (latency, text) in cases {
            assert_eq!(format_latency(latency), text, "{latency:?}");
        }
        assert_eq!(
            "850\u{3bc}s".as_bytes(),
            b"850\xce\xbcs",
            "U+03BC, not U+00B5"
        );
    }
}
