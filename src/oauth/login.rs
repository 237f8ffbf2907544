//! `imipd oauth login`: the one-time, interactive step of the delegated flows. It prints the
//! provider's authorisation URL (with PKCE and a CSRF state), takes the authorisation code
//! either from a loopback redirect listener or pasted by the person, exchanges it for tokens
//! and keeps the refresh token in the store.

use super::{OAuthError, endpoints, error_chain, token_key};
use crate::config::{OAuth2Config, OAuth2Flow};
use crate::store::Store;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A started login: the URL to open and what the answer is checked against.
pub struct LoginRequest {
    /// The authorisation URL the person opens in a browser.
    pub url: String,
    /// The redirect URL the code comes back to.
    pub redirect_url: String,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
}

fn setup(mailbox: &str) -> impl Fn(String) -> OAuthError + '_ {
    move |message| OAuthError::Setup {
        mailbox: mailbox.to_string(),
        message,
    }
}

/// Builds the authorisation URL for `config` with `redirect_url`.
pub fn start(
    mailbox: &str,
    config: &OAuth2Config,
    redirect_url: &str,
) -> Result<LoginRequest, OAuthError> {
    let setup = setup(mailbox);
    if config.flow != OAuth2Flow::RefreshToken {
        return Err(setup(
            "flow = \"client_credentials\" needs no login: the daemon gets its tokens with the client secret".into(),
        ));
    }
    let endpoints = endpoints(config).map_err(&setup)?;
    let auth_url = endpoints
        .auth_url
        .clone()
        .ok_or_else(|| setup("set auth_url (or provider) to log in".into()))?;
    let client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_auth_uri(AuthUrl::new(auth_url).map_err(|e| setup(e.to_string()))?)
        .set_redirect_uri(
            RedirectUrl::new(redirect_url.to_string()).map_err(|e| setup(e.to_string()))?,
        );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(endpoints.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    for (name, value) in &endpoints.auth_params {
        request = request.add_extra_param(*name, *value);
    }
    let (url, state) = request.url();
    Ok(LoginRequest {
        url: url.to_string(),
        redirect_url: redirect_url.to_string(),
        state,
        verifier,
    })
}

/// What came back to the redirect URL (or was pasted): the code, after checking the state.
/// `answer` may be the bare code, or the whole redirected URL or its query.
pub fn code_from(request: &LoginRequest, answer: &str) -> Result<String, String> {
    let answer = answer.trim();
    let query = match answer.split_once('?') {
        Some((_, query)) => query,
        None if answer.contains("code=") => answer,
        None => return Ok(answer.to_string()),
    };
    let query = query.split('#').next().unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if let Some(error) = get("error") {
        let description = get("error_description").unwrap_or_default();
        return Err(format!("the provider refused: {error} {description}"));
    }
    if get("state").as_deref() != Some(request.state.secret().as_str()) {
        return Err(
            "the answer's state does not match this login (an old or forged redirect); start again"
                .into(),
        );
    }
    get("code").ok_or_else(|| "the answer holds no code".to_string())
}

/// Exchanges `code` for tokens and stores the refresh token for `mailbox`.
pub async fn finish(
    mailbox: &str,
    config: &OAuth2Config,
    request: LoginRequest,
    code: &str,
    store: &Store,
) -> Result<(), OAuthError> {
    let setup = setup(mailbox);
    let endpoints = endpoints(config).map_err(&setup)?;
    let mut client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_token_uri(
            TokenUrl::new(endpoints.token_url.clone()).map_err(|e| setup(e.to_string()))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(request.redirect_url.clone()).map_err(|e| setup(e.to_string()))?,
        );
    if let Some(secret) = config
        .client_secret(mailbox)
        .map_err(|e| OAuthError::Secret(Box::new(e)))?
    {
        client = client.set_client_secret(ClientSecret::new(secret));
    }
    let http = super::http_client().map_err(&setup)?;
    let token = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(request.verifier)
        .request_async(&http)
        .await
        .map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(r) => OAuthError::Refused {
                mailbox: mailbox.to_string(),
                url: endpoints.token_url.clone(),
                grant: "authorization_code",
                answer: format!(
                    "{}{}",
                    r.error().as_ref(),
                    r.error_description()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
                hint: "the code is single-use and short-lived: start the login again".into(),
            },
            other => OAuthError::Request {
                mailbox: mailbox.to_string(),
                url: endpoints.token_url.clone(),
                reason: error_chain(&other),
            },
        })?;
    let refresh = token.refresh_token().ok_or_else(|| OAuthError::Setup {
        mailbox: mailbox.to_string(),
        message: "the provider sent no refresh token (Microsoft: add the offline_access scope; Google: remove the app's access at myaccount.google.com/permissions and log in again)".into(),
    })?;
    let key = token_key(mailbox, config).map_err(&setup)?;
    store
        .set_oauth_refresh_token(&key, refresh.secret())
        .await?;
    Ok(())
}

/// Waits on `listener` for the browser's redirect, answers it with a short page, and returns
/// the request's path and query (for [`code_from`]). Requests without a code or error (a
/// browser's favicon fetch) are answered 404 and waited past.
pub async fn wait_for_redirect(listener: &TcpListener) -> std::io::Result<String> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let (read, mut write) = stream.split();
        let mut line = String::new();
        let mut reader = BufReader::new(read);
        reader.read_line(&mut line).await?;
        let target = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let answered = target.contains("code=") || target.contains("error=");
        let (status, body) = if answered {
            (
                "200 OK",
                "imipd received the answer; you can close this window and return to the terminal.",
            )
        } else {
            ("404 Not Found", "not here")
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        write.write_all(response.as_bytes()).await.ok();
        write.shutdown().await.ok();
        if answered {
            return Ok(target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> LoginRequest {
        let config: OAuth2Config = ::config::Config::builder()
            .add_source(::config::File::from_str(
                "provider = \"google\"\nflow = \"refresh_token\"\nclient_id = \"cid\"\n",
                ::config::FileFormat::Toml,
            ))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("test config");
        start("a@b.test", &config, "http://127.0.0.1:8765/").expect("a login request")
    }

    #[test]
    fn the_authorisation_url_carries_pkce_state_scope_and_offline_access() {
        let r = request();
        for part in [
            "https://accounts.google.com/o/oauth2/v2/auth?",
            "code_challenge_method=S256",
            "client_id=cid",
            "access_type=offline",
            "scope=https%3A%2F%2Fmail.google.com%2F",
            "redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2F",
        ] {
            assert!(r.url.contains(part), "{part} missing from {}", r.url);
        }
    }

    #[test]
    fn a_pasted_redirect_is_accepted_only_with_this_logins_state() {
        let r = request();
        let state = r.state.secret().clone();
        assert_eq!(
            code_from(
                &r,
                &format!("http://127.0.0.1:8765/?state={state}&code=4%2Fabc")
            ),
            Ok("4/abc".to_string())
        );
        assert_eq!(code_from(&r, "  bare-code \n"), Ok("bare-code".to_string()));
        assert!(code_from(&r, "/?state=forged&code=x").is_err());
        let refused = code_from(&r, &format!("/?state={state}&error=access_denied"));
        assert!(refused.is_err_and(|e| e.contains("access_denied")));
    }
}
