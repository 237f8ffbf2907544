//! OAuth 2.0 for the IMAP and SMTP logins of cloud mailboxes (Microsoft 365, Google
//! Workspace), which no longer take passwords.
//!
//! A [`TokenSource`] hands out access tokens for one mailbox and protocol: from the
//! client-credentials grant (app-only access, as Microsoft 365 service principals use) or the
//! refresh-token grant (Google, delegated Microsoft 365), with the refresh token kept in the
//! store (never in the configuration, never logged). A token is renewed before it expires
//! and, after the server refused it, on the next request; failed token requests are paused
//! with exponential backoff so a revoked grant does not hammer the provider. The `oauth2`
//! crate speaks to the token endpoint (over reqwest with rustls).
//!
//! [`sasl`] builds the XOAUTH2 and OAUTHBEARER exchanges; [`login`] is the one-time
//! `imipd oauth login` that stores the first refresh token.

pub mod login;
pub mod sasl;

use crate::config::{
    AuthMethod, ConfigError, MailboxConfig, OAuth2Config, OAuth2Flow, OAuth2Provider, SaslMechanism,
};
use crate::store::{Store, StoreError};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AccessToken, ClientId, ClientSecret, HttpClientError, RefreshToken, RequestTokenError, Scope,
    StandardErrorResponse, TokenResponse, TokenUrl,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which server a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Smtp,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Smtp => "smtp",
        }
    }
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error(
        "mailbox {mailbox}: no OAuth 2.0 refresh token is stored for client {client_id}; run `imipd oauth login --mailbox {mailbox}` once"
    )]
    NoRefreshToken { mailbox: String, client_id: String },
    #[error(
        "mailbox {mailbox}: the token endpoint {url} refused the {grant} grant: {answer}; {hint}"
    )]
    Refused {
        mailbox: String,
        url: String,
        grant: &'static str,
        /// The OAuth 2.0 error code and the provider's description.
        answer: String,
        /// What to do about it.
        hint: String,
    },
    #[error("mailbox {mailbox}: cannot get a token from {url}: {reason}")]
    Request {
        mailbox: String,
        url: String,
        reason: String,
    },
    #[error(
        "mailbox {mailbox}: token requests paused for {}s after {failures} failure(s) in a row; the last: {last}",
        retry_in.as_secs_f64().ceil()
    )]
    Backoff {
        mailbox: String,
        retry_in: Duration,
        failures: u32,
        last: String,
    },
    #[error("mailbox {mailbox} [{protocol}]: auth = \"oauth2\" but no oauth2 section")]
    NotConfigured {
        mailbox: String,
        protocol: &'static str,
    },
    #[error("mailbox {mailbox}: OAuth 2.0 settings: {message}")]
    Setup { mailbox: String, message: String },
    #[error(transparent)]
    Secret(Box<ConfigError>),
    #[error("the OAuth 2.0 refresh token store: {0}")]
    Store(#[from] StoreError),
}

impl OAuthError {
    /// Whether waiting will not help and a person must act (a revoked or expired grant, a
    /// wrong client secret, a missing refresh token).
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            OAuthError::NoRefreshToken { .. }
                | OAuthError::Refused { .. }
                | OAuthError::NotConfigured { .. }
                | OAuthError::Setup { .. }
                | OAuthError::Secret(_)
        )
    }
}

/// The endpoints and scopes of a configuration, with the provider's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub token_url: String,
    pub auth_url: Option<String>,
    pub scopes: Vec<String>,
    /// Extra parameters of the authorisation URL (Google needs `access_type=offline` to
    /// return a refresh token at all, and `prompt=consent` to return one again).
    pub auth_params: Vec<(&'static str, &'static str)>,
}

/// A provider's token URL, authorisation URL, scopes and authorisation parameters.
type ProviderDefaults = (
    Option<String>,
    Option<String>,
    Vec<String>,
    Vec<(&'static str, &'static str)>,
);

