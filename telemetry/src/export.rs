//! Where spans go and how they are batched.

use std::time::Duration;

use crate::TelemetryError;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (port 4317 by convention).
    #[default]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318 by convention).
    HttpProtobuf,
}

impl OtlpProtocol {
    /// Parses the values of `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn parse(s: &str) -> Result<Self, TelemetryError> {
        match s.trim() {
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" | "http" => Ok(OtlpProtocol::HttpProtobuf),
            other => Err(TelemetryError::UnsupportedProtocol(other.to_string())),
        }
    }

    /// The spelling used by `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Batch queue settings.
///
/// The SDK defaults (queue 2048, batch 512, delay 5 s) suit production; a lab wants spans to show
/// up quickly, so the delay is short. The queue is still bounded: when it is full, spans are
/// dropped and counted instead of slowing the service down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Spans waiting for export before new ones are dropped.
    pub max_queue_size: usize,
    /// Spans per export request.
    pub max_export_batch_size: usize,
    /// How long a span may wait before its batch is sent.
    pub scheduled_delay: Duration,
    /// Upper bound for one export request.
    pub export_timeout: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_queue_size: 65_536,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_millis(200),
            export_timeout: Duration::from_secs(10),
        }
    }
}

/// The standard batch span processor variables, as [`BatchSettings::from_lookup`] reads them:
/// (variable, what it sets, an example value).
const BSP_VARIABLES: [(&str, &str, &str); 4] = [
    (
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "a whole number of spans, at least 1",
        "65536",
    ),
    (
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "a whole number of spans, at least 1",
        "512",
    ),
    (
        "OTEL_BSP_SCHEDULE_DELAY",
        "a whole number of milliseconds, at least 1",
        "200",
    ),
    (
        "OTEL_BSP_EXPORT_TIMEOUT",
        "a whole number of milliseconds, at least 1",
        "10000",
    ),
];

impl BatchSettings {
    /// The defaults, each replaced by its standard variable where that is set (read through
    /// `lookup`): `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`,
    /// `OTEL_BSP_SCHEDULE_DELAY` and `OTEL_BSP_EXPORT_TIMEOUT` (milliseconds). A batch larger
    /// than the queue is cut to the queue's size, as the SDK does. An empty variable counts as
    /// unset; anything else that is not a positive whole number is refused, naming it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, TelemetryError> {
        let mut values = [None; 4];
        for ((variable, expected, example), value) in BSP_VARIABLES.iter().zip(&mut values) {
            let Some(text) = lookup(variable).filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            match text.trim().parse::<u64>() {
                Ok(n) if n >= 1 => *value = Some(n),
                _ => {
                    return Err(TelemetryError::InvalidSetting {
                        variable,
                        value: text,
                        expected,
                        example,
                    });
                }
            }
        }
        let defaults = BatchSettings::default();
        let size = |n: Option<u64>, default: usize| {
            n.map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        let millis = |n: Option<u64>, default: Duration| n.map_or(default, Duration::from_millis);
        let max_queue_size = size(values[0], defaults.max_queue_size);
        Ok(BatchSettings {
            max_queue_size,
            max_export_batch_size: size(values[1], defaults.max_export_batch_size)
                .min(max_queue_size),
            scheduled_delay: millis(values[2], defaults.scheduled_delay),
            export_timeout: millis(values[3], defaults.export_timeout),
        })
    }
}

/// Where and how to export spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// Base endpoint, e.g. `http://127.0.0.1:4317` (gRPC) or `http://127.0.0.1:4318` (HTTP).
    /// For HTTP, `/v1/traces` is appended unless `traces_endpoint` is set.
    pub endpoint: String,
    /// A full traces URL for HTTP (the `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` semantics: used as is).
    pub traces_endpoint: Option<String>,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Batch queue settings.
    pub batch: BatchSettings,
}

impl ExportConfig {
    /// An exporter to `endpoint` with the default batch settings.
    pub fn new(endpoint: impl Into<String>, protocol: OtlpProtocol) -> Self {
        ExportConfig {
            endpoint: endpoint.into(),
            traces_endpoint: None,
            protocol,
            batch: BatchSettings::default(),
        }
    }

