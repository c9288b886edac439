//! Where the other services of the scenario listen.

use std::collections::BTreeMap;

/// Why a peer address is unusable.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// `--peer` without `=`.
    #[error("invalid peer {0:?}: expected NAME=URL, e.g. payment=http://127.0.0.1:8081")]
    Syntax(String),
    /// The URL is not an absolute http URL.
    #[error("invalid URL for peer `{name}`: {url:?} (expected http://host:port)")]
    Url {
        /// Peer service name.
        name: String,
        /// What was given.
        url: String,
    },
    /// A service this one calls has no address.
    #[error(
        "no address for service `{0}`, which this service calls: pass --peer {0}=http://HOST:PORT or set {env}",
        env = peer_env_var(.0)
    )]
    Missing(String),
}

/// The environment variable that gives a peer's base URL: `TRACELAB_PEER_<NAME>`, the service
/// name upper-cased with `-` turned into `_`.
pub fn peer_env_var(service: &str) -> String {
    format!(
        "TRACELAB_PEER_{}",
        service.to_ascii_uppercase().replace('-', "_")
    )
}

/// Base URLs of peer services, by service name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    urls: BTreeMap<String, String>,
}

impl Peers {
    /// No peers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a peer, checking the URL.
    pub fn insert(&mut self, name: &str, url: &str) -> Result<(), PeerError> {
        let trimmed = url.trim_end_matches('/');
        let ok = trimmed
            .strip_prefix("http://")
            .or_else(|| trimmed.strip_prefix("https://"))
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        if !ok {
            return Err(PeerError::Url {
                name: name.to_string(),
                url: url.to_string(),
            });
        }
        self.urls.insert(name.to_string(), trimmed.to_string());
        Ok(())
    }

    /// Parses a `NAME=URL` flag value.
    pub fn insert_flag(&mut self, flag: &str) -> Result<(), PeerError> {
        let (name, url) = flag
            .split_once('=')
            .ok_or_else(|| PeerError::Syntax(flag.to_string()))?;
        self.insert(name.trim(), url.trim())
    }

    /// Base URL (`http://host:port`) of `service`.
    pub fn url(&self, service: &str) -> Option<&str> {
        self.urls.get(service).map(String::as_str)
    }

    /// Fills in, from `lookup` (the environment), every service of `needed` not given yet, then
    /// fails on the first one still missing.
    pub fn complete_from(
        &mut self,
        needed: impl IntoIterator<Item = String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), PeerError> {
        for name in needed {
            if self.urls.contains_key(&name) {
                continue;
            }
            match lookup(&peer_env_var(&name)) {
                Some(url) => self.insert(&name, &url)?,
                None => return Err(PeerError::Missing(name)),
            }
        }
        Ok(())
    }

    /// All peers, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.urls.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_env_and_missing_peers() {
        let mut p = Peers::new();
        p.insert_flag("payment=http://127.0.0.1:8081/").unwrap();
        assert_eq!(p.url("payment"), Some("http://127.0.0.1:8081"));
        assert!(p.insert_flag("payment").is_err());
        assert!(p.insert_flag("x=127.0.0.1:1").is_err());

        let env =
            |k: &str| (k == "TRACELAB_PEER_AD_SERVICE").then(|| "http://ads:8080".to_string());
        p.complete_from(["ad-service".to_string()], env).unwrap();
        assert_eq!(p.url("ad-service"), Some("http://ads:8080"));
        let err = p.complete_from(["cart".to_string()], env).unwrap_err();
        assert!(err.to_string().contains("TRACELAB_PEER_CART"), "{err}");
    }
}