/// Resolves `config`'s endpoints and scopes; the error says what to write.
pub fn endpoints(config: &OAuth2Config) -> Result<Endpoints, String> {
    let (token_url, auth_url, scopes, auth_params): ProviderDefaults = match config.provider {
        None => (None, None, Vec::new(), Vec::new()),
        Some(OAuth2Provider::Google) => {
            if config.flow == OAuth2Flow::ClientCredentials {
                return Err("Google has no client-credentials grant for Gmail; use flow = \"refresh_token\" and `imipd oauth login`".into());
            }
            (
                Some("https://oauth2.googleapis.com/token".into()),
                Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
                vec!["https://mail.google.com/".into()],
                vec![("access_type", "offline"), ("prompt", "consent")],
            )
        }
        Some(OAuth2Provider::Microsoft) => {
            let tenant = config.tenant.as_deref().ok_or(
                "provider = \"microsoft\" needs tenant = \"<tenant id or domain>\"".to_string(),
            )?;
            let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
            let scopes = match config.flow {
                OAuth2Flow::ClientCredentials => {
                    vec!["https://outlook.office365.com/.default".to_string()]
                }
                OAuth2Flow::RefreshToken => vec![
                    "offline_access".to_string(),
                    "https://outlook.office.com/IMAP.AccessAsUser.All".to_string(),
                    "https://outlook.office.com/SMTP.Send".to_string(),
                ],
            };
            (
                Some(format!("{base}/token")),
                Some(format!("{base}/authorize")),
                scopes,
                Vec::new(),
            )
        }
    };
    let token_url =
        config.token_url.clone().or(token_url).ok_or(
            "set token_url = \"https://…/token\" (or provider = \"google\" / \"microsoft\")",
        )?;
    TokenUrl::new(token_url.clone())
        .map_err(|e| format!("token_url {token_url:?} is not a URL: {e}"))?;
    let auth_url = config.auth_url.clone().or(auth_url);
    if let Some(url) = &auth_url {
        oauth2::AuthUrl::new(url.clone())
            .map_err(|e| format!("auth_url {url:?} is not a URL: {e}"))?;
    }
    Ok(Endpoints {
        token_url,
        auth_url,
        scopes: config.scopes.clone().unwrap_or(scopes),
        auth_params,
    })
}

/// Checks an `oauth2` section; the error says what to write.
pub fn validate(config: &OAuth2Config) -> Result<(), String> {
    endpoints(config)?;
    if config.client_id.trim().is_empty() {
        return Err("client_id is empty".into());
    }
    if config.client_secret_file.is_some() && config.client_secret_env.is_some() {
        return Err("set at most one of client_secret_file or client_secret_env".into());
    }
    if config.flow == OAuth2Flow::ClientCredentials
        && config.client_secret_file.is_none()
        && config.client_secret_env.is_none()
    {
        return Err(
            "flow = \"client_credentials\" needs client_secret_file or client_secret_env".into(),
        );
    }
    Ok(())
}

/// The store key of a mailbox's refresh token: one per mailbox, token endpoint and client,
/// so IMAP and SMTP share it when they share the client.
pub fn token_key(mailbox: &str, config: &OAuth2Config) -> Result<String, String> {
    let endpoints = endpoints(config)?;
    Ok(format!(
        "{}\n{}\n{}",
        mailbox.to_ascii_lowercase(),
        endpoints.token_url,
        config.client_id
    ))
}

/// The HTTP client for token endpoints: rustls, no redirects (the oauth2 crate's advice:
/// following one could send the client secret elsewhere), bounded time.
fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

/// How failed token requests are spaced: `initial`, doubled per failure in a row, at most
/// `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The pause after `failures` failures in a row (1, 2, …).
    pub fn delay(&self, failures: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(self.max)
    }
}

/// A token in hand.
#[derive(Clone)]
struct Cached {
    token: AccessToken,
    renew_at: Instant,
    expires_at: Instant,
}

#[derive(Default)]
struct State {
    current: Option<Cached>,
    failures: u32,
    paused_until: Option<Instant>,
    last_error: Option<String>,
}

struct Inner {
    mailbox: String,
    key: String,
    config: OAuth2Config,
    endpoints: Endpoints,
    http: reqwest::Client,
    store: Option<Store>,
    backoff: Backoff,
    state: tokio::sync::Mutex<State>,
}

