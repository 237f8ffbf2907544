//! A small OAuth 2.0 authorisation server on loopback for the OAuth tests: it issues access
//! tokens (client credentials, refresh token, authorisation code with PKCE), answers Dovecot's
//! RFC 7662 introspection, and lets the test expire and revoke tokens. HTTP/1.1, one request
//! per connection, written on tokio alone.

use base64::Engine;
use sha2::Digest;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A confidential client the server knows, acting for one mailbox (app-only access).
#[derive(Clone)]
pub struct Client {
    pub secret: String,
    pub user: String,
}

struct AccessRecord {
    user: String,
    expires: Instant,
    revoked: bool,
}

struct RefreshRecord {
    user: String,
    revoked: bool,
}

struct CodeRecord {
    user: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct State {
    clients: HashMap<String, Client>,
    access: HashMap<String, AccessRecord>,
    refresh: HashMap<String, RefreshRecord>,
    codes: HashMap<String, CodeRecord>,
    /// Who signs in at /authorize.
    signed_in: Option<String>,
    lifetime: Duration,
    /// Characters appended to every access token (Microsoft's are JWTs of 1,500–2,500).
    padding: usize,
    rotate_refresh: bool,
    token_requests: usize,
    introspections: usize,
    next: u64,
}

/// The running server; cheap to clone.
#[derive(Clone)]
pub struct TokenServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

fn json(status: &str, body: serde_json::Value) -> (String, String, Vec<(String, String)>) {
    (status.to_string(), body.to_string(), Vec::new())
}

fn oauth_error(error: &str, description: &str) -> (String, String, Vec<(String, String)>) {
    json(
        "400 Bad Request",
        serde_json::json!({"error": error, "error_description": description}),
    )
}

impl TokenServer {
    /// Starts the server on a free loopback port.
    pub async fn start() -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = TokenServer {
            addr: listener.local_addr().expect("address"),
            state: Arc::new(Mutex::new(State {
                lifetime: Duration::from_secs(3600),
                ..State::default()
            })),
        };
        let serving = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = serving.clone();
                tokio::spawn(async move { server.serve(stream).await });
            }
        });
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("the token server's state")
    }

    pub fn add_client(&self, id: &str, secret: &str, user: &str) {
        self.lock().clients.insert(
            id.to_string(),
            Client {
                secret: secret.to_string(),
                user: user.to_string(),
            },
        );
    }

    /// Makes a refresh token for `user` (as a finished login would have).
    pub fn grant_refresh_token(&self, user: &str) -> String {
        let mut state = self.lock();
        state.next += 1;
        let token = format!("refresh-{}-{}", state.next, fastrand::u64(..));
        state.refresh.insert(
            token.clone(),
            RefreshRecord {
                user: user.to_string(),
                revoked: false,
            },
        );
        token
    }

    /// The lifetime of access tokens issued from now on.
    pub fn set_lifetime(&self, lifetime: Duration) {
        self.lock().lifetime = lifetime;
    }

    /// Makes every access token issued from now on `padding` characters longer.
    pub fn set_padding(&self, padding: usize) {
        self.lock().padding = padding;
    }

    /// Whether each refresh answers with a new refresh token (as Microsoft does).
    pub fn set_rotate_refresh(&self, rotate: bool) {
        self.lock().rotate_refresh = rotate;
    }

    /// Who signs in when a browser comes to /authorize.
    pub fn sign_in(&self, user: &str) {
        self.lock().signed_in = Some(user.to_string());
    }

    /// Revokes every access token of `user`.
    pub fn revoke_access(&self, user: &str) {
        for record in self.lock().access.values_mut() {
            if record.user == user {
                record.revoked = true;
            }
        }
    }

    /// Revokes every refresh token and access token of `user`.
    pub fn revoke_all(&self, user: &str) {
        self.revoke_access(user);
        for record in self.lock().refresh.values_mut() {
            if record.user == user {
                record.revoked = true;
            }
        }
    }

    /// Whether `token` is a refresh token the server issued and still honours.
    pub fn refresh_token_is_live(&self, token: &str) -> bool {
        self.lock().refresh.get(token).is_some_and(|r| !r.revoked)
    }

    /// Every access token issued to `user` so far.
    pub fn access_tokens(&self, user: &str) -> Vec<String> {
        self.lock()
            .access
            .iter()
            .filter(|(_, r)| r.user == user)
            .map(|(t, _)| t.clone())
            .collect()
    }

    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }

    pub fn introspections(&self) -> usize {
        self.lock().introspections
    }

    fn issue(&self, state: &mut State, user: &str, with_refresh: bool) -> serde_json::Value {
        state.next += 1;
        let token = format!(
            "access-{}-{}{}",
            state.next,
            fastrand::u64(..),
            "x".repeat(state.padding)
        );
        state.access.insert(
            token.clone(),
            AccessRecord {
                user: user.to_string(),
                expires: Instant::now() + state.lifetime,
                revoked: false,
            },
        );
        let mut body = serde_json::json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": state.lifetime.as_secs(),
        });
        if with_refresh {
            state.next += 1;
            let refresh = format!("refresh-{}-{}", state.next, fastrand::u64(..));
            state.refresh.insert(
                refresh.clone(),
                RefreshRecord {
                    user: user.to_string(),
                    revoked: false,
                },
            );
            body["refresh_token"] = refresh.into();
        }
        body
    }

    /// The client named by HTTP Basic or by the form, if its secret matches (or it is public
    /// and none was sent).
    fn client(
        state: &State,
        headers: &HashMap<String, String>,
        form: &HashMap<String, String>,
    ) -> Option<(String, Client)> {
        let (id, secret) = match headers.get("authorization") {
            Some(value) => {
                let encoded = value.strip_prefix("Basic ")?;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()?;
                let text = String::from_utf8(decoded).ok()?;
                let (id, secret) = text.split_once(':')?;
                let decode = |s: &str| {
                    url::form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (decode(id), Some(decode(secret)))
            }
            None => (
                form.get("client_id")?.clone(),
                form.get("client_secret").cloned(),
            ),
        };
        let client = state.clients.get(&id)?;
        match secret {
            Some(secret) if secret == client.secret => Some((id, client.clone())),
            None if client.secret.is_empty() => Some((id, client.clone())),
            _ => None,
        }
    }

    fn token(
        &self,
        headers: &HashMap<String, String>,
        form: &HashMap<String, String>,
    ) -> (String, String, Vec<(String, String)>) {
        let mut state = self.lock();
        state.token_requests += 1;
        let Some((_, client)) = Self::client(&state, headers, form) else {
            return json(
                "401 Unauthorized",
                serde_json::json!({"error": "invalid_client", "error_description": "unknown client or wrong secret"}),
            );
        };
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => {
                let body = self.issue(&mut state, &client.user, false);
                json("200 OK", body)
            }
            Some("refresh_token") => {
                let presented = form.get("refresh_token").cloned().unwrap_or_default();
                let user = match state.refresh.get(&presented) {
                    Some(r) if !r.revoked => r.user.clone(),
                    _ => return oauth_error("invalid_grant", "the refresh token was revoked"),
                };
                let rotate = state.rotate_refresh;
                json("200 OK", self.issue(&mut state, &user, rotate))
            }
            Some("authorization_code") => {
                let code = form.get("code").cloned().unwrap_or_default();
                let Some(record) = state.codes.remove(&code) else {
                    return oauth_error("invalid_grant", "unknown or used code");
                };
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(verifier.as_bytes()));
                if challenge != record.challenge {
                    return oauth_error("invalid_grant", "PKCE verification failed");
                }
                if form.get("redirect_uri") != Some(&record.redirect_uri) {
                    return oauth_error("invalid_grant", "redirect_uri differs");
                }
                json("200 OK", self.issue(&mut state, &record.user, true))
            }
            _ => oauth_error("unsupported_grant_type", "no such grant"),
        }
    }

    fn introspect(
        &self,
        form: &HashMap<String, String>,
    ) -> (String, String, Vec<(String, String)>) {
        let mut state = self.lock();
        state.introspections += 1;
        let token = form.get("token").cloned().unwrap_or_default();
        let body = match state.access.get(&token) {
            Some(r) if !r.revoked && Instant::now() < r.expires => {
                serde_json::json!({"active": true, "username": r.user})
            }
            _ => serde_json::json!({"active": false}),
        };
        json("200 OK", body)
    }

    /// The browser's visit: the signed-in user consents at once, and the browser is sent back
    /// to the redirect URI with a code.
    fn authorize(
        &self,
        query: &HashMap<String, String>,
    ) -> (String, String, Vec<(String, String)>) {
        let mut state = self.lock();
        let Some(user) = state.signed_in.clone() else {
            return json(
                "403 Forbidden",
                serde_json::json!({"error": "nobody signed in"}),
            );
        };
        let (Some(redirect), Some(challenge)) =
            (query.get("redirect_uri"), query.get("code_challenge"))
        else {
            return oauth_error("invalid_request", "redirect_uri and code_challenge needed");
        };
        if query.get("code_challenge_method").map(String::as_str) != Some("S256") {
            return oauth_error("invalid_request", "S256 only");
        }
        state.next += 1;
        let code = format!("code-{}", state.next);
        state.codes.insert(
            code.clone(),
            CodeRecord {
                user,
                challenge: challenge.clone(),
                redirect_uri: redirect.clone(),
            },
        );
        let state_param = query.get("state").cloned().unwrap_or_default();
        let mut location = url::Url::parse(redirect).expect("a redirect URL");
        location
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &state_param);
        (
            "302 Found".to_string(),
            String::new(),
            vec![("Location".to_string(), location.to_string())],
        )
    }

    async fn serve(&self, mut stream: tokio::net::TcpStream) {
        let (read, mut write) = stream.split();
        let mut reader = BufReader::new(read);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.is_err() {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let parse = |bytes: &[u8]| -> HashMap<String, String> {
            url::form_urlencoded::parse(bytes).into_owned().collect()
        };
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let (status, body, extra) = match (method.as_str(), path) {
            ("POST", "/token") => self.token(&headers, &parse(&body)),
            ("POST", "/introspect") => self.introspect(&parse(&body)),
            ("GET", "/authorize") => self.authorize(&parse(query.as_bytes())),
            _ => json("404 Not Found", serde_json::json!({"error": "not_found"})),
        };
        let mut response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in extra {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&body);
        write.write_all(response.as_bytes()).await.ok();
        write.shutdown().await.ok();
    }
}
