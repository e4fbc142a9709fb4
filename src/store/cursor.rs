//! Opaque page cursors: `base64url("<query tag>:<last key>")`.
//!
//! The tag ties a cursor to the query that made it, so a cursor from another query (or an
//! edited one) is refused with a clear error instead of silently starting somewhere else.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::truncated;
use super::{MAX_PAGE_LIMIT, Page, StoreError};

/// Longest cursor accepted, in bytes.
const MAX_CURSOR_BYTES: usize = 1024;

/// Which query a cursor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Query {
    /// `by_commit`: key = first verdict id of the last digest.
    Commit,
    /// `by_signer`: key = the last digest.
    Signer,
    /// `at`: key = the last image name.
    At,
}

impl Query {
    fn tag(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Signer => "signer",
            Self::At => "at",
        }
    }
}

/// Encodes the key of the last item of a page.
pub(crate) fn encode(query: Query, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{key}", query.tag()))
}

/// Checks a page: its limit (1..=1000) and its cursor's key (`None`: first page).
pub(crate) fn page(query: Query, page: &Page) -> Result<(i64, Option<String>), StoreError> {
    if page.limit == 0 || page.limit > MAX_PAGE_LIMIT {
        return Err(StoreError::InvalidInput {
            field: "page limit",
            found: page.limit.to_string(),
            reason: format!("a page holds 1 to {MAX_PAGE_LIMIT} items"),
        });
    }
    let key = page
        .cursor
        .as_deref()
        .map(|c| decode(query, c))
        .transpose()?;
    Ok((i64::from(page.limit), key))
}

fn decode(query: Query, cursor: &str) -> Result<String, StoreError> {
    let bad = |reason: &str| StoreError::InvalidInput {
        field: "cursor",
        found: truncated(cursor, 80),
        reason: reason.into(),
    };
    if cursor.len() > MAX_CURSOR_BYTES {
        return Err(bad("too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad("not a cursor this store made (give the `next` of the previous page)"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not a cursor this store made"))?;
    let Some((tag, key)) = text.split_once(':') else {
        return Err(bad("not a cursor this store made"));
    };
    if tag != query.tag() {
        return Err(bad(&format!(
            "this cursor belongs to a `{tag}` query, not `{}`",
            query.tag()
        )));
    }
    if key.is_empty() || key.contains('\0') {
        return Err(bad("not a cursor this store made"));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let c = encode(Query::Commit, "42");
        let p = |cursor: Option<String>, limit| Page { limit, cursor };
        assert_eq!(
            page(Query::Commit, &p(Some(c.clone()), 10)).unwrap(),
            (10, Some("42".into()))
        );
        assert!(page(Query::Signer, &p(Some(c), 10)).is_err());
        assert!(page(Query::Commit, &p(None, 0)).is_err());
        assert!(page(Query::Commit, &p(None, 1001)).is_err());
        assert!(page(Query::Commit, &p(Some("!!".into()), 1)).is_err());
        assert!(page(Query::Commit, &p(None, 1000)).is_ok());
    }
}
