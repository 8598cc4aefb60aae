//! Who may use the dashboard: the configured credentials ([`Auth`]), and at run time the
//! [`Gate`] that checks presented credentials and keeps login sessions.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{Extensions, HeaderMap};
use base64::Engine as _;

use crate::secret::{ct_eq, digest, random_token};

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every page; every action answers 403.
    ReadOnly,
    /// Every page and every action.
    Full,
}

#[derive(Clone)]
enum Secret {
    Token(String),
    Basic { user: String, password: String },
}

#[derive(Clone)]
struct Credential {
    secret: Secret,
    access: Access,
}

impl Credential {
    /// Empty secrets never match: a blank `Authorization: Bearer ` must not log anyone in.
    fn usable(&self) -> bool {
        match &self.secret {
            Secret::Token(t) => !t.is_empty(),
            Secret::Basic { user, password } => !user.is_empty() && !password.is_empty(),
        }
    }
}

/// The credentials the dashboard accepts, each with an [`Access`].
///
/// A token is presented as `Authorization: Bearer <token>` or typed into the login form; basic
/// credentials as `Authorization: Basic` or typed into the same form. Use long random secrets:
/// they are the only thing between the network and your jobs.
///
/// ```
/// use jobsmith_web::Auth;
/// let auth = Auth::token("admin-token")
///     .read_only_token("viewer-token")
///     .basic("ops", "correct horse battery staple");
/// assert!(!auth.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Auth {
    credentials: Vec<Credential>,
    upstream: bool,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secrets themselves.
        let count = |want: Access| self.credentials.iter().filter(|c| c.access == want).count();
        f.debug_struct("Auth")
            .field("full", &count(Access::Full))
            .field("read_only", &count(Access::ReadOnly))
            .field("upstream", &self.upstream)
            .finish()
    }
}

impl Auth {
    /// No credentials yet: add some with the methods below.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `token` with [`Access::Full`].
    pub fn token(token: impl Into<String>) -> Self {
        Self::new().with_token(token, Access::Full)
    }

    /// Also accepts `token`, with `access`.
    pub fn with_token(mut self, token: impl Into<String>, access: Access) -> Self {
        self.credentials.push(Credential { secret: Secret::Token(token.into()), access });
        self
    }

    /// Also accepts `token`, read-only.
    pub fn read_only_token(self, token: impl Into<String>) -> Self {
        self.with_token(token, Access::ReadOnly)
    }

    /// Also accepts basic-auth `user` and `password`, with [`Access::Full`]. A user name with a
    /// `:` can never match (basic auth splits at the first colon).
    pub fn basic(self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.with_basic(user, password, Access::Full)
    }

    /// Also accepts basic-auth `user` and `password`, read-only.
    pub fn read_only_basic(self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.with_basic(user, password, Access::ReadOnly)
    }

    /// Also accepts basic-auth `user` and `password`, with `access`.
    pub fn with_basic(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
        access: Access,
    ) -> Self {
        self.credentials.push(Credential {
            secret: Secret::Basic { user: user.into(), password: password.into() },
            access,
        });
        self
    }

    /// Lets the application's own authentication decide, for a dashboard mounted inside the
    /// application's router: a request that carries an [`Access`] in its extensions (put there
    /// by the application's middleware, after its own login) is admitted with that access. The
    /// dashboard still checks a CSRF token on every change. Combine with tokens if scripts should
    /// also get in with `Authorization` headers.
    ///
    /// ```
    /// use axum::{Router, extract::Request, middleware::{self, Next}, response::Response};
    /// use jobsmith_web::{Access, Auth};
    ///
    /// async fn app_auth(mut req: Request, next: Next) -> Response {
    ///     // ... the application's own check of the caller, then:
    ///     req.extensions_mut().insert(Access::ReadOnly);
    ///     next.run(req).await
    /// }
    ///
    /// # fn demo(engine: std::sync::Arc<dyn jobsmith_runtime::engine::Engine>) {
    /// let app: Router = Router::new()
    ///     .nest("/ops/jobs", jobsmith_web::router(engine, Auth::upstream()))
    ///     .layer(middleware::from_fn(app_auth));
    /// # }
    /// ```
    pub fn upstream() -> Self {
        Self::new().with_upstream()
    }

