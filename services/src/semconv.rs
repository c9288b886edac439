//! Attribute names from the stable OpenTelemetry HTTP and general semantic conventions, kept in
//! one place so a rename in the conventions is a one-line change.

/// HTTP method of the request.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// The matched route template on the server.
pub const HTTP_ROUTE: &str = "http.route";
/// The HTTP status code of the response.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// Retry number of an outgoing request (0 for the first attempt is not recorded).
pub const HTTP_REQUEST_RESEND_COUNT: &str = "http.request.resend_count";
/// Full URL of an outgoing request.
pub const URL_FULL: &str = "url.full";
/// Path of an incoming request.
pub const URL_PATH: &str = "url.path";
/// Scheme of an incoming request.
pub const URL_SCHEME: &str = "url.scheme";
/// Template of an outgoing request's path.
pub const URL_TEMPLATE: &str = "url.template";
/// Host the request was sent to (client) or received on (server).
pub const SERVER_ADDRESS: &str = "server.address";
/// Port the request was sent to (client) or received on (server).
pub const SERVER_PORT: &str = "server.port";
/// Class of error the operation ended with.
pub const ERROR_TYPE: &str = "error.type";
/// HTTP version.
pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
/// The logical name of the service on the other side of a CLIENT span (used by Jaeger and Tempo
/// to draw service graphs when the callee is not instrumented).
pub const PEER_SERVICE: &str = "peer.service";
/// Ground truth: what the scenario injected into this span (`error`, ...).
pub const TRACELAB_INJECTED: &str = "tracelab.injected";
/// Ground truth: the scenario step index a span belongs to.
pub const TRACELAB_STEP: &str = "tracelab.step";
/// Ground truth: the request's origin (`sequence:path`), see [`crate::origin`].
pub const TRACELAB_ORIGIN: &str = "tracelab.origin";
