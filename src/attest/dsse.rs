//! DSSE envelopes (Dead Simple Signing Envelope, v1.0): signing with an ECDSA P-256 key and
//! verifying against trusted public keys, with bounded parsing.
//!
//! Wire form (secure-systems-lab/dsse `envelope.md`):
//! `{"payloadType": …, "payload": <base64>, "signatures": [{"keyid": …, "sig": <base64>}]}`.
//! The signature covers the pre-authentication encoding `DSSEv1 <len> <type> <len> <body>`
//! (`sigstore_verify::types::pae`, the same function the bundle verifier uses), never the JSON.
//!
//! `keyid` is an unauthenticated hint: custody writes the SHA-256 of the signing key's DER
//! SubjectPublicKeyInfo (`sha256:<hex>`, the key's identity everywhere else in custody) and, when
//! verifying, tries every trusted key on every signature whatever the `keyid` says (the DSSE
//! protocol leaves key lookup to the verifier).

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::{Deserialize, Serialize};

use super::AttestError;
use super::key::SigningKey;
use crate::limits::Limits;
use crate::reference::Digest;
use crate::trust::StaticKey;

/// The DSSE payload type of in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Most signatures read from one envelope (each is tried against every trusted key).
pub const MAX_SIGNATURES: usize = 16;

/// Largest envelope custody reads (a VSA is a few KiB; bundles of input attestations are not
/// inlined).
pub const MAX_ENVELOPE_BYTES: u64 = 1 << 20;

/// A DSSE envelope as written on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// What the payload is (`application/vnd.in-toto+json`).
    pub payload_type: String,
    /// The payload, base64 (standard alphabet, padded, when custody writes it).
    pub payload: String,
    /// The signatures over the PAE of `payload_type` and the decoded payload.
    pub signatures: Vec<Signature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// A hint naming the key (custody: `sha256:<hex of the SPKI DER digest>`). Optional on the
    /// wire; written as an empty string when absent.
    #[serde(default)]
    pub keyid: String,
    /// The signature, base64: for ECDSA an ASN.1 DER `ECDSA-Sig-Value`.
    pub sig: String,
}

/// An envelope whose shape and sizes were checked, its payload and signatures decoded. Nothing
/// about who signed it is known yet: see [`ParsedEnvelope::verified_by`].
#[derive(Debug, Clone)]
pub struct ParsedEnvelope {
    /// The payload type.
    pub payload_type: String,
    /// The decoded payload.
    pub payload: Vec<u8>,
    /// `(keyid, signature bytes)` in envelope order.
    pub signatures: Vec<(String, Vec<u8>)>,
    /// SHA-256 of the envelope bytes as read.
    pub digest: Digest,
}

/// DSSE allows either base64 alphabet; producers differ on padding.
const B64_STANDARD_ANY: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_URL_ANY: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn b64_decode(what: &str, text: &str) -> Result<Vec<u8>, String> {
    B64_STANDARD_ANY
        .decode(text)
        .or_else(|_| B64_URL_ANY.decode(text))
        .map_err(|e| format!("{what} is not base64: {e}"))
}

impl Envelope {
    /// Signs `payload` of `payload_type` with `key`: one signature over the PAE.
    ///
    /// # Errors
    /// [`AttestError::Signing`] when the signing primitive fails.
    pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Result<Self, AttestError> {
        let pae = sigstore_verify::types::pae(payload_type, payload);
        let sig = key.sign(&pae)?;
        Ok(Self {
            payload_type: payload_type.to_owned(),
            payload: STANDARD.encode(payload),
            signatures: vec![Signature {
                keyid: key.key_id().to_string(),
                sig: STANDARD.encode(sig),
            }],
        })
    }

