//! Date formats the providers use in their responses and messages, without a date crate:
//! RFC 3339 (ImageKit `createdAt` with milliseconds, Cloudinary `created_at` without) and
//! Cloudinary's "2015-06-10 13:26:16 +0000" in its stale-request message.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; a clock before 1970 reads as 0 (as `dropkey_core::unix_now`).
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `2026-11-10T12:00:00.123Z`, the shape of ImageKit's `createdAt`.
pub(crate) fn rfc3339_millis(millis: i64) -> String {
    let (secs, ms) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let (date, time) = split(secs);
    format!("{date}T{time}.{ms:03}Z")
}

/// `2026-11-10T12:00:00Z`, the shape of Cloudinary's `created_at` and of the ledger's `at`.
pub(crate) fn rfc3339(secs: i64) -> String {
    let (date, time) = split(secs);
    format!("{date}T{time}Z")
}

/// `2026-11-10 12:00:00 +0000`, as Cloudinary writes times in its error messages.
pub(crate) fn cloudinary_time(secs: i64) -> String {
    let (date, time) = split(secs);
    format!("{date} {time} +0000")
}

fn split(secs: i64) -> (String, String) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day count since
/// 1970-01-01, exact for every `i64` day count a timestamp in seconds can produce.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_714_035_985), "2024-04-25T09:06:25Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            rfc3339_millis(1_714_035_985_007),
            "2024-04-25T09:06:25.007Z"
        );
        assert_eq!(cloudinary_time(1_433_942_776), "2015-06-10 13:26:16 +0000");
    }
}