/// What [`TokenSource::describe`] and [`acquire_token`] report about a token (never the
/// token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// `client_credentials` or `refresh_token`.
    pub flow: &'static str,
    pub token_url: String,
    pub scopes: Vec<String>,
    /// How long the token is still valid.
    pub expires_in: Duration,
}

/// Access tokens for one mailbox and protocol. Cheap to clone; clones share the token.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("mailbox", &self.inner.mailbox)
            .field("token_url", &self.inner.endpoints.token_url)
            .finish_non_exhaustive()
    }
}

/// How long a token without `expires_in` is assumed to live (both big providers say one
/// hour).
const ASSUMED_LIFETIME: Duration = Duration::from_secs(3600);

impl TokenSource {
    /// A source for `mailbox` with `config`; `store` holds the refresh token (required for
    /// the refresh-token flow).
    pub fn new(
        mailbox: &str,
        config: &OAuth2Config,
        store: Option<Store>,
    ) -> Result<TokenSource, OAuthError> {
        let setup = |message: String| OAuthError::Setup {
            mailbox: mailbox.to_string(),
            message,
        };
        validate(config).map_err(setup)?;
        let endpoints = endpoints(config).map_err(setup)?;
        Ok(TokenSource {
            inner: Arc::new(Inner {
                mailbox: mailbox.to_string(),
                key: token_key(mailbox, config).map_err(setup)?,
                config: config.clone(),
                endpoints,
                http: http_client().map_err(setup)?,
                store,
                backoff: Backoff::default(),
                state: tokio::sync::Mutex::new(State::default()),
            }),
        })
    }

    /// The same source with another backoff (tests use short ones).
    pub fn with_backoff(self, backoff: Backoff) -> TokenSource {
        let inner = &self.inner;
        TokenSource {
            inner: Arc::new(Inner {
                mailbox: inner.mailbox.clone(),
                key: inner.key.clone(),
                config: inner.config.clone(),
                endpoints: inner.endpoints.clone(),
                http: inner.http.clone(),
                store: inner.store.clone(),
                backoff,
                state: tokio::sync::Mutex::new(State::default()),
            }),
        }
    }

    /// The mailbox this source is for.
    pub fn mailbox(&self) -> &str {
        &self.inner.mailbox
    }

    /// The configured SASL mechanism choice.
    pub fn mechanism(&self) -> SaslMechanism {
        self.inner.config.mechanism
    }

    /// A valid access token: the one in hand unless it is due for renewal, else a new one
    /// from the token endpoint (unless requests are paused after failures).
    pub async fn token(&self) -> Result<AccessToken, OAuthError> {
        Ok(self.cached().await?.token)
    }

    /// What the current token is (acquiring one if needed), without the secret.
    pub async fn describe(&self) -> Result<TokenInfo, OAuthError> {
        let cached = self.cached().await?;
        Ok(TokenInfo {
            flow: match self.inner.config.flow {
                OAuth2Flow::ClientCredentials => "client_credentials",
                OAuth2Flow::RefreshToken => "refresh_token",
            },
            token_url: self.inner.endpoints.token_url.clone(),
            scopes: self.inner.endpoints.scopes.clone(),
            expires_in: cached.expires_at.saturating_duration_since(Instant::now()),
        })
    }

    /// Forgets `rejected` (the server refused it), so the next [`token`](Self::token) asks
    /// the endpoint for a new one.
    pub async fn invalidate(&self, rejected: &AccessToken) {
        let mut state = self.inner.state.lock().await;
        if state
            .current
            .as_ref()
            .is_some_and(|c| c.token.secret() == rejected.secret())
        {
            state.current = None;
        }
    }

