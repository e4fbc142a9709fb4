//! in-toto statements (v0.1 and v1), as carried in DSSE envelopes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{EvidenceError, check_count};
use crate::limits::Limits;

const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// The in-toto statement versions custody reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StatementVersion {
    /// `https://in-toto.io/Statement/v0.1`
    #[serde(rename = "v0.1")]
    V0_1,
    /// `https://in-toto.io/Statement/v1`
    #[serde(rename = "v1")]
    V1,
}

/// An in-toto statement: what was attested (subjects) and the claim (predicate).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InTotoStatement {
    /// Statement version.
    pub version: StatementVersion,
    /// The subjects; `name` may be empty (in-toto v1 allows nameless subjects).
    pub subjects: Vec<StatementSubject>,
    /// The predicate type URI (e.g. `https://slsa.dev/provenance/v1`).
    pub predicate_type: String,
    /// The predicate, unparsed: interpreting it is policy's job.
    pub predicate: serde_json::Value,
}

/// One subject of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementSubject {
    /// The subject's name (may be empty).
    #[serde(default)]
    pub name: String,
    /// Digests by algorithm name (`sha256`, `sha512`, `gitCommit`, …), lower-case hex.
    pub digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(rename = "_type")]
    type_: String,
    subject: Vec<StatementSubject>,
    predicate_type: String,
    #[serde(default)]
    predicate: serde_json::Value,
}

/// Parses an in-toto statement from a DSSE payload.
///
/// # Errors
/// [`EvidenceError::Statement`] when the `_type` is not Statement v0.1 or v1, the predicate
/// type is empty, there are no subjects, or a subject has no digest;
/// [`EvidenceError::LimitExceeded`] past [`Limits::max_statement_subjects`].
pub fn parse_statement(payload: &[u8], limits: &Limits) -> Result<InTotoStatement, EvidenceError> {
    super::check_json_depth(payload, limits.max_json_depth)?;
    let wire: Wire =
        serde_json::from_slice(payload).map_err(|e| EvidenceError::Statement(e.to_string()))?;
    let version = match wire.type_.as_str() {
        STATEMENT_V01 => StatementVersion::V0_1,
        STATEMENT_V1 => StatementVersion::V1,
        other => {
            return Err(EvidenceError::Statement(format!(
                "_type is {other:?}, expected {STATEMENT_V1} or {STATEMENT_V01}"
            )));
        }
    };
    check_count(
        "number of statement subjects",
        "max_statement_subjects",
        limits.max_statement_subjects,
        wire.subject.len(),
    )?;
    if wire.subject.is_empty() {
        return Err(EvidenceError::Statement("statement has no subjects".into()));
    }
    if let Some(s) = wire.subject.iter().find(|s| s.digest.is_empty()) {
        return Err(EvidenceError::Statement(format!(
            "subject {:?} has no digest",
            s.name
        )));
    }
    if wire.predicate_type.is_empty() {
        return Err(EvidenceError::Statement("predicateType is empty".into()));
    }
    Ok(InTotoStatement {
        version,
        subjects: wire.subject,
        predicate_type: wire.predicate_type,
        predicate: wire.predicate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_with_nameless_subject_and_v01() {
        let v1 = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"ab"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"x":1}}"#;
        let s = parse_statement(v1, &Limits::default()).unwrap();
        assert_eq!(s.version, StatementVersion::V1);
        assert_eq!(s.subjects[0].name, "");
        let v01 = br#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"a","digest":{"sha256":"ab"}}],"predicateType":"https://slsa.dev/provenance/v0.2"}"#;
        assert_eq!(
            parse_statement(v01, &Limits::default()).unwrap().version,
            StatementVersion::V0_1
        );
    }

    #[test]
    fn rejects_unknown_type_no_subjects_empty_digest() {
        let t = br#"{"_type":"https://example/Statement","subject":[{"digest":{"sha256":"ab"}}],"predicateType":"p"}"#;
        assert!(
            matches!(parse_statement(t, &Limits::default()), Err(EvidenceError::Statement(m)) if m.contains("_type"))
        );
        let none =
            br#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"p"}"#;
        assert!(
            matches!(parse_statement(none, &Limits::default()), Err(EvidenceError::Statement(m)) if m.contains("no subjects"))
        );
        let nod = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{}}],"predicateType":"p"}"#;
        assert!(
            matches!(parse_statement(nod, &Limits::default()), Err(EvidenceError::Statement(m)) if m.contains("no digest"))
        );
    }

    #[test]
    fn subject_count_limit_is_n_ok_n_plus_one_rejected() {
        let limits = Limits {
            max_statement_subjects: 2,
            ..Limits::default()
        };
        let make = |n: usize| {
            let subs: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"name":"{i}","digest":{{"sha256":"ab"}}}}"#))
                .collect();
            format!(
                r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{}],"predicateType":"p"}}"#,
                subs.join(",")
            )
        };
        assert!(parse_statement(make(2).as_bytes(), &limits).is_ok());
        assert!(matches!(
            parse_statement(make(3).as_bytes(), &limits),
            Err(EvidenceError::LimitExceeded {
                limit: "max_statement_subjects",
                found: 3,
                ..
            })
        ));
    }
}

/// A required attestation type: a name and the predicate-type URIs that satisfy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredicateRequirement {
    /// As given (`slsaprovenance`, a URI, …).
    pub name: String,
    /// Accepted `predicateType` values.
    pub uris: Vec<String>,
}

impl PredicateRequirement {
    /// Maps cosign's `--type` names to predicate types; anything with `://` is taken as a URI.
    ///
    /// # Errors
    /// An unknown short name, with the known ones listed.
    pub fn parse(name: &str) -> Result<Self, String> {
        let uris: &[&str] = match name {
            "slsaprovenance" => &[
                "https://slsa.dev/provenance/v1",
                "https://slsa.dev/provenance/v0.2",
            ],
            "slsaprovenance1" => &["https://slsa.dev/provenance/v1"],
            "slsaprovenance02" => &["https://slsa.dev/provenance/v0.2"],
            "spdx" | "spdxjson" => &["https://spdx.dev/Document"],
            "cyclonedx" => &["https://cyclonedx.org/bom"],
            "vuln" => &["https://cosign.sigstore.dev/attestation/vuln/v1"],
            "vsa" => &["https://slsa.dev/verification_summary/v1"],
            "custom" => &["https://cosign.sigstore.dev/attestation/v1"],
            uri if uri.contains("://") => {
                return Ok(Self {
                    name: name.to_owned(),
                    uris: vec![uri.to_owned()],
                });
            }
            other => {
                return Err(format!(
                    "unknown attestation type {other:?}: use slsaprovenance, slsaprovenance1, slsaprovenance02, spdx, cyclonedx, vuln, vsa, custom, or a predicate type URI"
                ));
            }
        };
        Ok(Self {
            name: name.to_owned(),
            uris: uris.iter().map(|u| (*u).to_owned()).collect(),
        })
    }
}
