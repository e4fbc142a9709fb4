//! Browser sessions for the pages: a person signs in once with one of the service's bearer tokens
//! and the browser keeps a session cookie instead of the token.
//!
//! The cookie value is `v1.<expiry>.<tag>`, where `<expiry>` is a Unix time at most
//! [`LIFETIME_SECS`] ahead and `<tag>` is HMAC-SHA256, keyed with the token, of a fixed context
//! string and the expiry. So the cookie:
//!
//! * is not the token: a leaked cookie reads pages until it expires, but is no bearer token for
//!   `/v1/*` and cannot be turned back into one;
//! * expires on the server, whatever the browser does with `Max-Age`;
//! * needs no server-side session table: removing a token from the tokens file (and restarting)
//!   ends every session minted with it.
//!
//! Pure: the time is an argument.

use aws_lc_rs::hmac;

/// Name of the session cookie.
pub(super) const COOKIE: &str = "custody_ui";

/// How long a session lasts (8 hours): the cookie's `Max-Age` and the server-side expiry.
pub(super) const LIFETIME_SECS: i64 = 8 * 3600;

/// Domain separation: a tag over this context means nothing anywhere else.
const CONTEXT: &str = "custody-ui-session-v1|";

/// The cookie value for a session signed in with `token`, expiring at `expires` (Unix seconds).
pub(super) fn mint(token: &str, expires: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    let tag = hmac::sign(&key, message(expires).as_bytes());
    format!("v1.{expires}.{}", hex::encode(tag.as_ref()))
}

/// Whether `value` is a session minted with one of `tokens` that has not expired at `now`.
///
/// Rejects anything malformed, expired, or expiring further ahead than [`LIFETIME_SECS`]. The tag is
/// compared in constant time (`hmac::verify`).
pub(super) fn verify(value: &str, tokens: &[String], now: i64) -> bool {
    let Some((expires, tag)) = value
        .strip_prefix("v1.")
        .and_then(|rest| rest.split_once('.'))
    else {
        return false;
    };
    if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(expires) = expires.parse::<i64>() else {
        return false;
    };
    if expires <= now || expires > now.saturating_add(LIFETIME_SECS) {
        return false;
    }
    // An HMAC-SHA256 tag is 32 bytes: anything else is refused before decoding (bounded work
    // per cookie, whatever its size).
    if tag.len() != 64 {
        return false;
    }
    let Ok(tag) = hex::decode(tag) else {
        return false;
    };
    let message = message(expires);
    tokens.iter().any(|t| {
        let key = hmac::Key::new(hmac::HMAC_SHA256, t.as_bytes());
        hmac::verify(&key, message.as_bytes(), &tag).is_ok()
    })
}

fn message(expires: i64) -> String {
    format!("{CONTEXT}{expires}")
}

/// The value of cookie `name` in a `Cookie` request header (`a=1; b=2`), if present.
pub(super) fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The value of `field` in an `application/x-www-form-urlencoded` body (`+` is a space, `%XX` a
/// byte; a malformed escape is kept as written).
pub(super) fn form_field(body: &[u8], field: &str) -> Option<String> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let key = decode(kv.next()?);
        (key == field).then(|| decode(kv.next().unwrap_or_default()))
    })
}

fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000;

    fn tokens() -> Vec<String> {
        vec![
            "first-token-0123456789".into(),
            "second-token-012345678".into(),
        ]
    }

    #[test]
    fn a_minted_session_verifies_until_it_expires() {
        let v = mint("second-token-012345678", NOW + 60);
        assert!(verify(&v, &tokens(), NOW));
        assert!(verify(&v, &tokens(), NOW + 59));
        assert!(!verify(&v, &tokens(), NOW + 60));
        assert!(!verify(&v, &["other-token-0123456789".into()], NOW));
    }

    #[test]
    fn a_session_is_not_the_token_and_cannot_be_altered() {
        let v = mint("first-token-0123456789", NOW + 60);
        assert!(!v.contains("first-token"));
        assert!(!crate::service::auth::token_accepted(&v, &tokens()));
        // Extending the expiry breaks the tag; so does any other edit.
        let longer = v.replacen(&(NOW + 60).to_string(), &(NOW + 120).to_string(), 1);
        assert!(!verify(&longer, &tokens(), NOW));
        for bad in [
            "",
            "v1.",
            "v1..",
            "v2.1.00",
            "v1.+5.00",
            "v1.x.00",
            &format!("{v}0"),
            &format!("v1.{}.{}", NOW + 60, "ab".repeat(4096)),
        ] {
            assert!(!verify(bad, &tokens(), NOW), "{bad:?}");
        }
    }

    #[test]
    fn an_expiry_beyond_the_lifetime_is_refused() {
        let v = mint("first-token-0123456789", NOW + LIFETIME_SECS + 1);
        assert!(!verify(&v, &tokens(), NOW));
        let v = mint("first-token-0123456789", NOW + LIFETIME_SECS);
        assert!(verify(&v, &tokens(), NOW));
    }

    #[test]
    fn cookies_and_form_fields_are_read() {
        assert_eq!(
            cookie("a=1; custody_ui=v1.2.ab; b=3", COOKIE),
            Some("v1.2.ab")
        );
        assert_eq!(cookie("custody_uix=1", COOKIE), None);
        assert_eq!(
            form_field(b"next=%2Fui&token=a%2Bb+c%3D%zz", "token").as_deref(),
            Some("a+b c=%zz")
        );
        assert_eq!(form_field(b"token", "token").as_deref(), Some(""));
        assert_eq!(form_field(b"x=1", "token"), None);
        assert_eq!(form_field(b"token=%", "token").as_deref(), Some("%"));
    }
}
