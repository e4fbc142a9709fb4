//! Static public keys for managed-key (non-keyless) signing.

use sigstore_verify::crypto::KeyAlgorithm;
use sigstore_verify::types::DerPublicKey;
use thiserror::Error;

use crate::limits::Limits;
use crate::reference::Digest;

/// A public key a policy trusts directly: ECDSA P-256/P-384, Ed25519 or RSA.
///
/// Parsed from PEM: `PUBLIC KEY` (SubjectPublicKeyInfo, what cosign and openssl write) or
/// `RSA PUBLIC KEY` (PKCS#1, re-wrapped as SubjectPublicKeyInfo).
#[derive(Debug, Clone)]
pub struct StaticKey {
    spki: DerPublicKey,
    algorithm: KeyAlgorithm,
    content_hash: Digest,
}

/// Why a public key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Occurs when the key file is larger than [`Limits::max_key_bytes`].
    #[error("public key is {found} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
        /// The size found.
        found: u64,
    },
    /// Occurs when the input is not PEM or its base64 is broken.
    #[error("public key is not valid PEM: {0}")]
    NotPem(String),
    /// Occurs when the PEM block is not a public key.
    #[error("PEM block is {0:?}, expected PUBLIC KEY or RSA PUBLIC KEY")]
    WrongBlock(String),
    /// Occurs when the key's algorithm or encoding is not supported.
    #[error("public key is not a supported ECDSA P-256/P-384, Ed25519 or RSA key: {0}")]
    Unsupported(String),
}

impl StaticKey {
    /// Parses a PEM public key.
    ///
    /// # Errors
    /// See [`KeyError`]; every variant names what was found.
    pub fn from_pem(pem_bytes: &[u8], limits: &Limits) -> Result<Self, KeyError> {
        let found = u64::try_from(pem_bytes.len()).unwrap_or(u64::MAX);
        if found > limits.max_key_bytes {
            return Err(KeyError::TooLarge {
                max: limits.max_key_bytes,
                found,
            });
        }
        let block = pem::parse(pem_bytes).map_err(|e| KeyError::NotPem(e.to_string()))?;
        let spki = match block.tag() {
            "PUBLIC KEY" => block.contents().to_vec(),
            "RSA PUBLIC KEY" => rsa_pkcs1_to_spki(block.contents()),
            other => return Err(KeyError::WrongBlock(other.to_owned())),
        };
        Self::from_spki_der(&spki)
    }

    /// A key from DER SubjectPublicKeyInfo bytes.
    ///
    /// # Errors
    /// [`KeyError::Unsupported`] when the SPKI is malformed or of an unsupported algorithm.
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, KeyError> {
        let key = DerPublicKey::new(spki.to_vec());
        let algorithm =
            KeyAlgorithm::from_spki(&key).map_err(|e| KeyError::Unsupported(e.to_string()))?;
        match algorithm {
            KeyAlgorithm::EcdsaP256
            | KeyAlgorithm::EcdsaP384
            | KeyAlgorithm::Ed25519
            | KeyAlgorithm::Rsa => {}
            other => return Err(KeyError::Unsupported(format!("{other:?}"))),
        }
        Ok(Self {
            content_hash: Digest::sha256_of(spki),
            spki: key,
            algorithm,
        })
    }

    /// The key as DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> &DerPublicKey {
        &self.spki
    }

    /// The key's algorithm name (`ecdsa-p256`, `ecdsa-p384`, `ed25519`, `rsa`).
    pub fn algorithm_name(&self) -> &'static str {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Rsa => "rsa",
            _ => "other",
        }
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo: the key's identity in verdicts.
    pub fn content_hash(&self) -> &Digest {
        &self.content_hash
    }
}

/// Wraps a PKCS#1 `RSAPublicKey` in a SubjectPublicKeyInfo with the rsaEncryption algorithm.
fn rsa_pkcs1_to_spki(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
    const ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x00];
    bit_string.extend_from_slice(pkcs1);
    let mut body = ALGORITHM.to_vec();
    body.extend(der_tlv(0x03, &bit_string));
    der_tlv(0x30, &body)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The managed-key conformance case's key (ECDSA P-256).
    const P256: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwr
kBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==
-----END PUBLIC KEY-----
";
    // openssl genpkey -algorithm ed25519 | openssl pkey -pubout
    const ED25519: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PUBLIC KEY-----
";

    #[test]
    fn parses_p256_and_ed25519() {
        let k = StaticKey::from_pem(P256.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(k.algorithm_name(), "ecdsa-p256");
        let k = StaticKey::from_pem(ED25519.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(k.algorithm_name(), "ed25519");
    }

    #[test]
    fn rejects_certificates_garbage_and_oversize() {
        let cert = P256.replace("PUBLIC KEY", "CERTIFICATE");
        assert_eq!(
            StaticKey::from_pem(cert.as_bytes(), &Limits::default()).unwrap_err(),
            KeyError::WrongBlock("CERTIFICATE".into())
        );
        assert!(matches!(
            StaticKey::from_pem(b"not pem", &Limits::default()),
            Err(KeyError::NotPem(_))
        ));
        let truncated = P256.replace(
            "kBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==\n",
            "",
        );
        assert!(StaticKey::from_pem(truncated.as_bytes(), &Limits::default()).is_err());
        let limits = Limits {
            max_key_bytes: 16,
            ..Limits::default()
        };
        assert!(matches!(
            StaticKey::from_pem(P256.as_bytes(), &limits),
            Err(KeyError::TooLarge { max: 16, .. })
        ));
    }

    #[test]
    fn der_lengths_use_long_form_past_127_bytes() {
        assert_eq!(der_tlv(0x04, &[0; 3]), vec![0x04, 3, 0, 0, 0]);
        let long = der_tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
