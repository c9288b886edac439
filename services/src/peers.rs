//! Where the other services of the scenario listen: one base URL per instance of each.

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

/// Base URLs of peer services, by service name: one per instance, in instance order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    urls: BTreeMap<String, Vec<String>>,
}

impl Peers {
    /// No peers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a peer with one address, checking the URL.
    pub fn insert(&mut self, name: &str, url: &str) -> Result<(), PeerError> {
        let url = checked(name, url)?;
        self.urls.insert(name.to_string(), vec![url]);
        Ok(())
    }

    /// Adds one more instance of a peer, checking the URL; the first makes the peer.
    pub fn add_instance(&mut self, name: &str, url: &str) -> Result<(), PeerError> {
        let url = checked(name, url)?;
        self.urls.entry(name.to_string()).or_default().push(url);
        Ok(())
    }

    /// Parses a `NAME=URL` flag value. A name given again adds an instance: callers balance
    /// over them by the service's policy.
    pub fn insert_flag(&mut self, flag: &str) -> Result<(), PeerError> {
        let (name, url) = flag
            .split_once('=')
            .ok_or_else(|| PeerError::Syntax(flag.to_string()))?;
        self.add_instance(name.trim(), url.trim())
    }

    /// Base URL (`http://host:port`) of `service`, its first instance's when it has several.
    pub fn url(&self, service: &str) -> Option<&str> {
        self.urls
            .get(service)
            .and_then(|urls| urls.first())
            .map(String::as_str)
    }

    /// Base URLs of every instance of `service`, in instance order; empty when unknown.
    pub fn urls(&self, service: &str) -> &[String] {
        self.urls.get(service).map_or(&[], Vec::as_slice)
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

    /// All peers, by name, with the base URL of each instance.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.urls.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// `url` without a trailing `/`, if it is an absolute http URL with nothing after the host.
fn checked(name: &str, url: &str) -> Result<String, PeerError> {
    let trimmed = url.trim_end_matches('/');
    let ok = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(PeerError::Url {
            name: name.to_string(),
            url: url.to_string(),
        })
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

    #[test]
    fn a_name_given_again_adds_an_instance() {
        let mut p = Peers::new();
        p.insert_flag("db=http://10.0.0.1:8080").unwrap();
        p.insert_flag("db=http://10.0.0.2:8080/").unwrap();
        assert_eq!(
            p.urls("db"),
            ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]
        );
        assert_eq!(p.url("db"), Some("http://10.0.0.1:8080"));
        p.insert("db", "http://db:8080").unwrap();
        assert_eq!(p.urls("db"), ["http://db:8080"]);
        assert!(p.urls("cart").is_empty());
    }
}
