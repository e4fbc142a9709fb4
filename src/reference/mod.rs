//! Digests and image references (and, from the policy issue on, the GitOps reference rules).
//!
//! Parse, don't validate: a [`Digest`] is checked once at construction (algorithm known, hex of
//! the right length, lower case) and trusted everywhere after.

mod glob;
mod image;
mod rules;

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use thiserror::Error;

pub use glob::Glob;
pub use image::{DOCKER_HUB, ImageRef, MAX_REFERENCE_LEN, ReferenceError};
pub use rules::{DEFAULT_DENIED_TAGS, ReferenceRules, ReferenceViolation};

/// A content digest such as `sha256:9f86d0…`: a known algorithm and its lower-case hex value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

/// Digest algorithms custody accepts in references and artifact arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// SHA-256 (32 bytes, 64 hex characters).
    Sha256,
    /// SHA-384 (48 bytes, 96 hex characters).
    Sha384,
    /// SHA-512 (64 bytes, 128 hex characters).
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's name as written before the colon.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Length of the digest value in bytes.
    pub fn byte_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// Why a string is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DigestError {
    /// Occurs when the string has no `algorithm:` prefix.
    #[error("digest {found:?} has no algorithm prefix: expected the form sha256:<64 hex digits>")]
    MissingAlgorithm {
        /// The input (truncated to 80 characters).
        found: String,
    },
    /// Occurs when the algorithm is not sha256, sha384 or sha512.
    #[error("digest algorithm {found:?} is not supported: expected sha256, sha384 or sha512")]
    UnknownAlgorithm {
        /// The algorithm found.
        found: String,
    },
    /// Occurs when the value is not lower-case hex of the algorithm's length.
    #[error("{algorithm} digest must be {expected} lower-case hex digits, found {found:?}")]
    BadValue {
        /// The algorithm.
        algorithm: &'static str,
        /// Expected number of hex digits.
        expected: usize,
        /// The value found (truncated to 140 characters).
        found: String,
    },
}

fn truncated(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl Digest {
    /// A digest from an algorithm and raw bytes.
    ///
    /// # Errors
    /// [`DigestError::BadValue`] when `bytes` is not the algorithm's length.
    pub fn from_bytes(algorithm: DigestAlgorithm, bytes: &[u8]) -> Result<Self, DigestError> {
        if bytes.len() != algorithm.byte_len() {
            return Err(DigestError::BadValue {
                algorithm: algorithm.name(),
                expected: algorithm.byte_len() * 2,
                found: hex::encode(bytes),
            });
        }
        Ok(Self {
            algorithm,
            hex: hex::encode(bytes),
        })
    }

    /// The SHA-256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Self {
        Self {
            algorithm: DigestAlgorithm::Sha256,
            hex: sigstore_verify::crypto::sha256(data).to_hex(),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The lower-case hex value, without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The raw digest bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Invariant: `hex` was validated as lower-case hex at construction.
        hex::decode(&self.hex).unwrap_or_default()
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, value)) = s.split_once(':') else {
            return Err(DigestError::MissingAlgorithm {
                found: truncated(s, 80),
            });
        };
        let algorithm = match algorithm {
            "sha256" => DigestAlgorithm::Sha256,
            "sha384" => DigestAlgorithm::Sha384,
            "sha512" => DigestAlgorithm::Sha512,
            other => {
                return Err(DigestError::UnknownAlgorithm {
                    found: truncated(other, 40),
                });
            }
        };
        let expected = algorithm.byte_len() * 2;
        let well_formed = value.len() == expected
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(DigestError::BadValue {
                algorithm: algorithm.name(),
                expected,
                found: truncated(value, 140),
            });
        }
        Ok(Self {
            algorithm,
            hex: value.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

    #[test]
    fn parses_sha256() {
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        assert_eq!(d.algorithm(), DigestAlgorithm::Sha256);
        assert_eq!(d.hex(), HEX);
        assert_eq!(d.to_string(), format!("sha256:{HEX}"));
        assert_eq!(d.to_bytes().len(), 32);
    }

    #[test]
    fn rejects_upper_case_short_long_and_unknown() {
        let upper = format!("sha256:{}", HEX.to_uppercase());
        assert!(matches!(
            upper.parse::<Digest>(),
            Err(DigestError::BadValue { .. })
        ));
        let short = format!("sha256:{}", &HEX[1..]);
        assert!(matches!(
            short.parse::<Digest>(),
            Err(DigestError::BadValue { expected: 64, .. })
        ));
        let long = format!("sha256:{HEX}0");
        assert!(matches!(
            long.parse::<Digest>(),
            Err(DigestError::BadValue { .. })
        ));
        assert!(matches!(
            format!("md5:{HEX}").parse::<Digest>(),
            Err(DigestError::UnknownAlgorithm { .. })
        ));
        assert!(matches!(
            HEX.parse::<Digest>(),
            Err(DigestError::MissingAlgorithm { .. })
        ));
    }

    #[test]
    fn sha256_of_matches_known_vector() {
        // sha256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            Digest::sha256_of(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
