//! The one timestamp format of the API: RFC 3339, UTC, `Z`, microsecond precision.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// Formats a timestamp as the API sends it, e.g. `2026-11-20T23:00:00.123456Z`.
pub fn format_timestamp(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `serialize_with` for timestamps, so no framework's or chrono's default format leaks out.
pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(ts))
}

/// `serialize_with` for optional timestamps (`null` when unset).
pub fn serialize_opt<S: Serializer>(ts: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => serialize(ts, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn always_microseconds_and_z() {
        let ts = Utc.with_ymd_and_hms(2026, 11, 20, 23, 0, 0).single().expect("valid date");
        assert_eq!(format_timestamp(&ts), "2026-11-20T23:00:00.000000Z");
        let ts = ts + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(format_timestamp(&ts), "2026-11-20T23:00:00.123456Z");
    }
}
