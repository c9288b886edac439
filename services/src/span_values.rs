//! The attribute values a service's spans repeat on every request, built once per service.
//!
//! An attribute that holds a `String` costs an allocation when the span is built and another
//! each time the SDK copies the span: the OTLP/gRPC exporter clones every batch before encoding
//! it, so that it can retry. Values that are the same for every request to a route or every
//! call to a peer route (method, route, server address, peer, URL) are built here once as
//! shared strings, so a span and each copy of it only increment a reference count. Together
//! with the parsed URL and method of each call, this keeps per-request work out of the
//! request path whether or not the request is sampled.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry::{StringValue, Value};
use tracelab_scenario::{Call, Scenario};

use crate::peers::Peers;

/// Shared attribute values for the routes of one service and the calls they make.
#[derive(Debug)]
pub struct SpanValues {
    /// `server.address` of every SERVER span.
    pub server_address: Value,
    routes: HashMap<String, RouteValues>,
    /// By called service, then called route.
    calls: HashMap<String, HashMap<String, CallValues>>,
}

/// What every SERVER span of one route repeats.
#[derive(Debug, Clone)]
pub struct RouteValues {
    /// The span name, `METHOD /path`.
    pub span_name: String,
    /// `http.request.method`.
    pub method: Value,
    /// `http.route` and `url.path` (scenario routes are plain paths, so both are the path).
    pub path: Value,
}

/// What every CLIENT span of one call repeats, and the request it sends to each instance of
/// the called service.
#[derive(Debug, Clone)]
pub struct CallValues {
    /// The span name, `METHOD /route`.
    pub span_name: String,
    /// `http.request.method`, as a string attribute.
    pub method: Value,
    /// The request method.
    pub http_method: http::Method,
    /// `url.template`: the called route.
    pub url_template: Value,
    /// `peer.service`.
    pub peer_service: Value,
    /// Where the call goes, one per instance of the called service, in instance order (at
    /// least one).
    pub instances: Vec<InstanceTarget>,
}

/// One instance a call may reach: its request URL and the attributes that name it.
#[derive(Debug, Clone)]
pub struct InstanceTarget {
    /// Where the request goes and what it asks for, from the URL parsed once; `None` when it
    /// is not an `http://` URL, in which case the call fails as a request to a bad URL does.
    pub wire: Option<Wire>,
    /// `url.full`.
    pub url_full: Value,
    /// `server.address`: the instance's host.
    pub server_address: Value,
    /// `server.port`: the instance's port.
    pub server_port: i64,
}

/// The parts of a call's URL the request needs on the wire.
#[derive(Debug, Clone)]
pub struct Wire {
    /// `host:port` to connect to (port 80 when the URL has none).
    pub address: String,
    /// The `Host` header: the URL's authority.
    pub host: http::HeaderValue,
    /// The request target: path and query.
    pub target: String,
}

impl Wire {
    /// The wire parts of `url`, if it is an `http://` URL with a host.
    pub fn parse(url: &str) -> Option<Self> {
        Self::of(&url.parse().ok()?)
    }

