//! OTLP/gRPC against a real receiver on a loopback port.

#[path = "support/wire.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1 as wire;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tracelab_receiver::{Receiver, ReceiverConfig, SpanSink, TraceStore, otlp_json};

async fn start(store: Arc<TraceStore>, config: ReceiverConfig) -> Receiver {
    Receiver::start(config, store)
        .await
        .expect("receiver starts on free ports")
}

async fn client(receiver: &Receiver) -> TraceServiceClient<Channel> {
    TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .expect("connects")
        .max_encoding_message_size(64 * 1024 * 1024)
}

#[tokio::test]
async fn export_stores_every_field() {
    let store = Arc::new(TraceStore::new());
    let receiver = start(Arc::clone(&store), ReceiverConfig::ephemeral()).await;
    assert_ne!(receiver.grpc_addr().port(), 0, "the bound port is reported");
    assert_eq!(
        receiver.grpc_endpoint(),
        format!("http://127.0.0.1:{}", receiver.grpc_addr().port())
    );

    let response = client(&receiver)
        .await
        .export(support::rich_request())
        .await
        .expect("export succeeds")
        .into_inner();
    assert_eq!(response.partial_success, None);

    support::assert_rich_spans(&store.spans());
    let stats = store.stats();
    assert_eq!(stats.requests_accepted, 1);
    assert_eq!(stats.spans_accepted, 3);
    assert!(stats.bytes_received > 100, "{stats:?}");
    receiver.shutdown().await;
}

#[tokio::test]
async fn gzip_compressed_exports_are_accepted() {
    let store = Arc::new(TraceStore::new());
    let receiver = start(Arc::clone(&store), ReceiverConfig::ephemeral()).await;
    client(&receiver)
        .await
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .export(support::rich_request())
        .await
        .expect("a gzip export succeeds");
    support::assert_rich_spans(&store.spans());
}

#[tokio::test]
async fn spans_with_bad_ids_are_a_partial_success() {
    let store = Arc::new(TraceStore::new());
    let receiver = start(Arc::clone(&store), ReceiverConfig::ephemeral()).await;
    let mut request = support::rich_request();
    request.resource_spans[0].scope_spans[0]
        .spans
        .push(wire::Span {
            trace_id: vec![1; 3],
            span_id: vec![2; 8],
            name: "short trace id".into(),
            ..Default::default()
        });
    let response = client(&receiver)
        .await
        .export(request)
        .await
        .expect("the rest of the request is accepted")
        .into_inner();
    let partial = response.partial_success.expect("partial success reported");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("trace id"), "{partial:?}");
    assert_eq!(store.span_count(), 3);
    assert_eq!(store.stats().spans_rejected, 1);
}

#[tokio::test]
async fn oversized_and_garbage_requests_fail_and_the_server_keeps_serving() {
    let store = Arc::new(TraceStore::new());
    let config = ReceiverConfig {
        max_body_bytes: 4096,
        ..ReceiverConfig::ephemeral()
    };
    let receiver = start(Arc::clone(&store), config).await;
    let mut grpc = client(&receiver).await;

    let mut big = support::rich_request();
    big.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(support::string("blob", &"x".repeat(10_000)));
    let err = grpc.export(big).await.expect_err("over the limit");
    // Not OUT_OF_RANGE, which OTLP exporters retry.
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");

    for garbage in [vec![0xff; 64], b"not a protobuf".to_vec(), vec![0x0a, 0x80]] {
        let err = send_raw(&receiver, garbage)
            .await
            .expect_err("garbage fails");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    }
    let stats = store.stats();
    assert_eq!(stats.requests_rejected_too_large, 1);
    assert_eq!(stats.requests_rejected_malformed, 3);

    grpc.export(support::rich_request())
        .await
        .expect("still serving after bad requests");
    assert_eq!(store.span_count(), 3);
    receiver.shutdown().await;
}

#[tokio::test]
async fn large_batches_over_tonics_default_limit_are_accepted() {
    let store = Arc::new(TraceStore::new());
    let receiver = start(Arc::clone(&store), ReceiverConfig::ephemeral()).await;
    let mut request = support::rich_request();
    request.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(support::string("blob", &"x".repeat(5 * 1024 * 1024)));
    client(&receiver)
        .await
        .export(request)
        .await
        .expect("a 5 MiB request fits the 16 MiB default");
    assert_eq!(store.span_count(), 3);
}

#[tokio::test]
async fn the_sink_holds_one_line_per_request_that_decodes_back_to_the_stored_spans() {
    let path = support::temp_path("grpc-sink.jsonl");
    let store = Arc::new(TraceStore::with_sink(SpanSink::create(&path).unwrap()));
    let receiver = start(Arc::clone(&store), ReceiverConfig::ephemeral()).await;
    let mut grpc = client(&receiver).await;
    for i in 0..3u8 {
        let mut request = support::rich_request();
        for rs in &mut request.resource_spans {
            for ss in &mut rs.scope_spans {
                for span in &mut ss.spans {
                    span.trace_id[0] = i;
                }
            }
        }
        grpc.export(request).await.expect("export succeeds");
    }
    store.flush_sink().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3);
    let from_file = otlp_json::read_file(&path).expect("the sink's file decodes");
    assert_eq!(from_file, store.spans(), "nothing is lost in the file");
    assert_eq!(store.stats().sink_lines_written, 3);
    // The file keeps what the model has no field for, such as the scope version.
    assert!(text.contains(r#""version":"1.2""#), "{text}");
    receiver.shutdown().await;
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn binding_a_busy_port_names_it() {
    let first = start(Arc::new(TraceStore::new()), ReceiverConfig::ephemeral()).await;
    let config = ReceiverConfig {
        grpc_addr: first.grpc_addr(),
        ..ReceiverConfig::ephemeral()
    };
    let err = Receiver::start(config, Arc::new(TraceStore::new()))
        .await
        .expect_err("the port is taken");
    let message = err.to_string();
    assert!(
        message.contains(&format!("port {} in use", first.grpc_addr().port())),
        "{message}"
    );
    assert!(message.contains("--otlp-grpc 127.0.0.1:0"), "{message}");
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let receiver = start(Arc::new(TraceStore::new()), ReceiverConfig::ephemeral()).await;
    let addr = receiver.grpc_addr();
    tokio::time::timeout(Duration::from_secs(15), receiver.shutdown())
        .await
        .expect("shutdown finishes");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Sends `bytes` as the body of an Export call, bypassing protobuf encoding.
async fn send_raw(receiver: &Receiver, bytes: Vec<u8>) -> Result<(), tonic::Status> {
    let channel = Channel::from_shared(receiver.grpc_endpoint())
        .expect("valid endpoint")
        .connect()
        .await
        .expect("connects");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    grpc.unary::<Vec<u8>, Vec<u8>, _>(tonic::Request::new(bytes), path, RawCodec)
        .await
        .map(|_| ())
}

/// A codec that passes bytes through unchanged, to put arbitrary bytes on the wire.
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

#[test]
fn rich_request_is_a_valid_protobuf_round_trip() {
    // Guards the test data itself: if prost could not round-trip it, every test above would
    // be testing the wrong thing.
    use prost::Message;
    let request = support::rich_request();
    let bytes = request.encode_to_vec();
    assert_eq!(
        ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap(),
        request
    );
}
