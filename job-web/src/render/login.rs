//! The login page.

use axum::response::Html;
use maud::{DOCTYPE, html};

use super::{head, url};

/// The form: a token, or (when basic credentials exist) a user name and password.
pub(crate) fn page(offer_basic: bool, next: &str, csrf: &str, error: Option<&str>) -> Html<String> {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in"))
            body {
                main {
                    h1 { "jobsmith" }
                    div.card {
                        form method="post" action=(url("/login")) {
                            @if let Some(error) = error {
                                div.notice.bad role="alert" { (error) }
                            }
                            input type="hidden" name="next" value=(next);
                            input type="hidden" name="csrf" value=(csrf);
                            label {
                                "Token "
                                input type="password" name="token" id="token" autocomplete="current-password" autofocus;
                            }
                            @if offer_basic {
                                p.muted { "or" }
                                label {
                                    "User "
                                    input type="text" name="username" id="username" autocomplete="username";
                                }
                                label {
                                    "Password "
                                    input type="password" name="password" id="password" autocomplete="current-password";
                                }
                            }
                            button type="submit" id="login" { "Log in" }
                        }
                    }
                }
            }
        }
    };
    Html(doc.into_string())
}