    async fn cached(&self) -> Result<Cached, OAuthError> {
        let mut state = self.inner.state.lock().await;
        let now = Instant::now();
        if let Some(current) = &state.current
            && now < current.renew_at
        {
            return Ok(current.clone());
        }
        if let Some(until) = state.paused_until
            && now < until
        {
            return Err(OAuthError::Backoff {
                mailbox: self.inner.mailbox.clone(),
                retry_in: until - now,
                failures: state.failures,
                last: state.last_error.clone().unwrap_or_default(),
            });
        }
        match self.fetch().await {
            Ok(cached) => {
                state.current = Some(cached.clone());
                state.failures = 0;
                state.paused_until = None;
                state.last_error = None;
                Ok(cached)
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                let delay = self.inner.backoff.delay(state.failures);
                state.paused_until = Some(Instant::now() + delay);
                let text = e.to_string();
                let prefix = format!("mailbox {}: ", self.inner.mailbox);
                state.last_error = Some(text.strip_prefix(&prefix).unwrap_or(&text).to_string());
                // A token that is still valid (only due for renewal) is better than none.
                if let Some(current) = &state.current
                    && Instant::now() < current.expires_at
                {
                    tracing::warn!(error = %e, retry_in_secs = delay.as_secs(), "cannot renew the OAuth 2.0 token; using the current one until it expires");
                    return Ok(current.clone());
                }
                tracing::warn!(error = %e, retry_in_secs = delay.as_secs(), "cannot get an OAuth 2.0 token");
                Err(e)
            }
        }
    }

    /// One request to the token endpoint.
    async fn fetch(&self) -> Result<Cached, OAuthError> {
        let inner = &self.inner;
        let config = &inner.config;
        let secret = config
            .client_secret(&inner.mailbox)
            .map_err(|e| OAuthError::Secret(Box::new(e)))?;
        let mut client = BasicClient::new(ClientId::new(config.client_id.clone())).set_token_uri(
            TokenUrl::new(inner.endpoints.token_url.clone()).map_err(|e| OAuthError::Setup {
                mailbox: inner.mailbox.clone(),
                message: e.to_string(),
            })?,
        );
        if let Some(secret) = secret {
            client = client.set_client_secret(ClientSecret::new(secret));
        }
        let scopes = inner.endpoints.scopes.iter().cloned().map(Scope::new);
        let started = Instant::now();
        let (grant, response) = match config.flow {
            OAuth2Flow::ClientCredentials => (
                "client_credentials",
                client
                    .exchange_client_credentials()
                    .add_scopes(scopes)
                    .request_async(&inner.http)
                    .await,
            ),
            OAuth2Flow::RefreshToken => {
                let store = inner.store.as_ref().ok_or_else(|| OAuthError::Setup {
                    mailbox: inner.mailbox.clone(),
                    message: "the refresh-token flow needs the store (where `imipd oauth login` put the refresh token)".into(),
                })?;
                let refresh = store.oauth_refresh_token(&inner.key)?.ok_or_else(|| {
                    OAuthError::NoRefreshToken {
                        mailbox: inner.mailbox.clone(),
                        client_id: config.client_id.clone(),
                    }
                })?;
                let response = client
                    .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
                    .add_scopes(scopes)
                    .request_async(&inner.http)
                    .await;
                // Providers that rotate refresh tokens (Microsoft) send a new one.
                if let Ok(token) = &response
                    && let Some(new) = token.refresh_token()
                    && new.secret() != &refresh
                {
                    store
                        .set_oauth_refresh_token(&inner.key, new.secret())
                        .await?;
                }
                ("refresh_token", response)
            }
        };
        let token = response.map_err(|e| self.request_error(grant, e))?;
        let lifetime = token.expires_in().unwrap_or(ASSUMED_LIFETIME);
        let margin = Duration::from_secs(config.refresh_margin_secs);
        // Renew `margin` before the end, or halfway through a lifetime shorter than that.
        let renew_after = if lifetime > margin.saturating_mul(2) {
            lifetime - margin
        } else {
            lifetime / 2
        };
        tracing::info!(
            grant,
            expires_in_secs = lifetime.as_secs(),
            "got an OAuth 2.0 access token"
        );
        Ok(Cached {
            token: token.access_token().clone(),
            renew_at: started + renew_after,
            expires_at: started + lifetime,
        })
    }