    /// The envelope as compact JSON: the bytes custody prints, writes and pushes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Parses an envelope: size, JSON depth, required fields, base64, at most [`MAX_SIGNATURES`]
/// signatures, payload within [`Limits::max_dsse_payload_bytes`].
///
/// # Errors
/// A message naming what is wrong (the caller wraps it in its own error).
pub fn parse_envelope(bytes: &[u8], limits: &Limits) -> Result<ParsedEnvelope, String> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > MAX_ENVELOPE_BYTES {
        return Err(format!(
            "envelope is {size} bytes, more than the limit of {MAX_ENVELOPE_BYTES}"
        ));
    }
    crate::evidence::check_json_depth(bytes, limits.max_json_depth).map_err(|e| e.to_string())?;
    let wire: Envelope =
        serde_json::from_slice(bytes).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    if wire.signatures.is_empty() {
        return Err("envelope has no signatures".into());
    }
    if wire.signatures.len() > MAX_SIGNATURES {
        return Err(format!(
            "envelope has {} signatures, more than the limit of {MAX_SIGNATURES}",
            wire.signatures.len()
        ));
    }
    let payload = b64_decode("payload", &wire.payload)?;
    let payload_len = u64::try_from(payload.len()).unwrap_or(u64::MAX);
    if payload_len > limits.max_dsse_payload_bytes {
        return Err(format!(
            "payload is {payload_len} bytes, more than max_dsse_payload_bytes ({})",
            limits.max_dsse_payload_bytes
        ));
    }
    let signatures = wire
        .signatures
        .iter()
        .map(|s| Ok((s.keyid.clone(), b64_decode("signature", &s.sig)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ParsedEnvelope {
        payload_type: wire.payload_type,
        payload,
        signatures,
        digest: Digest::sha256_of(bytes),
    })
}

impl ParsedEnvelope {
    /// The index (in `keys`) of the first trusted key that verifies any signature over the PAE,
    /// or `None`. Only ECDSA P-256 (SHA-256) keys can verify; others never match (the policy
    /// loader refuses them for verification summaries).
    pub fn verified_by(&self, keys: &[&StaticKey]) -> Option<usize> {
        let pae = sigstore_verify::types::pae(&self.payload_type, &self.payload);
        keys.iter().position(|key| {
            self.signatures
                .iter()
                .any(|(_, sig)| verify_p256(key, &pae, sig))
        })
    }
}

/// Whether `sig` (ASN.1 DER) is `key`'s ECDSA P-256 SHA-256 signature over `message`.
pub fn verify_p256(key: &StaticKey, message: &[u8], sig: &[u8]) -> bool {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    if key.algorithm_name() != "ecdsa-p256" {
        return false;
    }
    // aws-lc-rs reads an X.509 SubjectPublicKeyInfo as well as a bare SEC1 point.
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.spki().as_bytes())
        .verify(message, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::generate_for_tests()
    }

    #[test]
    fn pae_matches_the_spec_example() {
        assert_eq!(
            sigstore_verify::types::pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn a_signed_envelope_verifies_with_its_key_and_not_another() {
        let k = key();
        let env = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &k).unwrap();
        let parsed = parse_envelope(&env.to_bytes(), &Limits::default()).unwrap();
        assert_eq!(parsed.payload, b"{\"a\":1}");
        let other = key();
        assert_eq!(parsed.verified_by(&[k.public_key()]), Some(0));
        assert_eq!(
            parsed.verified_by(&[other.public_key(), k.public_key()]),
            Some(1)
        );
        assert_eq!(parsed.verified_by(&[other.public_key()]), None);
        assert_eq!(env.signatures[0].keyid, k.key_id().to_string());
    }

    #[test]
    fn tampering_with_payload_or_type_breaks_the_signature() {
        let k = key();
        let env = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &k).unwrap();
        let mut payload = env.clone();
        payload.payload = STANDARD.encode(b"{\"a\":2}");
        let p = parse_envelope(&payload.to_bytes(), &Limits::default()).unwrap();
        assert_eq!(p.verified_by(&[k.public_key()]), None);
        let mut ty = env.clone();
        ty.payload_type = "application/json".into();
        let p = parse_envelope(&ty.to_bytes(), &Limits::default()).unwrap();
        assert_eq!(p.verified_by(&[k.public_key()]), None);
    }

    #[test]
    fn url_safe_and_unpadded_base64_are_read() {
        let k = key();
        let mut env = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":\"??>\"}", &k).unwrap();
        env.payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"{\"a\":\"??>\"}");
        let p = parse_envelope(&env.to_bytes(), &Limits::default()).unwrap();
        assert_eq!(p.payload, b"{\"a\":\"??>\"}");
        assert_eq!(p.verified_by(&[k.public_key()]), Some(0));
    }

    #[test]
    fn shape_and_bounds_are_checked() {
        let l = Limits::default();
        assert!(
            parse_envelope(b"[]", &l)
                .unwrap_err()
                .contains("not a DSSE")
        );
        let none = br#"{"payloadType":"t","payload":"","signatures":[]}"#;
        assert!(
            parse_envelope(none, &l)
                .unwrap_err()
                .contains("no signatures")
        );
        let sig = r#"{"keyid":"","sig":"AA=="}"#;
        let at = |n: usize| {
            format!(
                r#"{{"payloadType":"t","payload":"","signatures":[{}]}}"#,
                vec![sig; n].join(",")
            )
        };
        assert!(parse_envelope(at(MAX_SIGNATURES).as_bytes(), &l).is_ok());
        assert!(
            parse_envelope(at(MAX_SIGNATURES + 1).as_bytes(), &l)
                .unwrap_err()
                .contains("more than the limit of 16")
        );
        let big = vec![b' '; usize::try_from(MAX_ENVELOPE_BYTES).unwrap() + 1];
        assert!(parse_envelope(&big, &l).unwrap_err().contains("limit"));
        let bad = br#"{"payloadType":"t","payload":"!!","signatures":[{"sig":"AA=="}]}"#;
        assert!(parse_envelope(bad, &l).unwrap_err().contains("not base64"));
        let small = Limits {
            max_dsse_payload_bytes: 2,
            ..Limits::default()
        };
        let three = br#"{"payloadType":"t","payload":"YWJj","signatures":[{"sig":"AA=="}]}"#;
        assert!(
            parse_envelope(three, &small)
                .unwrap_err()
                .contains("max_dsse_payload_bytes")
        );
        let two = br#"{"payloadType":"t","payload":"YWI=","signatures":[{"sig":"AA=="}]}"#;
        assert!(parse_envelope(two, &small).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_envelope(&bytes, &Limits::default());
        }
    }
}
