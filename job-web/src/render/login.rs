//! The login page.

use std::fmt::Write as _;

use axum::response::Html;

use super::esc;

/// The form: a token, or (when basic credentials exist) a user name and password.
pub(crate) fn page(offer_basic: bool, next: &str, csrf: &str, error: Option<&str>) -> Html<String> {
    let mut body = String::new();
    let _ = write!(
        body,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>Log in · jobsmith</title><style>{}</style></head>\
         <body><main><h1>jobsmith</h1><div class=\"card\"><form method=\"post\" action=\"/login\">",
        super::STYLE
    );
    if let Some(error) = error {
        let _ = write!(body, "<div class=\"notice bad\" role=\"alert\">{}</div>", esc(error));
    }
    let _ = write!(
        body,
        "<input type=\"hidden\" name=\"next\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label>Token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" autofocus></label>",
        esc(next),
        esc(csrf)
    );
    if offer_basic {
        body.push_str(
            "<p class=\"muted\">or</p>\
             <label>User <input type=\"text\" name=\"username\" id=\"username\" autocomplete=\"username\"></label>\
             <label>Password <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\"></label>",
        );
    }
    body.push_str("<button type=\"submit\" id=\"login\">Log in</button></form></div></main></body></html>");
    Html(body)
}