    fn request_error(
        &self,
        grant: &'static str,
        e: RequestTokenError<
            HttpClientError<reqwest::Error>,
            StandardErrorResponse<BasicErrorResponseType>,
        >,
    ) -> OAuthError {
        let mailbox = self.inner.mailbox.clone();
        let url = self.inner.endpoints.token_url.clone();
        match e {
            RequestTokenError::ServerResponse(response) => {
                let hint = match (response.error(), self.inner.config.flow) {
                    (BasicErrorResponseType::InvalidGrant, OAuth2Flow::RefreshToken) => format!(
                        "the refresh token was revoked or has expired: run `imipd oauth login --mailbox {mailbox}` again"
                    ),
                    (BasicErrorResponseType::InvalidGrant, OAuth2Flow::ClientCredentials) => {
                        "check that the app's permissions were granted admin consent".to_string()
                    }
                    (
                        BasicErrorResponseType::InvalidClient
                        | BasicErrorResponseType::UnauthorizedClient,
                        _,
                    ) => "check client_id and the client secret (has it expired?)".to_string(),
                    (BasicErrorResponseType::InvalidScope, _) => {
                        "check scopes (and the app's API permissions)".to_string()
                    }
                    _ => "see the provider's description".to_string(),
                };
                OAuthError::Refused {
                    mailbox,
                    url,
                    grant,
                    answer: format!(
                        "{}{}",
                        response.error().as_ref(),
                        response
                            .error_description()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                    hint,
                }
            }
            RequestTokenError::Request(e) => OAuthError::Request {
                mailbox,
                url,
                reason: error_chain(&e),
            },
            RequestTokenError::Parse(e, _body) => OAuthError::Request {
                mailbox,
                url,
                reason: format!("the answer is not a token response: {e}"),
            },
            RequestTokenError::Other(reason) => OAuthError::Request {
                mailbox,
                url,
                reason,
            },
        }
    }
}

/// An error and its sources, joined: reqwest's top-level message alone says little.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// How a mailbox logs in to one of its servers.
#[derive(Clone)]
pub enum Credentials {
    /// LOGIN / AUTH PLAIN with this password.
    Password(String),
    /// XOAUTH2 or OAUTHBEARER with tokens from this source.
    OAuth2(TokenSource),
}

/// Never shows the password.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Password(_) => f.write_str("Password(…)"),
            Credentials::OAuth2(source) => f.debug_tuple("OAuth2").field(source).finish(),
        }
    }
}

/// The credentials `mailbox` uses for `protocol`: its password, or a token source (which
/// reads the refresh token from `store`).
pub fn credentials(
    mailbox: &MailboxConfig,
    protocol: Protocol,
    store: Option<Store>,
) -> Result<Credentials, OAuthError> {
    let (auth, login, oauth2) = match protocol {
        Protocol::Imap => (
            mailbox.imap.auth,
            &mailbox.imap.login,
            mailbox.imap.oauth2.as_ref(),
        ),
        Protocol::Smtp => (
            mailbox.smtp.auth,
            &mailbox.smtp.login,
            mailbox.smtp_oauth2(),
        ),
    };
    match auth {
        AuthMethod::Password => login
            .password(&mailbox.address)
            .map(Credentials::Password)
            .map_err(|e| OAuthError::Secret(Box::new(e))),
        AuthMethod::Oauth2 => {
            let config = oauth2.ok_or_else(|| OAuthError::NotConfigured {
                mailbox: mailbox.address.clone(),
                protocol: protocol.name(),
            })?;
            TokenSource::new(&mailbox.address, config, store).map(Credentials::OAuth2)
        }
    }
}

