//! The two SASL mechanisms that carry an OAuth 2.0 bearer token: Google's and Microsoft's
//! XOAUTH2, and the standard OAUTHBEARER (RFC 7628). Both send the whole credential in the
//! first client response; after a failure the server sends one challenge with a JSON error,
//! which the client must acknowledge (XOAUTH2: an empty response; OAUTHBEARER: `%x01`,
//! RFC 7628 §3.2.3) before the server gives its final answer.

use crate::config::SaslMechanism;

/// A mechanism imipd can log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `XOAUTH2`.
    Xoauth2,
    /// `OAUTHBEARER` (RFC 7628).
    Oauthbearer,
}

impl Mechanism {
    /// The mechanism's name as the protocols write it.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::Oauthbearer => "OAUTHBEARER",
        }
    }

    /// The client's answer to the server's error challenge.
    pub fn failure_ack(self) -> &'static [u8] {
        match self {
            Mechanism::Xoauth2 => b"",
            Mechanism::Oauthbearer => b"\x01",
        }
    }
}

/// Picks the mechanism from what the server offers (`offered`: mechanism names, any case).
/// `auto` prefers the standard OAUTHBEARER. `None`: the server offers none that fits.
pub fn choose<'a>(
    wanted: SaslMechanism,
    offered: impl IntoIterator<Item = &'a str>,
) -> Option<Mechanism> {
    let offered: Vec<String> = offered
        .into_iter()
        .map(|m| m.to_ascii_uppercase())
        .collect();
    let has = |m: Mechanism| offered.iter().any(|o| o == m.name());
    let candidates: &[Mechanism] = match wanted {
        SaslMechanism::Auto => &[Mechanism::Oauthbearer, Mechanism::Xoauth2],
        SaslMechanism::Xoauth2 => &[Mechanism::Xoauth2],
        SaslMechanism::Oauthbearer => &[Mechanism::Oauthbearer],
    };
    candidates.iter().copied().find(|m| has(*m))
}

/// The initial client response of `mechanism` for `user` with `token`, not yet base64-encoded.
/// `host` and `port` are the server's (OAUTHBEARER sends them; XOAUTH2 does not).
pub fn initial_response(
    mechanism: Mechanism,
    user: &str,
    host: &str,
    port: u16,
    token: &str,
) -> Vec<u8> {
    match mechanism {
        Mechanism::Xoauth2 => format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes(),
        Mechanism::Oauthbearer => {
            // RFC 5801 saslname: ',' and '=' are escaped.
            let name = user.replace('=', "=3D").replace(',', "=2C");
            format!("n,a={name},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
                .into_bytes()
        }
    }
}

/// The IMAP side of a login: answers the first (empty) challenge with the credential and any
/// later one (the error report) with the mechanism's acknowledgement. The server's error
/// report is kept for the error message.
pub struct ImapAuthenticator {
    mechanism: Mechanism,
    initial: Option<Vec<u8>>,
    /// The JSON error the server sent, if it refused the token.
    pub error: Option<String>,
}

impl ImapAuthenticator {
    /// An authenticator that sends `initial` (see [`initial_response`]) first.
    pub fn new(mechanism: Mechanism, initial: Vec<u8>) -> ImapAuthenticator {
        ImapAuthenticator {
            mechanism,
            initial: Some(initial),
            error: None,
        }
    }
}

impl async_imap::Authenticator for &mut ImapAuthenticator {
    type Response = Vec<u8>;

    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        match self.initial.take() {
            Some(initial) => initial,
            None => {
                self.error = Some(String::from_utf8_lossy(challenge).into_owned());
                self.mechanism.failure_ack().to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_oauthbearer_and_falls_back_to_xoauth2() {
        let both = ["PLAIN", "xoauth2", "OAUTHBEARER"];
        assert_eq!(
            choose(SaslMechanism::Auto, both),
            Some(Mechanism::Oauthbearer)
        );
        assert_eq!(
            choose(SaslMechanism::Auto, ["PLAIN", "XOAUTH2"]),
            Some(Mechanism::Xoauth2)
        );
        assert_eq!(
            choose(SaslMechanism::Xoauth2, both),
            Some(Mechanism::Xoauth2)
        );
        assert_eq!(choose(SaslMechanism::Oauthbearer, ["XOAUTH2"]), None);
        assert_eq!(choose(SaslMechanism::Auto, ["PLAIN", "LOGIN"]), None);
    }

    #[test]
    fn initial_responses_follow_the_mechanisms_formats() {
        assert_eq!(
            initial_response(Mechanism::Xoauth2, "a@b.test", "h", 1, "T"),
            b"user=a@b.test\x01auth=Bearer T\x01\x01"
        );
        assert_eq!(
            initial_response(
                Mechanism::Oauthbearer,
                "a,x=@b.test",
                "imap.b.test",
                993,
                "T"
            ),
            b"n,a=a=2Cx=3D@b.test,\x01host=imap.b.test\x01port=993\x01auth=Bearer T\x01\x01"
        );
    }

    #[test]
    fn a_refusal_challenge_is_acknowledged_as_the_mechanism_requires() {
        use async_imap::Authenticator;
        for (mechanism, ack) in [
            (Mechanism::Xoauth2, &b""[..]),
            (Mechanism::Oauthbearer, &b"\x01"[..]),
        ] {
            let mut auth = ImapAuthenticator::new(mechanism, b"first".to_vec());
            assert_eq!((&mut auth).process(b""), b"first");
            assert_eq!((&mut auth).process(br#"{"status":"401"}"#), ack);
            assert_eq!(auth.error.as_deref(), Some(r#"{"status":"401"}"#));
        }
    }
}
