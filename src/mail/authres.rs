//! `Authentication-Results` (RFC 8601) parsed into per-method results.
//!
//! No maintained crate parses this header: `mail-auth` (Stalwart) only *writes* it, and pulls a
//! DNS resolver and aws-lc in by default. The grammar is small, so it is owned here: comments
//! (nested, with quoted pairs) are dropped, quoted strings are honoured, and anything that does
//! not fit the grammar is skipped rather than failing the whole header — a trust check must see
//! the results it can read, and treats a missing result as "not passed".

use serde::Serialize;

/// One `Authentication-Results` header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuthResults {
    /// The authserv-id: which host made these statements. Only trust headers whose id is one
    /// of your own border MTAs (anyone can write this header before the mail reaches you).
    pub authserv_id: String,
    /// The optional version after the authserv-id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The results in the order written (empty for `; none`).
    pub results: Vec<MethodResult>,
}

/// One `method=result` statement with its reason and properties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MethodResult {
    /// The method, lower case (`dkim`, `spf`, `dmarc`, `arc`, `iprev`, `auth`, …).
    pub method: String,
    /// The result, lower case (`pass`, `fail`, `softfail`, `none`, `neutral`, …).
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `ptype.property=value` in the order written; ptype and property lower case, the value
    /// as written (quotes removed).
    pub properties: Vec<(String, String)>,
}

impl MethodResult {
    /// The value of `ptype.property` (e.g. `header.d`), case-insensitively.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The signing domain of a DKIM result (`header.d`, or the domain of `header.i`), lower case.
    pub fn dkim_domain(&self) -> Option<String> {
        self.property("header.d")
            .map(str::to_string)
            .or_else(|| {
                self.property("header.i")
                    .and_then(|i| i.rsplit_once('@'))
                    .map(|(_, domain)| domain.to_string())
            })
            .map(|d| d.to_ascii_lowercase())
    }

    /// The domain a DMARC result is about (`header.from`), lower case.
    pub fn dmarc_domain(&self) -> Option<String> {
        self.property("header.from").map(|d| d.to_ascii_lowercase())
    }

    /// The envelope sender an SPF result is about (`smtp.mailfrom`), lower case.
    pub fn spf_mailfrom(&self) -> Option<String> {
        self.property("smtp.mailfrom")
            .map(|d| d.to_ascii_lowercase())
    }

    /// `true` when the result is `pass`.
    pub fn passed(&self) -> bool {
        self.result == "pass"
    }
}

impl AuthResults {
    /// The results for one method (`"dkim"`), in order.
    pub fn method<'a>(&'a self, method: &'a str) -> impl Iterator<Item = &'a MethodResult> + 'a {
        self.results
            .iter()
            .filter(move |r| r.method.eq_ignore_ascii_case(method))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Semi,
    Eq,
    Slash,
}

/// Splits the header value into tokens, dropping comments and folding white space. Each token
/// says whether white space (or a comment) came before it: a value such as `header.b=ab/c+=`
/// is glued from several tokens, and only a space ends it.
fn tokenize(value: &str) -> Vec<(Token, bool)> {
    let mut tokens = Vec::new();
    let mut chars = value.chars().peekable();
    let mut word = String::new();
    let mut spaced = false;
    let flush = |word: &mut String, tokens: &mut Vec<(Token, bool)>, spaced: &mut bool| {
        if !word.is_empty() {
            tokens.push((Token::Word(std::mem::take(word)), *spaced));
            *spaced = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                flush(&mut word, &mut tokens, &mut spaced);
                spaced = true;
                let mut depth = 1usize;
                while depth > 0 {
                    match chars.next() {
                        Some('\\') => {
                            chars.next();
                        }
                        Some('(') => depth += 1,
                        Some(')') => depth -= 1,
                        Some(_) => {}
                        None => break,
                    }
                }
            }
            '"' => {
                flush(&mut word, &mut tokens, &mut spaced);
                let mut quoted = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => {
                            if let Some(escaped) = chars.next() {
                                quoted.push(escaped);
                            }
                        }
                        Some('"') | None => break,
                        Some('\r' | '\n') => {}
                        Some(other) => quoted.push(other),
                    }
                }
                tokens.push((Token::Quoted(quoted), spaced));
                spaced = false;
            }
            ';' | '=' | '/' => {
                flush(&mut word, &mut tokens, &mut spaced);
                let token = match c {
                    ';' => Token::Semi,
                    '=' => Token::Eq,
                    _ => Token::Slash,
                };
                tokens.push((token, spaced));
                spaced = false;
            }
            c if c.is_whitespace() => {
                flush(&mut word, &mut tokens, &mut spaced);
                spaced = true;
            }
            c => word.push(c),
        }
    }
    flush(&mut word, &mut tokens, &mut spaced);
    tokens
}

fn text_of(token: Option<&Token>) -> Option<&str> {
    match token {
        Some(Token::Word(w) | Token::Quoted(w)) => Some(w),
        _ => None,
    }
}