    /// Also admits requests that carry an [`Access`] extension; see [`Auth::upstream`].
    pub fn with_upstream(mut self) -> Self {
        self.upstream = true;
        self
    }

    /// Whether nothing can ever get in: no usable credential (none given, or only empty
    /// secrets) and no trust in the application's own authentication.
    pub fn is_empty(&self) -> bool {
        !self.upstream && !self.has_credentials()
    }

    /// Whether any token or basic credential could match (what a dashboard served on its own
    /// address needs: there is no application in front of it to decide).
    pub(crate) fn has_credentials(&self) -> bool {
        self.credentials.iter().any(Credential::usable)
    }

    /// Whether any basic-auth credential is configured (the login form then asks for a user name
    /// and password too, and 401 answers offer basic auth to the browser).
    pub(crate) fn has_basic(&self) -> bool {
        self.credentials.iter().any(|c| c.usable() && matches!(c.secret, Secret::Basic { .. }))
    }
}

// Login sessions: our own small in-memory store rather than a session crate such as
// tower-sessions. What the dashboard needs is one fact per session (the access level, plus its
// CSRF token) for a browser that logged in with a credential, and this store is that: a map from
// the SHA-256 of a random 256-bit id to that fact, with a fixed lifetime and a cap on the number
// kept, about sixty lines checked by the tests here and in `tests/security.rs`. A session crate
// would bring a tower middleware layer, a cookie crate, a serialisation format for session data
// and async store traits into a crate that otherwise keeps to axum with minimal features (no
// tower-http), and it would change nothing that matters here: sessions would still live in
// memory and end with the process (a restart asks people to log in again, which is right for an
// operator's console). Worth revisiting if sessions must outlive a restart or be shared by
// several dashboard processes behind one address.

/// The cookie that carries a login session's id.
pub(crate) const SESSION_COOKIE: &str = "jobsmith_session";
/// How long a login session lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions are kept; the oldest go first, so repeated logins cannot grow
/// memory without bound.
const MAX_SESSIONS: usize = 10_000;

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// The login session cookie (the page offers a logout button).
    Session,
    /// An `Authorization` header, sent again with every request.
    Header,
    /// The application's own authentication, as an [`Access`] extension ([`Auth::upstream`]).
    Upstream,
}

/// The authenticated caller of one request, put into the request's extensions by the guard.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) access: Access,
    /// The token every form of this caller embeds and every POST must bring back.
    pub(crate) csrf: String,
    pub(crate) via: Via,
}

impl Principal {
    pub(crate) fn can_act(&self) -> bool {
        self.access == Access::Full
    }
}

/// What the `Authorization` header and cookies of a request amount to.
#[derive(Debug)]
pub(crate) enum Presented {
    /// A valid credential or session.
    Known(Principal),
    /// An `Authorization` header that matches nothing.
    Wrong,
    /// Neither a header nor a live session.
    Nothing,
}

struct UpstreamTokens {
    full: String,
    read_only: String,
}

struct Session {
    access: Access,
    csrf: String,
    expires: Instant,
}

