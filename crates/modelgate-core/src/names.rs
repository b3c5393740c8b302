//! Validated names: models, users, roles, tag keys and token names.

use crate::InvalidInput;
use std::fmt;

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// A model's unique name: 1–128 characters of lowercase letters, digits, `-`, `_` and `.`, starting
    /// with a letter or a digit.
    ModelName
);
string_newtype!(
    /// A user's login name: 1–64 characters of lowercase letters, digits, `-`, `_` and `.`, starting with a
    /// letter or a digit.
    Username
);
string_newtype!(
    /// A role a user holds (`admin`, `validator`, `compliance` …): 1–64 characters of lowercase letters,
    /// digits and `_`, starting with a letter.
    Role
);
string_newtype!(
    /// A tag key: 1–128 characters of letters, digits, `-`, `_`, `.`, `/` and `:`.
    TagKey
);
string_newtype!(
    /// A token's human name (`ci-pipeline`): 1–128 printable characters.
    TokenName
);

/// The common shape of model and user names: a lowercase slug that is safe in URLs and file names.
fn check_slug(
    field: &'static str,
    text: &str,
    max_len: usize,
    allowed_punctuation: &[char],
) -> Result<(), InvalidInput> {
    let punctuation: String = allowed_punctuation
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let rule = || {
        format!(
            "must be 1-{max_len} characters of lowercase letters, digits, {punctuation}, starting with a letter or digit (got {text:?})"
        )
    };
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return Err(InvalidInput::new(field, rule()));
    };
    if text.chars().count() > max_len || !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(InvalidInput::new(field, rule()));
    }
    let valid =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || allowed_punctuation.contains(&c);
    if !text.chars().all(valid) {
        return Err(InvalidInput::new(field, rule()));
    }
    Ok(())
}

impl ModelName {
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        check_slug("name", text, 128, &['-', '_', '.'])?;
        Ok(Self(text.to_owned()))
    }
}

impl Username {
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        check_slug("username", text, 64, &['-', '_', '.'])?;
        Ok(Self(text.to_owned()))
    }
}

impl Role {
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let starts_with_letter = text.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        if !starts_with_letter {
            return Err(InvalidInput::new(
                "role",
                format!("must start with a lowercase letter (got {text:?})"),
            ));
        }
        check_slug("role", text, 64, &['_'])?;
        Ok(Self(text.to_owned()))
    }

    pub fn admin() -> Self {
        Self(crate::ADMIN_ROLE.to_owned())
    }

    pub fn is_admin(&self) -> bool {
        self.0 == crate::ADMIN_ROLE
    }
}

impl TagKey {
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':');
        if text.is_empty() || text.len() > 128 || !text.chars().all(valid) {
            return Err(InvalidInput::new(
                "tag key",
                format!(
                    "must be 1-128 characters of letters, digits, `-`, `_`, `.`, `/`, `:` (got {text:?})"
                ),
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

impl TokenName {
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let trimmed = text.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > 128
            || trimmed.chars().any(char::is_control)
        {
            return Err(InvalidInput::new(
                "name",
                "a token name must be 1-128 printable characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_follow_the_documented_rule() {
        let accepted = [
            "a",
            "credit-default",
            "fraud_v2.onnx",
            "0model",
            &"x".repeat(128),
        ];
        for name in accepted {
            assert!(ModelName::parse(name).is_ok(), "{name} should be accepted");
        }
        let rejected = [
            "",
            "Credit",
            "-lead",
            ".hidden",
            "_x",
            "has space",
            "a/b",
            "../../etc/passwd",
            "é",
            &"x".repeat(129),
        ];
        for name in rejected {
            let error = ModelName::parse(name).unwrap_err();
            assert_eq!(error.field, "name");
            assert!(error.rule.contains("1-128"), "{}", error.rule);
        }
    }

    #[test]
    fn roles_start_with_a_letter() {
        assert!(Role::parse("risk_board").is_ok());
        assert!(Role::parse("1abc").is_err());
        assert!(Role::parse("risk-board").is_err());
        assert!(Role::admin().is_admin());
    }

    #[test]
    fn tag_keys_and_token_names() {
        assert!(TagKey::parse("team/owner:primary").is_ok());
        assert!(TagKey::parse("").is_err());
        assert!(TagKey::parse("a b").is_err());
        assert_eq!(TokenName::parse("  ci  ").unwrap().as_str(), "ci");
        assert!(TokenName::parse("\u{7}").is_err());
    }
}