/// Parses one `Authentication-Results` header value. Returns `None` when not even an
/// authserv-id can be read.
pub fn parse(value: &str) -> Option<AuthResults> {
    let tokens = tokenize(value);
    let mut statements = tokens.split(|(t, _)| *t == Token::Semi);
    let head = statements.next()?;
    let mut results = Vec::new();
    // Exchange Online omits the authserv-id and starts with `spf=pass …`: read the results and
    // leave the id empty, which no configured trusted id matches.
    let (authserv_id, version) = if head.get(1).map(|(t, _)| t) == Some(&Token::Eq) {
        results.extend(parse_statement(head));
        (String::new(), None)
    } else {
        let id = text_of(head.first().map(|(t, _)| t))?.to_ascii_lowercase();
        let version = match head.get(1) {
            Some((Token::Word(v), _)) if v.chars().all(|c| c.is_ascii_digit()) => Some(v.clone()),
            _ => None,
        };
        (id, version)
    };
    results.extend(statements.filter_map(parse_statement));
    Some(AuthResults {
        authserv_id,
        version,
        results,
    })
}

/// `method [/ version] = result [reason=value] *(ptype.property=value)`.
fn parse_statement(tokens: &[(Token, bool)]) -> Option<MethodResult> {
    let token = |i: usize| tokens.get(i).map(|(t, _)| t);
    let method = match token(0) {
        Some(Token::Word(m)) => m.to_ascii_lowercase(),
        _ => return None,
    };
    let mut at = 1;
    if token(at) == Some(&Token::Slash) {
        at += 2;
    }
    if token(at) != Some(&Token::Eq) {
        // `; none` (no result) and garbage both end here.
        return None;
    }
    let result = text_of(token(at + 1))?.to_ascii_lowercase();
    at += 2;
    let mut reason = None;
    let mut properties = Vec::new();
    while at < tokens.len() {
        let key = match token(at) {
            Some(Token::Word(k)) if token(at + 1) == Some(&Token::Eq) => k,
            _ => {
                at += 1;
                continue;
            }
        };
        let mut value = String::new();
        let mut next = at + 2;
        while let Some((token, spaced)) = tokens.get(next) {
            if *spaced && !value.is_empty() {
                break;
            }
            match token {
                Token::Word(w) | Token::Quoted(w) => value.push_str(w),
                Token::Slash => value.push('/'),
                Token::Eq => value.push('='),
                Token::Semi => break,
            }
            next += 1;
        }
        if key.eq_ignore_ascii_case("reason") {
            reason = Some(value);
        } else if key.contains('.') {
            properties.push((key.to_ascii_lowercase(), value));
        }
        at = next.max(at + 2);
    }
    Some(MethodResult {
        method,
        result,
        reason,
        properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_style_header_yields_dkim_spf_and_dmarc_with_their_domains() {
        let value = "mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=20230601 header.b=Ab/c+D=;\r\n       spf=pass (google.com: domain of alice@example.com designates 2001:db8::1 as permitted sender) smtp.mailfrom=Alice@Example.com;\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com";
        let parsed = parse(value).expect("parsed");
        assert_eq!(parsed.authserv_id, "mx.google.com");
        assert_eq!(parsed.results.len(), 3);
        let dkim = parsed.method("dkim").next().expect("dkim");
        assert!(dkim.passed());
        assert_eq!(dkim.dkim_domain().as_deref(), Some("example.com"));
        assert_eq!(dkim.property("header.b"), Some("Ab/c+D="));
        let spf = parsed.method("spf").next().expect("spf");
        assert_eq!(spf.spf_mailfrom().as_deref(), Some("alice@example.com"));
        let dmarc = parsed.method("dmarc").next().expect("dmarc");
        assert_eq!(dmarc.dmarc_domain().as_deref(), Some("example.com"));
    }

    #[test]
    fn rfc8601_example_with_version_comments_and_quoted_reason() {
        let value = "example.com 1 (comment; with semicolon) ; spf=fail reason=\"bad; sender\" smtp.mailfrom=(x)example.net; dkim/1 = pass header.d=Example.NET";
        let parsed = parse(value).expect("parsed");
        assert_eq!(parsed.version.as_deref(), Some("1"));
        assert_eq!(parsed.results[0].reason.as_deref(), Some("bad; sender"));
        assert_eq!(
            parsed.results[0].spf_mailfrom().as_deref(),
            Some("example.net")
        );
        assert_eq!(parsed.results[1].method, "dkim");
        assert_eq!(
            parsed.results[1].dkim_domain().as_deref(),
            Some("example.net")
        );
    }

    #[test]
    fn none_result_and_garbage_give_no_statements() {
        assert!(
            parse("mx.example.test; none")
                .expect("id")
                .results
                .is_empty()
        );
        assert!(
            parse("mx.example.test; ;;= =")
                .expect("id")
                .results
                .is_empty()
        );
        assert_eq!(parse("   (only a comment)"), None);
    }
}
