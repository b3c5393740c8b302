//! Points in time as milliseconds since the Unix epoch, UTC. Formatting for people happens at the edges.

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn unix_millis(self) -> i64 {
        self.0
    }

    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1000)))
    }
}

impl Timestamp {
    /// RFC 3339 in UTC with millisecond precision: `2026-11-27T14:33:20.123Z`.
    ///
    /// Written out (days-to-civil conversion after Howard Hinnant) rather than pulled from a date crate:
    /// the core stays dependency-free and this is the only calendar arithmetic it needs.
    pub fn to_rfc3339(self) -> String {
        let millis = self.0.rem_euclid(1000);
        let seconds = self.0.div_euclid(1000);
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            second_of_day / 3600,
            second_of_day % 3600 / 60,
            second_of_day % 60
        )
    }
}

impl Timestamp {
    /// Parses `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC only).
    pub fn parse_rfc3339(text: &str) -> Result<Self, crate::InvalidInput> {
        let invalid = || {
            crate::InvalidInput::new(
                "time",
                format!("must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.fff]Z in UTC (got {text:?})"),
            )
        };
        let number = |part: &str| -> Result<i64, crate::InvalidInput> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            part.parse().map_err(|_| invalid())
        };
        let (date, time) = match text.split_once('T') {
            Some((date, time)) => (date, Some(time.strip_suffix('Z').ok_or_else(invalid)?)),
            None => (text, None),
        };
        let mut date_parts = date.split('-');
        let (Some(year), Some(month), Some(day), None) = (
            date_parts.next(),
            date_parts.next(),
            date_parts.next(),
            date_parts.next(),
        ) else {
            return Err(invalid());
        };
        let (year, month, day) = (number(year)?, number(month)?, number(day)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(invalid());
        }
        let mut millis_of_day = 0;
        if let Some(time) = time {
            let (clock, fraction) = match time.split_once('.') {
                Some((clock, fraction)) => (clock, Some(fraction)),
                None => (time, None),
            };
            let mut clock_parts = clock.split(':');
            let (Some(hour), Some(minute), Some(second), None) = (
                clock_parts.next(),
                clock_parts.next(),
                clock_parts.next(),
                clock_parts.next(),
            ) else {
                return Err(invalid());
            };
            let (hour, minute, second) = (number(hour)?, number(minute)?, number(second)?);
            if hour > 23 || minute > 59 || second > 60 {
                return Err(invalid());
            }
            let millis = match fraction {
                Some(fraction) => {
                    let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
                    number(fraction)?;
                    number(&digits)?
                }
                None => 0,
            };
            millis_of_day = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
        }
        let days = days_from_civil(year, month, day);
        if civil_from_days(days) != (year, month as u32, day as u32) {
            return Err(invalid());
        }
        Ok(Self(days * 86_400_000 + millis_of_day))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Year, month and day of the proleptic Gregorian calendar for days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_in_utc() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_790_000_123, "2026-11-27T14:33:20.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ];
        for (millis, expected) in cases {
            assert_eq!(Timestamp::from_unix_millis(millis).to_rfc3339(), expected);
            assert_eq!(
                Timestamp::parse_rfc3339(expected).unwrap().unix_millis(),
                millis
            );
        }
    }

    #[test]
    fn parses_dates_and_rejects_nonsense() {
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27").unwrap().to_rfc3339(),
            "2026-11-27T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27T10:11:12.5Z")
                .unwrap()
                .to_rfc3339(),
            "2026-11-27T10:11:12.500Z"
        );
        for bad in [
            "",
            "2026-02-30",
            "2026-13-01",
            "2026-11-27T10:11:12",
            "2026-11-27T25:00:00Z",
            "yesterday",
            "2026-1-x",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
