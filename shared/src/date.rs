//! BBB's date formats: millisecond timestamps and Java's `Date.toString()` (`createDate`).

use time::macros::format_description;
use time::OffsetDateTime;

/// Milliseconds since the epoch as `Mon Jun 10 06:13:20 UTC 2024` (always UTC, as BBB servers
/// normally run). Out-of-range input gives an empty string rather than a panic.
pub fn java_date(epoch_ms: u64) -> String {
    let format = format_description!(
        "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] UTC [year]"
    );
    i128::from(epoch_ms)
        .checked_mul(1_000_000)
        .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> u64 {
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    u64::try_from(now).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_java() {
        assert_eq!(java_date(1_718_000_000_000), "Mon Jun 10 06:13:20 UTC 2024");
        assert_eq!(java_date(1_717_990_000_000), "Mon Jun 10 03:26:40 UTC 2024");
        assert_eq!(java_date(u64::MAX), "");
        assert!(now_ms() > 1_718_000_000_000);
    }
}