    /// The wire parts of `uri`, if it is an `http://` URL with a host.
    fn of(uri: &http::Uri) -> Option<Self> {
        if uri.scheme_str() != Some("http") {
            return None;
        }
        let authority = uri.authority()?;
        Some(Wire {
            address: format!(
                "{}:{}",
                authority.host(),
                authority.port_u16().unwrap_or(80)
            ),
            host: http::HeaderValue::from_str(authority.as_str()).ok()?,
            target: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

fn shared(s: &str) -> Value {
    Value::String(StringValue::from(Arc::<str>::from(s)))
}

impl SpanValues {
    /// The values of `service`'s routes, and of every call they make to a peer with an address.
    pub fn new(scenario: &Scenario, service: &str, peers: &Peers, listen_host: &str) -> Self {
        let mut values = SpanValues {
            server_address: shared(listen_host),
            routes: HashMap::new(),
            calls: HashMap::new(),
        };
        let Some(spec) = scenario.services.get(service) else {
            return values;
        };
        for (path, route) in &spec.routes {
            values.routes.insert(
                path.clone(),
                RouteValues {
                    span_name: format!("{} {path}", route.method),
                    method: shared(&route.method),
                    path: shared(path),
                },
            );
            for call in route.steps.iter().flat_map(|step| step.calls()) {
                if values.call(&call.service, &call.route).is_some() {
                    continue;
                }
                if let Some(call_values) = CallValues::new(scenario, peers, call) {
                    values
                        .calls
                        .entry(call.service.clone())
                        .or_default()
                        .insert(call.route.clone(), call_values);
                }
            }
        }
        values
    }

    /// The values of the route at `path`.
    pub fn route(&self, path: &str) -> Option<&RouteValues> {
        self.routes.get(path)
    }

    /// The values of a call to `service`'s `route`.
    pub fn call(&self, service: &str, route: &str) -> Option<&CallValues> {
        self.calls.get(service)?.get(route)
    }
}

impl CallValues {
    /// The values of `call`; `None` when the peer has no address.
    pub fn new(scenario: &Scenario, peers: &Peers, call: &Call) -> Option<Self> {
        let method = scenario
            .route(&call.service, &call.route)
            .map_or("GET", |r| r.method.as_str());
        let instances: Vec<InstanceTarget> = peers
            .urls(&call.service)
            .iter()
            .map(|base| InstanceTarget::new(base, &call.route))
            .collect();
        if instances.is_empty() {
            return None;
        }
        Some(CallValues {
            span_name: format!("{method} {}", call.route),
            method: shared(method),
            http_method: http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::GET),
            url_template: shared(&call.route),
            peer_service: shared(&call.service),
            instances,
        })
    }

    /// The target of instance `index`, or of the first instance for an index beyond them
    /// (`None` only for values built without instances, which `new` never makes).
    pub fn instance(&self, index: usize) -> Option<&InstanceTarget> {
        self.instances.get(index).or_else(|| self.instances.first())
    }
}

impl InstanceTarget {
    /// The target of `route` on the instance at `base` (`http://host:port`). The URL is
    /// parsed once, for the wire and for `server.address` / `server.port` (port 80 when it
    /// has none); a URL that does not parse keeps `base` as its address.
    pub fn new(base: &str, route: &str) -> Self {
        let url_text = format!("{base}{route}");
        let uri: Option<http::Uri> = url_text.parse().ok();
        let authority = uri.as_ref().and_then(http::Uri::authority);
        InstanceTarget {
            wire: uri.as_ref().and_then(Wire::of),
            url_full: shared(&url_text),
            server_address: shared(authority.map_or(base, |a| a.host())),
            server_port: i64::from(authority.and_then(|a| a.port_u16()).unwrap_or(80)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_default_to_80() {
        let target = InstanceTarget::new("http://10.0.0.1:8081", "/charge");
        assert_eq!(target.server_address, shared("10.0.0.1"));
        assert_eq!(target.server_port, 8081);
        let target = InstanceTarget::new("http://payment", "/charge");
        assert_eq!(target.server_address, shared("payment"));
        assert_eq!(target.server_port, 80);
    }

    #[test]
    fn a_call_url_becomes_an_address_a_host_and_a_target() {
        let wire = Wire::parse("http://127.0.0.1:8081/charge").unwrap();
        assert_eq!(wire.address, "127.0.0.1:8081");
        assert_eq!(wire.host, "127.0.0.1:8081");
        assert_eq!(wire.target, "/charge");
        let wire = Wire::parse("http://payment/charge?x=1").unwrap();
        assert_eq!(wire.address, "payment:80");
        assert_eq!(wire.host, "payment");
        assert_eq!(wire.target, "/charge?x=1");
        // No TLS in the lab, and no host, no address.
        assert!(Wire::parse("https://payment/charge").is_none());
        assert!(Wire::parse("/charge").is_none());
    }
}
