//! A certificate's validity in words, relative to now: the same on every run.

use time::{Duration, OffsetDateTime};

fn plural(n: i64) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

fn unit(n: i64, what: &str) -> String {
    if n == 1 {
        format!("valid for 1 {what}")
    } else {
        format!("valid for {n} {what}s")
    }
}

/// Rounds to whole days so that the seconds a run takes never change the words.
pub(super) fn relative_validity(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> String {
    let round = |d: Duration| (d.as_seconds_f64() / 86_400.0).round() as i64;
    // Less than an hour left: in seconds, which a script asking for `not_after_secs` chose;
    // less than most of a day: in hours.
    let secs = (not_after - now).as_seconds_f64();
    if now >= not_before && secs > 0.0 && secs < 3_600.0 {
        return unit(secs.round() as i64, "second");
    }
    if now >= not_before && secs > 0.0 && secs < 23.5 * 3_600.0 {
        return unit((secs / 3_600.0).round() as i64, "hour");
    }
    if now < not_before {
        format!(
            "not valid for {} yet",
            plural(round(not_before - now).max(1))
        )
    } else if now >= not_after {
        format!("expired {} ago", plural(round(now - not_after).max(1)))
    } else {
        format!("valid for {}", plural(round(not_after - now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKDATE: Duration = Duration::minutes(5);

    fn days(n: i64) -> Duration {
        Duration::days(n)
    }

    #[test]
    fn validity_reads_in_days() {
        let now = OffsetDateTime::now_utc();
        let words =
            |b: i64, a: i64| relative_validity(now + days(b) - BACKDATE, now + days(a), now);
        assert_eq!(words(0, 365), "valid for 365 days");
        assert_eq!(words(-10, -1), "expired 1 day ago");
        assert_eq!(words(2, 30), "not valid for 2 days yet");
        let secs = |s: i64| relative_validity(now - BACKDATE, now + Duration::seconds(s), now);
        assert_eq!(secs(2), "valid for 2 seconds");
        assert_eq!(secs(7200), "valid for 2 hours");
        assert_eq!(secs(86_400), "valid for 1 day");
    }
}
