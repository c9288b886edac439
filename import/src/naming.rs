//! The names the generated scenario uses for what the traces named: made valid (see
//! [`crate::names`]), or, with `--anonymize`, replaced by numbered placeholders (`service-1`,
//! `/route-2`, `work-3`) given in the order the names first come up. The same traces give the
//! same placeholders, so two imports of one system can be compared; nothing of the original
//! names is kept, and query texts are left out.

use std::collections::HashMap;

use crate::names::{self, Namer};
use crate::observe::Target;

/// Names, original to final.
#[derive(Debug)]
pub(crate) struct Naming {
    anonymize: bool,
    services: Namer,
    routes: HashMap<String, Namer>,
    works: Namer,
    caches: Namer,
    topics: Namer,
    collections: Namer,
    baggage_keys: Namer,
    baggage_values: HashMap<String, Namer>,
}

/// A placeholder: the kind and the number of names of that kind given so far.
fn numbered(prefix: &str, given: usize) -> String {
    format!("{prefix}{}", given + 1)
}

impl Naming {
    pub(crate) fn new(anonymize: bool) -> Self {
        Naming {
            anonymize,
            services: Namer::new(63),
            routes: HashMap::new(),
            works: Namer::new(usize::MAX),
            caches: Namer::new(usize::MAX),
            topics: Namer::new(usize::MAX),
            collections: Namer::new(usize::MAX),
            baggage_keys: Namer::new(usize::MAX),
            baggage_values: HashMap::new(),
        }
    }

    /// The name of a service.
    pub(crate) fn service(&mut self, original: &str) -> String {
        let given = self.services.given();
        match self.anonymize {
            true => self.services.name(original, || numbered("service-", given)),
            false => self
                .services
                .name(original, || names::service_label(original)),
        }
    }

    /// The service and path of a route.
    pub(crate) fn target(&mut self, target: &Target) -> (String, String) {
        let service = self.service(&target.service);
        let namer = self
            .routes
            .entry(target.service.clone())
            .or_insert_with(|| Namer::new(usize::MAX));
        let given = namer.given();
        let route = match self.anonymize {
            true => namer.name(&target.route, || numbered("/route-", given)),
            false => namer.name(&target.route, || target.route.clone()),
        };
        (service, route)
    }

    /// The span name of local work.
    pub(crate) fn work(&mut self, original: &str) -> String {
        let given = self.works.given();
        match self.anonymize {
            true => self.works.name(original, || numbered("work-", given)),
            false if original.trim().is_empty() => "work".to_owned(),
            false => original.to_owned(),
        }
    }

    /// The name of a cache.
    pub(crate) fn cache(&mut self, original: &str) -> String {
        let given = self.caches.given();
        match self.anonymize {
            true => self.caches.name(original, || numbered("cache-", given)),
            false => self
                .caches
                .name(original, || names::token(original, "cache")),
        }
    }

    /// The name of a topic.
    pub(crate) fn topic(&mut self, original: &str) -> String {
        let given = self.topics.given();
        match self.anonymize {
            true => self.topics.name(original, || numbered("topic-", given)),
            false => self
                .topics
                .name(original, || names::token(original, "topic")),
        }
    }

    /// The name of a table or collection.
    pub(crate) fn collection(&mut self, original: &str) -> String {
        let given = self.collections.given();
        match self.anonymize {
            true => self
                .collections
                .name(original, || numbered("table-", given)),
            false => original.to_owned(),
        }
    }

    /// A query text, which anonymizing leaves out.
    pub(crate) fn query(&mut self, original: Option<&str>) -> Option<String> {
        original.filter(|_| !self.anonymize).map(str::to_owned)
    }

    /// A baggage key.
    pub(crate) fn baggage_key(&mut self, original: &str) -> String {
        let given = self.baggage_keys.given();
        match self.anonymize {
            true => self.baggage_keys.name(original, || numbered("key-", given)),
            false => original.to_owned(),
        }
    }

    /// A baggage value of `key` (the original key).
    pub(crate) fn baggage_value(&mut self, key: &str, original: &str) -> String {
        let namer = self
            .baggage_values
            .entry(key.to_owned())
            .or_insert_with(|| Namer::new(usize::MAX));
        let given = namer.given();
        match self.anonymize {
            true => namer.name(original, || numbered("value-", given)),
            false => original.to_owned(),
        }
    }

    /// Whether names are replaced.
    pub(crate) fn anonymized(&self) -> bool {
        self.anonymize
    }
}
