//! URLs as they may be shown: in messages, `Debug` output and logs, a URL
//! never carries its user name or password.

use url::Url;

/// `text` with any `user:password@` replaced by `[redacted]@`; a string that
/// is not a URL but could hold one is not shown at all.
pub(crate) fn url(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut parsed) => {
            if !parsed.username().is_empty() || parsed.password().is_some() {
                let _ = parsed.set_username("[redacted]");
                let _ = parsed.set_password(None);
            }
            parsed.to_string()
        }
        Err(_) if text.contains('@') => "[unparsable URL]".to_owned(),
        Err(_) => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_never_shows() {
        assert_eq!(
            url("http://KEY:SECRET@kafka.example:8082/"),
            "http://%5Bredacted%5D@kafka.example:8082/"
        );
        assert_eq!(url("https://SECRET@h/"), "https://%5Bredacted%5D@h/");
        assert_eq!(url("http//KEY:SECRET@h"), "[unparsable URL]");
        assert_eq!(url("http://KEY:SE CRET@h"), "http://%5Bredacted%5D@h/");
        assert_eq!(url("http://KEY:SECRET@h:99999"), "[unparsable URL]");
        assert_eq!(url("https://h:8443/p"), "https://h:8443/p");
        assert_eq!(url("not a url"), "not a url");
    }
}