/// For `imipd check --connect`: acquires a token for `mailbox`'s `protocol` as the daemon
/// would and says what it got. `Ok(None)`: that protocol logs in with a password.
pub async fn acquire_token(
    mailbox: &MailboxConfig,
    protocol: Protocol,
    store: Option<Store>,
) -> Result<Option<TokenInfo>, OAuthError> {
    match credentials(mailbox, protocol, store)? {
        Credentials::Password(_) => Ok(None),
        Credentials::OAuth2(source) => source.describe().await.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> OAuth2Config {
        toml_from(text)
    }

    fn toml_from(text: &str) -> OAuth2Config {
        let loaded = ::config::Config::builder()
            .add_source(::config::File::from_str(text, ::config::FileFormat::Toml))
            .build()
            .expect("test TOML");
        loaded.try_deserialize().expect("an oauth2 section")
    }

    #[test]
    fn microsoft_app_only_fills_in_the_tenant_endpoint_and_the_default_scope() {
        let c = config(
            "provider = \"microsoft\"\ntenant = \"contoso.onmicrosoft.com\"\nflow = \"client_credentials\"\nclient_id = \"abc\"\nclient_secret_env = \"S\"\n",
        );
        let e = endpoints(&c).expect("valid");
        assert_eq!(
            e.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(e.scopes, ["https://outlook.office365.com/.default"]);
        assert!(validate(&c).is_ok());
    }

    #[test]
    fn google_asks_for_the_mail_scope_and_an_offline_grant() {
        let c = config("provider = \"google\"\nflow = \"refresh_token\"\nclient_id = \"abc\"\n");
        let e = endpoints(&c).expect("valid");
        assert_eq!(e.scopes, ["https://mail.google.com/"]);
        assert!(e.auth_params.contains(&("access_type", "offline")));
    }

    #[test]
    fn invalid_sections_say_what_to_write() {
        for (text, expected) in [
            (
                "provider = \"microsoft\"\nflow = \"refresh_token\"\nclient_id = \"a\"\n",
                "tenant",
            ),
            ("flow = \"refresh_token\"\nclient_id = \"a\"\n", "token_url"),
            (
                "flow = \"client_credentials\"\nclient_id = \"a\"\ntoken_url = \"https://t.test/token\"\n",
                "client_secret_file",
            ),
            (
                "provider = \"google\"\nflow = \"client_credentials\"\nclient_id = \"a\"\nclient_secret_env = \"S\"\n",
                "refresh_token",
            ),
            (
                "flow = \"refresh_token\"\nclient_id = \"a\"\ntoken_url = \"not a url\"\n",
                "not a URL",
            ),
        ] {
            let message = validate(&config(text)).expect_err(text);
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    #[test]
    fn the_provider_presets_load_with_their_endpoints() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/providers");
        for (file, token_url, mechanism_scope) in [
            (
                "microsoft365.toml",
                "https://login.microsoftonline.com/<tenant ID or contoso.onmicrosoft.com>/oauth2/v2.0/token",
                "https://outlook.office365.com/.default",
            ),
            (
                "gmail.toml",
                "https://oauth2.googleapis.com/token",
                "https://mail.google.com/",
            ),
        ] {
            let config = crate::config::Config::load(&dir.join(file)).expect(file);
            let mailbox = &config.mailboxes[0];
            assert_eq!(mailbox.imap.auth, AuthMethod::Oauth2);
            assert_eq!(mailbox.smtp.auth, AuthMethod::Oauth2);
            let smtp = mailbox
                .smtp_oauth2()
                .expect("SMTP falls back to the IMAP section");
            let e = endpoints(smtp).expect("valid");
            assert_eq!(e.token_url, token_url);
            assert_eq!(e.scopes, [mechanism_scope]);
        }
    }

    #[test]
    fn a_mailbox_with_oauth2_needs_the_section_and_no_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("imipd.toml");
        let base = "[store]\npath = \"s\"\n[[mailbox]]\naddress = \"r@x.test\"\n[mailbox.imap]\nhost = \"h\"\nport = 993\ntls = \"implicit\"\nauth = \"oauth2\"\n{IMAP}[mailbox.smtp]\nhost = \"h\"\nport = 465\ntls = \"implicit\"\nauth = \"oauth2\"\n";
        let section = "[mailbox.imap.oauth2]\nflow = \"refresh_token\"\nclient_id = \"c\"\ntoken_url = \"https://t.test/token\"\n";
        for (imap, expected) in [
            ("", "there is no [mailbox.imap.oauth2] section"),
            (
                &format!("password_env = \"P\"\n{section}")[..],
                "uses no password_file",
            ),
        ] {
            std::fs::write(&path, base.replace("{IMAP}", imap)).expect("write");
            let error = crate::config::Config::load(&path).expect_err(expected);
            assert!(error.to_string().contains(expected), "{error}");
        }
        std::fs::write(&path, base.replace("{IMAP}", section)).expect("write");
        crate::config::Config::load(&path).expect("SMTP shares the IMAP section");
    }

    #[test]
    fn credentials_never_show_the_password() {
        let shown = format!("{:?}", Credentials::Password("hunter2".into()));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), Duration::from_secs(5));
        assert_eq!(b.delay(3), Duration::from_secs(20));
        assert_eq!(b.delay(40), Duration::from_secs(900));
    }
}
