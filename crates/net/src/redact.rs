//! The one redaction of URLs for logs, errors and banners: [`redact_url`].
//!
//! Every service prints where it connects (database, broker, node), and those URLs may carry a
//! password. Splitting the text on `://`, `@` and `:` by hand got passwords containing `@`, `:`
//! or `/` wrong (part of the password was printed), so this parses with the WHATWG parser of
//! the `url` crate, which finds the userinfo the way the connecting libraries do.

use url::Url;

/// What replaces a password (and the value of a secret query parameter).
pub const REDACTED: &str = "***";

/// `url` with its password replaced by [`REDACTED`], for logs, errors and banners; the user,
/// host, port, path and every other query parameter stay (they say where we connect).
///
/// * The password of the userinfo is replaced whatever it contains (`@`, `:`, `/`, `%40`, …).
/// * Query parameters named like a secret (`password`, `sslpassword`, `passwd`, `secret`,
///   `token`, …: any name containing `pass`, `pwd`, `secret` or `token`, any case) get
///   [`REDACTED`] as value (libpq reads `?password=`).
/// * Text that does not parse as a URL, or that parses with an `@` after the host (a password
///   with an unencoded `/`, `?` or `#` moves the `@` there), is not echoed beyond its scheme:
///   its password cannot be located, so nothing of it is shown. Plain names without `@` or `:`
///   (`in-process`, a file path) are echoed as they are.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) if !after_authority(&parsed).contains('@') => redact_parsed(parsed),
        Ok(parsed) => format!(
            "<a {} URL not shown: an '@' after its host makes its password ambiguous>",
            parsed.scheme()
        ),
        Err(_) if !url.contains(['@', ':']) => url.to_owned(),
        Err(e) => format!("<a value that is not a URL, not shown ({e})>"),
    }
}

/// The path, query and fragment as written (anything after the host and port).
fn after_authority(url: &Url) -> &str {
    &url[url::Position::BeforePath..]
}

fn redact_parsed(mut url: Url) -> String {
    if url.password().is_some() {
        // Fails only for URLs that cannot have credentials (no host), which have no password.
        let _ = url.set_password(Some(REDACTED));
    }
    if url.query_pairs().any(|(name, _)| is_secret_name(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret_name(&name) {
                    REDACTED.to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token"]
        .iter()
        .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_password_is_replaced_and_everything_else_kept() {
        for (url, shown) in [
            (
                "postgres://app:hunter2@db:5432/staking",
                "postgres://app:***@db:5432/staking",
            ),
            (
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                "amqp://guest:***@127.0.0.1:5672/%2f",
            ),
            (
                "http://rpc:s3cret@127.0.0.1:38332/",
                "http://rpc:***@127.0.0.1:38332/",
            ),
            ("postgres://app@db/staking", "postgres://app@db/staking"),
            ("sqlite:/var/x.db", "sqlite:/var/x.db"),
            ("sqlite://./devnet.db", "sqlite://./devnet.db"),
            ("in-process", "in-process"),
            ("devnet-data/stakingd.db", "devnet-data/stakingd.db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn passwords_with_url_delimiters_are_hidden_whole() {
        for (url, shown) in [
            // An unencoded '@' in the password: the last '@' ends the userinfo.
            (
                "postgres://app:p@ss@db:5432/x",
                "postgres://app:***@db:5432/x",
            ),
            ("postgres://app:p:ss@db/x", "postgres://app:***@db/x"),
            ("postgres://app:p%40ss%2F@db/x", "postgres://app:***@db/x"),
            ("amqp://u:a@b@c@broker:5672", "amqp://u:***@broker:5672"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        // An unencoded '/' makes the text mean something else: nothing of it is shown.
        for url in [
            "postgres://app:pa/ss@db/x",
            "postgres://app:12/34@db/x",
            "postgres://app:12?34@db/x",
            "postgres://app:12#34@db/x",
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains("34"), "{url} → {shown}");
            assert!(!shown.contains("pa/ss"), "{url} → {shown}");
        }
    }

    #[test]
    fn a_password_in_the_query_is_hidden() {
        assert_eq!(
            redact_url("postgres://db/x?sslmode=require&password=hunter2&PGPASSWORD=x"),
            "postgres://db/x?sslmode=require&password=***&PGPASSWORD=***"
        );
    }

    /// Secret characters: never used by the fixed parts of the generated URLs nor by the
    /// messages of [`redact_url`], so any of them in the output is a leak.
    const SECRET_LETTERS: &str = "QXZ";

    fn password() -> impl Strategy<Value = String> {
        // Each piece starts with a secret letter, so any leaked piece of two or more
        // characters shows one; the delimiters are the ones that broke hand-written splitting.
        prop::collection::vec(
            (
                prop::sample::select(SECRET_LETTERS.chars().collect::<Vec<_>>()),
                prop::option::of(prop::sample::select(vec![
                    '@', ':', '/', '%', '?', '#', '[', ']', '!', ' ', '&', '=', '+', '4', '0',
                ])),
            ),
            1..12,
        )
        .prop_map(|pieces| {
            pieces
                .into_iter()
                .flat_map(|(letter, delimiter)| std::iter::once(letter).chain(delimiter))
                .collect()
        })
    }

    fn leaks(shown: &str) -> bool {
        shown.contains(|c| SECRET_LETTERS.contains(c))
    }

    proptest! {
        #[test]
        fn the_output_never_contains_the_password(
            scheme in prop::sample::select(vec!["postgres", "postgresql", "amqp", "amqps", "http", "https"]),
            user in "[a-z][a-z0-9_]{0,8}",
            password in password(),
            host in "[a-z][a-z0-9.-]{0,12}",
            port in prop::option::of(1u16..=u16::MAX),
            path in "(/[a-z0-9%]{0,8}){0,2}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let encoded: String = url::form_urlencoded::byte_serialize(password.as_bytes()).collect();
            // As written by someone who did not encode it, and encoded.
            for written in [&password, &encoded] {
                let url = format!("{scheme}://{user}:{written}@{host}{port}{path}");
                let shown = redact_url(&url);
                prop_assert!(!leaks(&shown), "{} → {}", url, shown);
            }
            // In the query only encoded: an unencoded `&` or `#` ends the value there.
            let query = format!("{scheme}://{host}{port}/db?sslmode=require&password={encoded}");
            let shown = redact_url(&query);
            prop_assert!(!leaks(&shown), "{} → {}", query, shown);
        }
    }
}
