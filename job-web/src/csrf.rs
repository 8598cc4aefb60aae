//! CSRF protection: every POST must bring back the caller's token, as the form field `csrf` (the
//! dashboard's forms embed it) or the header `x-csrf-token` (for scripts). A page of another site
//! can make the browser send the session cookie or basic-auth credentials, but it cannot read the
//! token, which only appears inside the dashboard's own pages.

use axum::http::HeaderMap;

use crate::secret::ct_eq;

/// The form field.
pub(crate) const FIELD: &str = "csrf";
/// The header alternative.
pub(crate) const HEADER: &str = "x-csrf-token";

/// Whether the request (its headers and form body) carries `expected`.
pub(crate) fn is_valid(expected: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let from_header = headers.get(HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let presented = from_header.or_else(|| {
        form_urlencoded::parse(body).find(|(name, _)| name == FIELD).map(|(_, value)| value.into_owned())
    });
    match presented {
        Some(token) if !token.is_empty() => ct_eq(token.as_bytes(), expected.as_bytes()).into(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_field_or_the_header_must_match() {
        let none = HeaderMap::new();
        assert!(is_valid("abc", &none, b"queue=q&csrf=abc"));
        assert!(!is_valid("abc", &none, b"queue=q&csrf=abd"));
        assert!(!is_valid("abc", &none, b"queue=q"));
        assert!(!is_valid("abc", &none, b"csrf="));
        assert!(!is_valid("abc", &none, b"csrf=ab"));
        assert!(!is_valid("abc", &none, b"csrf=abcd"));
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_static("abc"));
        assert!(is_valid("abc", &h, b""));
    }
}