/// The run-time side of [`Auth`]: checks credentials, keeps sessions.
pub(crate) struct Gate {
    /// Each credential with its CSRF token. Header-authenticated callers have no session, so
    /// their token belongs to the credential; it is random per process, so no other site can know
    /// it even when the browser attaches basic-auth credentials by itself.
    credentials: Vec<(Credential, String)>,
    /// When the application's own authentication is trusted, the CSRF tokens of its callers:
    /// one per access level, random per process (such callers have no session of ours).
    upstream: Option<UpstreamTokens>,
    has_basic: bool,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

impl Gate {
    pub(crate) fn new(auth: Auth) -> Self {
        let has_basic = auth.has_basic();
        let upstream =
            auth.upstream.then(|| UpstreamTokens { full: random_token(), read_only: random_token() });
        let credentials =
            auth.credentials.into_iter().filter(Credential::usable).map(|c| (c, random_token())).collect();
        Gate { credentials, upstream, has_basic, sessions: Mutex::new(HashMap::new()) }
    }

    /// Whether only the application's own authentication can let anyone in (the login form
    /// would accept nothing).
    pub(crate) fn upstream_only(&self) -> bool {
        self.credentials.is_empty() && self.upstream.is_some()
    }

    pub(crate) fn has_basic(&self) -> bool {
        self.has_basic
    }

    /// Checks the application's [`Access`] extension first when it is trusted, then the
    /// `Authorization` header (when present it must be right), then the session cookie.
    pub(crate) fn check(&self, headers: &HeaderMap, extensions: &Extensions) -> Presented {
        if let (Some(tokens), Some(access)) = (&self.upstream, extensions.get::<Access>()) {
            let csrf = match access {
                Access::Full => tokens.full.clone(),
                Access::ReadOnly => tokens.read_only.clone(),
            };
            return Presented::Known(Principal { access: *access, csrf, via: Via::Upstream });
        }
        if let Some(value) = headers.get(AUTHORIZATION) {
            let found = value.to_str().ok().and_then(|v| self.match_authorization(v));
            return match found {
                Some((access, csrf)) => Presented::Known(Principal { access, csrf, via: Via::Header }),
                None => Presented::Wrong,
            };
        }
        match session_cookie(headers).and_then(|id| self.session(id)) {
            Some(principal) => Presented::Known(principal),
            None => Presented::Nothing,
        }
    }

    fn match_authorization(&self, value: &str) -> Option<(Access, String)> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            self.match_token(rest)
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, password) = decoded.split_once(':')?;
            // A token is also a basic-auth password, under any user name: tools that speak only
            // basic auth (monitoring probes, some proxies) can use the tokens.
            self.match_basic(user, password).or_else(|| self.match_token(password))
        } else {
            None
        }
    }

    /// The access and CSRF token of the credential with this token.
    pub(crate) fn match_token(&self, token: &str) -> Option<(Access, String)> {
        self.find(|secret| match secret {
            Secret::Token(t) => ct_eq(t.as_bytes(), token.as_bytes()).into(),
            Secret::Basic { .. } => false,
        })
    }

    /// The access and CSRF token of the credential with this user and password.
    pub(crate) fn match_basic(&self, user: &str, password: &str) -> Option<(Access, String)> {
        self.find(|secret| match secret {
            // `Choice & Choice` rather than `&&`: check the password even when the user is
            // wrong, so timing does not tell which user names exist.
            Secret::Basic { user: u, password: p } => {
                (ct_eq(u.as_bytes(), user.as_bytes()) & ct_eq(p.as_bytes(), password.as_bytes())).into()
            }
            Secret::Token(_) => false,
        })
    }

    /// Tries every credential (no early exit) and keeps the first match.
    fn find(&self, matches: impl Fn(&Secret) -> bool) -> Option<(Access, String)> {
        let mut found = None;
        for (credential, csrf) in &self.credentials {
            if matches(&credential.secret) && found.is_none() {
                found = Some((credential.access, csrf.clone()));
            }
        }
        found
    }

    /// Opens a session with `access`; returns its id, for the cookie.
    pub(crate) fn start_session(&self, access: Access) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            digest(id.as_bytes()),
            Session { access, csrf: random_token(), expires: now + SESSION_TTL },
        );
        id
    }

    fn session(&self, id: &str) -> Option<Principal> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let session = sessions.get(&digest(id.as_bytes()))?;
        (session.expires > Instant::now()).then(|| Principal {
            access: session.access,
            csrf: session.csrf.clone(),
            via: Via::Session,
        })
    }

    /// Ends the session whose cookie `headers` carry, if any.
    pub(crate) fn end_session(&self, headers: &HeaderMap) {
        if let Some(id) = session_cookie(headers) {
            self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&digest(id.as_bytes()));
        }
    }
}

