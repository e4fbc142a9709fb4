//! custody's own certificate checks, made before the Sigstore verifier runs.
//!
//! The Sigstore Rust verifier accepts a bundle whose chain carries the root CA (measured: see
//! docs/decisions.md). The Sigstore client spec says the chain in a bundle must not include the
//! root, and a root in the bundle is a sign that a client confused "the chain" with "the
//! anchor", so custody rejects it here: any self-issued certificate (subject = issuer), at any
//! position, including a self-signed leaf.

use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::error::VerifyError;
use super::facts::{San, SanKind};

/// Extensions a certificate may mark critical (RFC 5280 §4.2.1). A critical extension outside
/// this list must make the certificate unusable (RFC 5280 §4.2); webpki agrees, but checking it
/// here names the OID in the rejection.
const KNOWN_CRITICAL_EXTENSIONS: &[&str] = &[
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.15", // keyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.19", // basicConstraints
    "2.5.29.30", // nameConstraints
    "2.5.29.32", // certificatePolicies
    "2.5.29.35", // authorityKeyIdentifier
    "2.5.29.36", // policyConstraints
    "2.5.29.37", // extKeyUsage
    "2.5.29.54", // inhibitAnyPolicy
];

/// Rejects an empty chain, unparseable certificates, unknown critical extensions, and root
/// certificates in the chain.
pub(super) fn check_chain(certificates: &[&[u8]]) -> Result<(), VerifyError> {
    if certificates.is_empty() {
        return Err(VerifyError::EmptyChain);
    }
    for (position, der) in certificates.iter().enumerate() {
        let cert = Certificate::from_der(der).map_err(|e| VerifyError::BadCertificate {
            position,
            detail: e.to_string(),
        })?;
        let tbs = &cert.tbs_certificate;
        if let Some(ext) = tbs.extensions.iter().flatten().find(|e| {
            e.critical && !KNOWN_CRITICAL_EXTENSIONS.contains(&e.extn_id.to_string().as_str())
        }) {
            return Err(VerifyError::UnknownCriticalExtension {
                position,
                oid: ext.extn_id.to_string(),
            });
        }
        // A root is self-issued. (An intermediate that the trust root also lists is fine: bundles
        // v0.1/v0.2 may carry leaf + intermediates.)
        if tbs.subject == tbs.issuer {
            return Err(VerifyError::RootInChain {
                position,
                subject: tbs.subject.to_string(),
            });
        }
    }
    Ok(())
}

/// Every SAN of the leaf, in order. Unparseable SAN extensions yield an empty list (the Sigstore
/// verifier has already rejected such certificates by the time this runs).
pub(super) fn subject_alternative_names(leaf_der: &[u8]) -> Vec<San> {
    let Ok(cert) = Certificate::from_der(leaf_der) else {
        return Vec::new();
    };
    let Ok(Some((_critical, sans))) = cert.tbs_certificate.get::<SubjectAltName>() else {
        return Vec::new();
    };
    sans.0
        .iter()
        .filter_map(|name| match name {
            GeneralName::Rfc822Name(v) => Some(San {
                kind: SanKind::Email,
                value: v.to_string(),
                oid: None,
            }),
            GeneralName::UniformResourceIdentifier(v) => Some(San {
                kind: SanKind::Uri,
                value: v.to_string(),
                oid: None,
            }),
            GeneralName::DnsName(v) => Some(San {
                kind: SanKind::Dns,
                value: v.to_string(),
                oid: None,
            }),
            GeneralName::OtherName(other) => Some(San {
                kind: SanKind::Other,
                value: other_name_value(&other.value),
                oid: Some(other.type_id.to_string()),
            }),
            _ => None,
        })
        .collect()
}

/// The string inside an otherName value (`[0] EXPLICIT UTF8String` in Fulcio's username SAN).
fn other_name_value(value: &der::Any) -> String {
    // The value is the explicit [0] wrapper's content: try it as a UTF8String.
    let Ok(inner) = value.to_der() else {
        return String::new();
    };
    // Strip the [0] tag and length to reach the inner TLV.
    der::asn1::ContextSpecific::<der::asn1::Utf8StringRef<'_>>::from_der(&inner)
        .map(|cs| cs.value.as_str().to_owned())
        .or_else(|_| {
            der::asn1::Utf8StringRef::from_der(value.value()).map(|s| s.as_str().to_owned())
        })
        .unwrap_or_default()
}
