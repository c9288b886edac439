//! Names as a scenario accepts them, made from names as traces carry them, and the
//! placeholders of `--anonymize`.
//!
//! A service name becomes a DNS-1123 label (`Checkout Service` → `checkout-service`), a route
//! a literal path (`/users/{id}` → `/users/id`, an operation name `GetQuote` → `/getquote`),
//! a topic or cache name a plain token. Two different names that end up the same keep apart
//! by a numbered suffix, so the scenario never merges what the traces kept apart.

use std::collections::{HashMap, HashSet};

use tracelab_trace::Span;

use crate::attrs;

/// The methods a scenario route may answer to.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// A DNS-1123 label for `name`: lower case, runs of anything else than letters and digits
/// made one `-`, at most 63 characters; `service` when nothing is left.
pub(crate) fn service_label(name: &str) -> String {
    let mut label = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            label.push(c.to_ascii_lowercase());
        } else if !label.ends_with('-') {
            label.push('-');
        }
    }
    let label: String = label.trim_matches('-').chars().take(63).collect();
    let label = label.trim_end_matches('-').to_owned();
    if label.is_empty() {
        "service".to_owned()
    } else {
        label
    }
}

/// A literal route path for `text`: a leading `/`, parameters (`{id}`, `:id`, `<id>`) kept by
/// name, anything else than letters, digits and `/ - _ . ~` made `-`.
pub(crate) fn route_path(text: &str) -> String {
    let mut path = String::from("/");
    for c in text.trim().trim_start_matches('/').chars() {
        match c {
            c if c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~') => {
                path.push(c)
            }
            '{' | '}' | ':' | '<' | '>' | '*' => {}
            _ if !path.ends_with('-') => path.push('-'),
            _ => {}
        }
    }
    path
}

/// A plain token (letters, digits, `. _ -`) for a topic, cache or lock name.
pub(crate) fn token(text: &str, fallback: &str) -> String {
    let token: String = text
        .trim()
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    if token.trim_matches('-').is_empty() {
        fallback.to_owned()
    } else {
        token
    }
}

/// The route a SERVER (or CONSUMER, or entry) span stands for: its `http.route`, else the path
/// in a `METHOD /path` span name, else the whole name made a path.
pub(crate) fn route_of(span: &Span) -> String {
    if let Some(route) = attrs::route(span) {
        return route_path(route);
    }
    let name = span.name.trim();
    match name.split_once(' ') {
        Some((method, rest)) if is_method(method) && rest.trim_start().starts_with('/') => {
            route_path(rest.trim())
        }
        _ => route_path(&name.to_ascii_lowercase()),
    }
}

/// The method of a SERVER span, from its attributes or its name.
pub(crate) fn method_of(span: &Span) -> Option<String> {
    let from_name = span.name.split_whitespace().next().filter(|m| is_method(m));
    let method = attrs::method(span).or(from_name)?.to_ascii_uppercase();
    METHODS.contains(&method.as_str()).then_some(method)
}

fn is_method(word: &str) -> bool {
    METHODS.iter().any(|m| m.eq_ignore_ascii_case(word))
}

/// Gives each distinct original name a distinct final name: the first to claim a made name
/// keeps it, later ones get `-2`, `-3`, ... (cut so that the name stays within `max_len`).
#[derive(Debug)]
pub(crate) struct Namer {
    max_len: usize,
    assigned: HashMap<String, String>,
    used: HashSet<String>,
}

impl Namer {
    /// A namer whose names are at most `max_len` bytes long (made names are ASCII).
    pub(crate) fn new(max_len: usize) -> Self {
        Namer {
            max_len,
            assigned: HashMap::new(),
            used: HashSet::new(),
        }
    }

    /// The final name for `original`, made by `make` the first time.
    pub(crate) fn name(&mut self, original: &str, make: impl FnOnce() -> String) -> String {
        if let Some(name) = self.assigned.get(original) {
            return name.clone();
        }
        let made = make();
        let mut name = made.clone();
        let mut n = 2;
        while self.used.contains(&name) {
            let suffix = format!("-{n}");
            let keep = made.len().min(self.max_len.saturating_sub(suffix.len()));
            name = format!("{}{suffix}", made[..keep].trim_end_matches('-'));
            n += 1;
        }
        self.used.insert(name.clone());
        self.assigned.insert(original.to_owned(), name.clone());
        name
    }

    /// How many distinct originals were named.
    pub(crate) fn given(&self) -> usize {
        self.assigned.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_become_dns_labels() {
        assert_eq!(service_label("Checkout Service"), "checkout-service");
        assert_eq!(service_label("payment"), "payment");
        assert_eq!(service_label("my.service"), "my-service");
        assert_eq!(service_label("--"), "service");
        assert_eq!(service_label(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn routes_become_literal_paths() {
        assert_eq!(route_path("/users/{id}/orders"), "/users/id/orders");
        assert_eq!(route_path("/items/:item"), "/items/item");
        assert_eq!(route_path("getquote"), "/getquote");
        assert_eq!(route_path("process orders"), "/process-orders");
        assert_eq!(route_path("/"), "/");
    }

    #[test]
    fn distinct_names_stay_distinct() {
        let mut namer = Namer::new(63);
        assert_eq!(
            namer.name("My Service", || service_label("My Service")),
            "my-service"
        );
        assert_eq!(
            namer.name("my_service", || service_label("my_service")),
            "my-service-2"
        );
        assert_eq!(namer.name("My Service", || unreachable!()), "my-service");
        // A made name that is already someone's suffixed name is numbered on.
        assert_eq!(
            namer.name("my-service-2", || "my-service-2".to_owned()),
            "my-service-2-2"
        );
        let long = "a".repeat(63);
        assert_eq!(namer.name("x", || long.clone()), long);
        assert_eq!(
            namer.name("y", || long.clone()),
            format!("{}-2", "a".repeat(61))
        );
    }
}
