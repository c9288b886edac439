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
/// Database system (`postgresql`, `redis`, ...).
pub const DB_SYSTEM_NAME: &str = "db.system.name";
/// Database operation (`SELECT`, ...).
pub const DB_OPERATION_NAME: &str = "db.operation.name";
/// Database query text.
pub const DB_QUERY_TEXT: &str = "db.query.text";
/// Table or collection.
pub const DB_COLLECTION_NAME: &str = "db.collection.name";
/// Messaging system.
pub const MESSAGING_SYSTEM: &str = "messaging.system";
/// Queue or topic name.
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
/// Messaging operation type (`send`, `process`).
pub const MESSAGING_OPERATION_TYPE: &str = "messaging.operation.type";
/// Ground truth: how long a request waited for a worker of the service's pool, in ms.
pub const TRACELAB_QUEUE_WAIT_MS: &str = "tracelab.queue.wait_ms";
/// Ground truth: how long a step waited for its lock, in ms.
pub const TRACELAB_LOCK_WAIT_MS: &str = "tracelab.lock.wait_ms";
/// Ground truth: whether a cache lookup hit.
pub const TRACELAB_CACHE_HIT: &str = "tracelab.cache.hit";
/// Ground truth: whether local work burned CPU rather than waited.
pub const TRACELAB_WORK_CPU: &str = "tracelab.work.cpu";
/// Ground truth: the time a queued message waited before processing, in ms.
pub const TRACELAB_CONSUMER_LAG_MS: &str = "tracelab.consumer.lag_ms";
/// What was drawn for a span whose duration comes from the scenario's latency model, in
/// milliseconds (the route's own latency on a SERVER span; the step's on work, db and cache
/// spans): the truth the span's duration is compared against.
pub const TRACELAB_LATENCY_DRAWN_MS: &str = "tracelab.latency.drawn_ms";