/// The session id from the `Cookie` headers.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie_value(headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if the request carries a non-empty one.
pub(crate) fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    /// A request's check without extensions (no application middleware in front).
    fn check(gate: &Gate, headers: &HeaderMap) -> Presented {
        gate.check(headers, &Extensions::new())
    }

    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    fn access(p: Presented) -> Option<Access> {
        match p {
            Presented::Known(p) => Some(p.access),
            _ => None,
        }
    }

    #[test]
    fn headers_match_their_credentials() {
        let gate = Gate::new(Auth::token("full").read_only_token("ro").read_only_basic("u", "p"));
        assert_eq!(access(check(&gate, &headers(AUTHORIZATION, "Bearer full"))), Some(Access::Full));
        assert_eq!(access(check(&gate, &headers(AUTHORIZATION, "bearer ro"))), Some(Access::ReadOnly));
        let basic = base64::engine::general_purpose::STANDARD.encode("u:p");
        assert_eq!(
            access(check(&gate, &headers(AUTHORIZATION, &format!("Basic {basic}")))),
            Some(Access::ReadOnly)
        );
        assert!(matches!(check(&gate, &headers(AUTHORIZATION, "Bearer nope")), Presented::Wrong));
        assert!(matches!(check(&gate, &headers(AUTHORIZATION, "Bearer ")), Presented::Wrong));
        assert!(matches!(check(&gate, &HeaderMap::new()), Presented::Nothing));
    }

    #[test]
    fn wrong_secrets_are_refused_whatever_their_length() {
        let gate = Gate::new(Auth::token("right-token").basic("ops", "right-pass"));
        assert!(gate.match_token("right-token").is_some());
        // Same length, one character off; shorter; longer; a prefix; an extension.
        for wrong in ["right-tokeN", "wrong-token", "right", "right-token-and-more", "r", "right-toke"] {
            assert!(gate.match_token(wrong).is_none(), "{wrong}");
        }
        assert!(gate.match_basic("ops", "right-pass").is_some());
        for (user, password) in [
            ("ops", "right-pasS"),
            ("ops", "right-pas"),
            ("ops", "right-pass2"),
            ("opS", "right-pass"),
            ("op", "right-pass"),
            ("opsx", "right-pass"),
            ("", "right-pass"),
        ] {
            assert!(gate.match_basic(user, password).is_none(), "{user}:{password}");
        }
        // A token is not a password and a password is not a token.
        assert!(gate.match_token("right-pass").is_none());
        assert!(gate.match_basic("ops", "right-token").is_none());
    }

    #[test]
    fn empty_secrets_never_match() {
        let auth = Auth::token("").basic("", "");
        assert!(auth.is_empty());
        let gate = Gate::new(auth);
        assert!(gate.match_token("").is_none());
        assert!(gate.match_basic("", "").is_none());
    }

    #[test]
    fn sessions_carry_access_and_end() {
        let gate = Gate::new(Auth::token("t"));
        let id = gate.start_session(Access::ReadOnly);
        let cookie = headers(COOKIE, &format!("other=1; {SESSION_COOKIE}={id}"));
        assert_eq!(access(check(&gate, &cookie)), Some(Access::ReadOnly));
        gate.end_session(&cookie);
        assert!(matches!(check(&gate, &cookie), Presented::Nothing));
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", Auth::token("s3cr3t").basic("u", "pa55"));
        assert!(!text.contains("s3cr3t") && !text.contains("pa55"), "{text}");
    }
}
