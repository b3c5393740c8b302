//! Content digests: the identity of an artifact (`sha256:<64 lowercase hex>`).

use crate::InvalidInput;
use std::fmt;

/// A SHA-256 content digest. Parsing accepts only `sha256:` followed by 64 hex digits, so a value of this
/// type can be used safely to build a storage path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    pub const ALGORITHM_PREFIX: &'static str = "sha256:";

    pub fn from_sha256_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let rule = "must be `sha256:` followed by 64 lowercase hex digits";
        let hex_part = text
            .strip_prefix(Self::ALGORITHM_PREFIX)
            .ok_or_else(|| InvalidInput::new("digest", rule))?;
        if hex_part.len() != 64 {
            return Err(InvalidInput::new("digest", rule));
        }
        let mut bytes = [0u8; 32];
        for (index, pair) in hex_part.as_bytes().chunks(2).enumerate() {
            let high = hex_value(pair[0]).ok_or_else(|| InvalidInput::new("digest", rule))?;
            let low = hex_value(pair[1]).ok_or_else(|| InvalidInput::new("digest", rule))?;
            bytes[index] = high << 4 | low;
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits without the algorithm prefix.
    pub fn hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(HEX_DIGITS[usize::from(byte >> 4)]);
            out.push(HEX_DIGITS[usize::from(byte & 0xf)]);
        }
        out
    }
}

const HEX_DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
];

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::ALGORITHM_PREFIX, self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_valid_digest() {
        let text = format!("sha256:{}", "ab".repeat(32));
        let digest = Digest::parse(&text).unwrap();
        assert_eq!(digest.to_string(), text);
        assert_eq!(digest.as_bytes()[0], 0xab);
    }

    #[test]
    fn rejects_malformed_digests() {
        for bad in [
            "",
            "sha256:",
            "md5:00",
            &format!("sha256:{}", "AB".repeat(32)),
            &format!("sha256:{}", "a".repeat(63)),
            &format!("sha256:{}", "a".repeat(65)),
            &format!("sha256:../../{}", "a".repeat(58)),
            &format!("sha512:{}", "a".repeat(64)),
        ] {
            let error = Digest::parse(bad).unwrap_err();
            assert_eq!(error.field, "digest", "{bad}");
        }
    }
}