    /// Reads the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`,
    /// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, and `OTEL_BSP_*` as
    /// [`BatchSettings::from_lookup`] does) through `lookup`, so callers decide whether the
    /// process environment or a test map is read. `None` when no endpoint is set.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, TelemetryError> {
        let protocol = match lookup("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| lookup("OTEL_EXPORTER_OTLP_PROTOCOL"))
        {
            Some(p) => OtlpProtocol::parse(&p)?,
            None => OtlpProtocol::Grpc,
        };
        let traces_endpoint =
            lookup("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").filter(|s| !s.is_empty());
        let endpoint = lookup("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|s| !s.is_empty());
        let endpoint = match (endpoint, &traces_endpoint) {
            (Some(e), _) => e,
            (None, Some(t)) => t.clone(),
            (None, None) => return Ok(None),
        };
        let config = ExportConfig {
            endpoint,
            traces_endpoint,
            protocol,
            batch: BatchSettings::from_lookup(&lookup)?,
        };
        config.validate()?;
        Ok(Some(config))
    }

    /// Checks that the endpoints are absolute http(s) URLs.
    pub fn validate(&self) -> Result<(), TelemetryError> {
        for url in std::iter::once(&self.endpoint).chain(self.traces_endpoint.iter()) {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
            if !ok {
                return Err(TelemetryError::InvalidEndpoint(url.clone()));
            }
        }
        Ok(())
    }

    /// The URL the exporter sends to: the base endpoint for gRPC; for HTTP the traces endpoint,
    /// or the base endpoint with `/v1/traces` appended (the specification's rule for the
    /// non-signal-specific variable).
    pub fn export_url(&self) -> String {
        match self.protocol {
            OtlpProtocol::Grpc => self.endpoint.clone(),
            OtlpProtocol::HttpProtobuf => match &self.traces_endpoint {
                Some(t) => t.clone(),
                None => format!("{}/v1/traces", self.endpoint.trim_end_matches('/')),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn no_endpoint_means_no_export() {
        assert_eq!(ExportConfig::from_lookup(lookup(&[])).unwrap(), None);
    }

    #[test]
    fn http_appends_signal_path_to_base_endpoint_only() {
        let c = ExportConfig::from_lookup(lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.export_url(), "http://collector:4318/v1/traces");

        let c = ExportConfig::from_lookup(lookup(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/custom"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.export_url(), "http://c:4318/custom");
    }

    #[test]
    fn grpc_is_the_default_protocol_and_uses_the_base_endpoint() {
        let c = ExportConfig::from_lookup(lookup(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4317",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(c.protocol, OtlpProtocol::Grpc);
        assert_eq!(c.export_url(), "http://127.0.0.1:4317");
    }

    #[test]
    fn bad_protocol_and_endpoint_are_explained() {
        let err = ExportConfig::from_lookup(lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("grpc"), "{err}");
        let err =
            ExportConfig::from_lookup(lookup(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")]))
                .unwrap_err();
        assert!(matches!(err, TelemetryError::InvalidEndpoint(_)));
    }

    #[test]
    fn the_batch_processor_variables_replace_the_lab_defaults() {
        assert_eq!(
            BatchSettings::from_lookup(lookup(&[])).unwrap(),
            BatchSettings::default()
        );
        let b = BatchSettings::from_lookup(lookup(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "256"),
            ("OTEL_BSP_SCHEDULE_DELAY", " 1000 "),
            ("OTEL_BSP_EXPORT_TIMEOUT", ""),
        ]))
        .unwrap();
        assert_eq!(b.max_queue_size, 256);
        assert_eq!(
            b.max_export_batch_size, 256,
            "cut to the queue, as the SDK does"
        );
        assert_eq!(b.scheduled_delay, Duration::from_secs(1));
        assert_eq!(b.export_timeout, BatchSettings::default().export_timeout);
        let c = ExportConfig::from_lookup(lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4317"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.batch.max_export_batch_size, 64);
    }

    #[test]
    fn a_batch_processor_variable_that_is_not_a_positive_number_is_named() {
        for (variable, value) in [
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-5"),
            ("OTEL_BSP_SCHEDULE_DELAY", "5s"),
        ] {
            let err = BatchSettings::from_lookup(lookup(&[(variable, value)])).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("{variable}={value:?} is not a whole number")),
                "{text}"
            );
            assert!(text.contains(&format!("give e.g. {variable}=")), "{text}");
        }
    }
}
