//! Limits on stored text: every free-text field that enters through the API is checked here, so that no
//! field can carry megabytes into the database and the audit log, and a refusal names the field and its
//! limit. Printed names (which appear on signatures) are also checked for invisible characters.

use crate::error::{ApiError, ErrorCode};
use serde_json::json;
use std::collections::BTreeMap;

/// Printed names, as they appear on signatures.
pub const PRINTED_NAME: usize = 200;
/// E-mail addresses (RFC 5321's path limit).
pub const EMAIL: usize = 254;
/// Short labels: the meaning of a signature, a tag value, a card revision's message.
pub const SHORT: usize = 1_000;
/// Prose: justifications, comments, reasons.
pub const PROSE: usize = 10_000;
/// Descriptions and intended uses of models and versions.
pub const DESCRIPTION: usize = 20_000;
/// A version's free-form lineage metadata, as JSON.
pub const METADATA: usize = 65_536;
/// A policy file (admins only).
pub const POLICY: usize = 262_144;
/// Tags on one model or version.
pub const MAX_TAGS: usize = 100;

/// Refuses `value` when it is longer than `max_chars` characters, naming the field and the limit.
pub fn check_length(field: &str, value: &str, max_chars: usize) -> Result<(), ApiError> {
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("{field}: must be at most {max_chars} characters (got {chars})"),
        )
        .with_details(json!({ "field": field, "max_chars": max_chars })));
    }
    Ok(())
}

/// [`check_length`] for an optional field.
pub fn check_optional_length(
    field: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Result<(), ApiError> {
    value.map_or(Ok(()), |value| check_length(field, value, max_chars))
}

/// Checks a tag map: at most [`MAX_TAGS`] entries, each value at most [`SHORT`] characters (keys are
/// checked by `TagKey`).
pub fn check_tags(field: &str, tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("{field}: at most {MAX_TAGS} tags (got {})", tags.len()),
        )
        .with_details(json!({ "field": field, "max_items": MAX_TAGS })));
    }
    for (key, value) in tags {
        check_length(&format!("{field}.{key}"), value, SHORT)?;
    }
    Ok(())
}

/// Characters that change how text around them is displayed without being seen: bidirectional controls
/// (which can make "Alice" render as another name) and zero-width characters.
fn is_invisible_formatting(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200F}'
            | '\u{061C}'
            | '\u{2060}'
            | '\u{FEFF}'
    )
}

/// A printed name, trimmed: 1-200 characters, none of them control, bidirectional or zero-width
/// characters (a signature must show the name as the signer sees it).
pub fn check_printed_name(printed_name: &str) -> Result<String, ApiError> {
    let trimmed = printed_name.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid(
            "printed_name",
            "printed_name: must be the user's full name, not empty",
        ));
    }
    check_length("printed_name", trimmed, PRINTED_NAME)?;
    if let Some(bad) = trimmed
        .chars()
        .find(|&c| c.is_control() || is_invisible_formatting(c))
    {
        return Err(ApiError::invalid(
            "printed_name",
            format!(
                "printed_name: must not contain control, bidirectional or zero-width characters \
                 (found U+{:04X}); type the name as it should appear on signatures",
                u32::from(bad)
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_counted_in_characters_and_name_the_field() {
        assert!(check_length("comment", &"é".repeat(10), 10).is_ok());
        let error = check_length("comment", &"é".repeat(11), 10).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidArgument);
        assert_eq!(
            error.message,
            "comment: must be at most 10 characters (got 11)"
        );
        assert_eq!(error.details.unwrap()["max_chars"], 10);
    }

    #[test]
    fn printed_names_refuse_invisible_characters() {
        assert_eq!(
            check_printed_name("  Ada Lovelace ").unwrap(),
            "Ada Lovelace"
        );
        assert!(check_printed_name("Zoë Ñúñez-Łukasz").is_ok());
        for bad in [
            "Ali\u{202E}ecila",
            "Bob\u{2066}x",
            "Eve\u{200B}",
            "\u{FEFF}Mallory",
            "Tab\tbed",
            "Line\nbreak",
            "Joiner\u{2060}",
            "",
            "   ",
        ] {
            let error = check_printed_name(bad).unwrap_err();
            assert_eq!(error.details.unwrap()["field"], "printed_name", "{bad:?}");
        }
        assert!(check_printed_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn tags_are_bounded_in_number_and_length() {
        let many: BTreeMap<String, String> = (0..101)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        assert!(check_tags("tags", &many).is_err());
        let long = BTreeMap::from([("team".to_owned(), "v".repeat(1_001))]);
        let error = check_tags("tags", &long).unwrap_err();
        assert!(error.message.starts_with("tags.team: must be at most 1000"));
    }
}
