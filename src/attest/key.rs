//! The signing key of `custody attest`: ECDSA P-256 from an unencrypted PKCS#8 PEM
//! (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
//!
//! Only P-256 with SHA-256 is offered: it is what cosign, securesystemslib
//! (`ecdsa-sha2-nistp256`) and the DSSE examples use, so any DSSE verifier can check custody's
//! summaries. SEC1 (`EC PRIVATE KEY`) and encrypted PKCS#8 files are refused with the command
//! that converts them: custody never asks for a passphrase.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

use super::AttestError;
use crate::limits::Limits;
use crate::reference::Digest;
use crate::trust::StaticKey;

/// An ECDSA P-256 private key and its public half.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    public: StaticKey,
}

impl std::fmt::Debug for SigningKey {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", self.public.content_hash())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) holding an ECDSA P-256 key.
    ///
    /// # Errors
    /// [`AttestError::Key`] naming what was found: a file over [`Limits::max_key_bytes`], not
    /// PEM, a SEC1 or encrypted key (with the `openssl` command that converts it), another
    /// algorithm or curve.
    pub fn from_pkcs8_pem(pem_bytes: &[u8], limits: &Limits) -> Result<Self, AttestError> {
        let bad = |detail: String| AttestError::Key { detail };
        let size = u64::try_from(pem_bytes.len()).unwrap_or(u64::MAX);
        if size > limits.max_key_bytes {
            return Err(bad(format!(
                "private key file is {size} bytes, more than the limit of {} (max_key_bytes)",
                limits.max_key_bytes
            )));
        }
        let block = pem::parse(pem_bytes).map_err(|e| bad(format!("not PEM: {e}")))?;
        match block.tag() {
            "PRIVATE KEY" => {}
            "EC PRIVATE KEY" => {
                return Err(bad("the key is SEC1 (BEGIN EC PRIVATE KEY); custody reads PKCS#8: convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8`".into()));
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(bad("the key is encrypted; custody reads unencrypted PKCS#8 (keep the file readable only by the signer): `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8`".into()));
            }
            other => {
                return Err(bad(format!(
                    "PEM block is {other:?}, expected PRIVATE KEY (PKCS#8)"
                )));
            }
        }
        Self::from_pkcs8_der(block.contents())
    }

    /// A key from PKCS#8 DER.
    ///
    /// # Errors
    /// [`AttestError::Key`] when it is not an ECDSA P-256 PKCS#8 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, AttestError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der).map_err(|e| {
            AttestError::Key {
                detail: format!("not an ECDSA P-256 PKCS#8 private key ({e})"),
            }
        })?;
        let spki = pair.public_key().as_der().map_err(|_| AttestError::Key {
            detail: "cannot encode the public key".into(),
        })?;
        let public = StaticKey::from_spki_der(spki.as_ref()).map_err(|e| AttestError::Key {
            detail: format!("public key: {e}"),
        })?;
        Ok(Self { pair, public })
    }

    /// The public key (what a policy's `verificationSummaries.keys` must list).
    pub fn public_key(&self) -> &StaticKey {
        &self.public
    }

    /// The key's identity: SHA-256 of its DER SubjectPublicKeyInfo (written as DSSE `keyid`).
    pub fn key_id(&self) -> &Digest {
        self.public.content_hash()
    }

    /// The public key as PEM.
    pub fn public_key_pem(&self) -> String {
        pem::encode(&pem::Pem::new(
            "PUBLIC KEY",
            self.public.spki().as_bytes().to_vec(),
        ))
    }

    /// An ASN.1 DER ECDSA P-256 SHA-256 signature over `message`.
    ///
    /// # Errors
    /// [`AttestError::Signing`] when the primitive fails (it does not for a valid key).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AttestError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| AttestError::Signing("ECDSA P-256 signing failed".into()))
    }

    /// A fresh random key, for unit tests.
    #[cfg(test)]
    pub(crate) fn generate_for_tests() -> Self {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .unwrap();
        Self::from_pkcs8_der(doc.as_ref()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs8_pem_round_trips_and_the_key_id_is_the_spki_digest() {
        let k = SigningKey::generate_for_tests();
        let doc = k.pair.to_pkcs8v1().unwrap();
        let pem_text = pem::encode(&pem::Pem::new("PRIVATE KEY", doc.as_ref().to_vec()));
        let again = SigningKey::from_pkcs8_pem(pem_text.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(again.key_id(), k.key_id());
        assert_eq!(
            k.key_id(),
            &Digest::sha256_of(k.public_key().spki().as_bytes())
        );
        let public =
            StaticKey::from_pem(k.public_key_pem().as_bytes(), &Limits::default()).unwrap();
        assert_eq!(public.content_hash(), k.key_id());
        assert_eq!(public.algorithm_name(), "ecdsa-p256");
    }

    #[test]
    fn other_encodings_are_refused_with_the_conversion() {
        let l = Limits::default();
        let sec1 = pem::encode(&pem::Pem::new("EC PRIVATE KEY", vec![0u8; 8]));
        let e = SigningKey::from_pkcs8_pem(sec1.as_bytes(), &l).unwrap_err();
        assert!(e.to_string().contains("openssl pkcs8 -topk8"), "{e}");
        let enc = pem::encode(&pem::Pem::new("ENCRYPTED PRIVATE KEY", vec![0u8; 8]));
        assert!(
            SigningKey::from_pkcs8_pem(enc.as_bytes(), &l)
                .unwrap_err()
                .to_string()
                .contains("encrypted")
        );
        let junk = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![0u8; 8]));
        assert!(
            SigningKey::from_pkcs8_pem(junk.as_bytes(), &l)
                .unwrap_err()
                .to_string()
                .contains("not an ECDSA P-256")
        );
        assert!(SigningKey::from_pkcs8_pem(b"hello", &l).is_err());
        let tiny = Limits {
            max_key_bytes: 4,
            ..Limits::default()
        };
        assert!(
            SigningKey::from_pkcs8_pem(b"hello", &tiny)
                .unwrap_err()
                .to_string()
                .contains("max_key_bytes")
        );
    }
}
