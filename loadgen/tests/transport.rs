//! The HTTP/1.1 client against a real TCP server on 127.0.0.1 that answers with scripted
//! bytes: every way RFC 9112 frames an answer, a request split across reads, a server that
//! closes, one that never answers, and the exact bytes of the request head.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracelab_loadgen::{Answer, Connection, HttpTransport, Outgoing, Target, Transport};

/// What the server does after reading one request head.
#[derive(Clone)]
enum Reply {
    /// Writes these pieces, with a short pause between them, and keeps the connection.
    Pieces(Vec<&'static [u8]>),
    /// Writes these bytes, then closes the connection.
    ThenClose(&'static [u8]),
    /// Never answers.
    Silent,
}

/// A server that answers the n-th request on each connection with `replies[n]` (the last
/// one again once they run out) and reports each request head it read, with the number of the
/// connection it came on.
async fn server(replies: Vec<Reply>) -> (Target, mpsc::UnboundedReceiver<(usize, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let authority = listener.local_addr().expect("address").to_string();
    let (heads, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for connection in 0usize.. {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let heads = heads.clone();
            let replies = replies.clone();
            // The n-th request on this connection gets replies[n].
            let mut next = 0usize;
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let head = loop {
                        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head: Vec<u8> = buffer.drain(..end + 4).collect();
                            break String::from_utf8(head).expect("a text head");
                        }
                        let mut chunk = [0u8; 1024];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let _ = heads.send((connection, head));
                    let reply = replies[next.min(replies.len() - 1)].clone();
                    next += 1;
                    match reply {
                        Reply::Pieces(pieces) => {
                            for piece in pieces {
                                if stream.write_all(piece).await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                        }
                        Reply::ThenClose(bytes) => {
                            let _ = stream.write_all(bytes).await;
                            return;
                        }
                        Reply::Silent => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (Target { authority }, seen)
}

fn get(path: &str, target: &Target) -> (http::Method, http::Uri, Vec<u8>) {
    let headers = format!(
        "host: {}\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n",
        target.authority
    );
    (
        http::Method::GET,
        path.parse().expect("path"),
        headers.into_bytes(),
    )
}

async fn send(connection: &mut impl Connection, target: &Target, path: &str) -> Answer {
    let (method, uri, headers) = get(path, target);
    connection
        .send(
            Outgoing {
                method: &method,
                path: &uri,
                headers: &headers,
            },
            Instant::now() + Duration::from_secs(2),
        )
        .await
        .0
}

const OK_LENGTH: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";

#[tokio::test]
async fn a_request_head_goes_out_exactly_and_the_connection_is_reused() {
    let (target, mut seen) = server(vec![Reply::Pieces(vec![OK_LENGTH])]).await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    for _ in 0..3 {
        assert_eq!(
            send(&mut connection, &target, "/shop/buy?x=1").await,
            Answer::Status(200)
        );
        assert!(connection.is_usable(Instant::now()));
    }
    for _ in 0..3 {
        let (on, head) = seen.recv().await.expect("a request");
        assert_eq!(on, 0, "every request on the first connection");
        assert_eq!(
            head,
            format!(
                "GET /shop/buy?x=1 HTTP/1.1\r\nhost: {}\r\ntraceparent: \
                 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n",
                target.authority
            )
        );
    }
}

#[tokio::test]
async fn a_post_says_its_body_is_empty() {
    let (target, mut seen) = server(vec![Reply::Pieces(vec![OK_LENGTH])]).await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    let (_, uri, headers) = get("/orders", &target);
    let answer = connection
        .send(
            Outgoing {
                method: &http::Method::POST,
                path: &uri,
                headers: &headers,
            },
            Instant::now() + Duration::from_secs(2),
        )
        .await
        .0;
    assert_eq!(answer, Answer::Status(200));
    let (_, head) = seen.recv().await.expect("a request");
    assert!(head.starts_with("POST /orders HTTP/1.1\r\n"), "{head}");
    assert!(head.ends_with("content-length: 0\r\n\r\n"), "{head}");
}

#[tokio::test]
async fn an_answer_split_across_reads_is_read_whole() {
    let (target, _seen) = server(vec![Reply::Pieces(vec![
        b"HTTP/1.1 503 Service Unavail",
        b"able\r\nContent-Length: 12\r\nx-a: b\r\n",
        b"\r\nhello",
        b" world!",
    ])])
    .await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    assert_eq!(
        send(&mut connection, &target, "/").await,
        Answer::Status(503)
    );
    assert!(connection.is_usable(Instant::now()));
    assert_eq!(
        send(&mut connection, &target, "/").await,
        Answer::Status(503)
    );
}

#[tokio::test]
async fn a_chunked_answer_with_extensions_and_trailers_is_read_whole() {
    let (target, _seen) = server(vec![Reply::Pieces(vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel",
        b"lo\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n",
        b"\r\n",
    ])])
    .await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    for _ in 0..2 {
        assert_eq!(
            send(&mut connection, &target, "/").await,
            Answer::Status(200)
        );
        assert!(
            connection.is_usable(Instant::now()),
            "the body was read to its end"
        );
    }
}

#[tokio::test]
async fn an_interim_answer_is_skipped_and_a_bodiless_status_has_no_body() {
    let (target, _seen) = server(vec![
        Reply::Pieces(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        ]),
        Reply::Pieces(vec![b"HTTP/1.1 204 No Content\r\n\r\n"]),
        Reply::Pieces(vec![OK_LENGTH]),
    ])
    .await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    assert_eq!(
        send(&mut connection, &target, "/").await,
        Answer::Status(201)
    );
    assert_eq!(
        send(&mut connection, &target, "/").await,
        Answer::Status(204)
    );
    assert_eq!(
        send(&mut connection, &target, "/").await,
        Answer::Status(200)
    );
    assert!(connection.is_usable(Instant::now()));
}

#[tokio::test]
async fn connection_close_and_a_body_framed_by_the_close_end_the_connection() {
    let (target, _seen) = server(vec![Reply::ThenClose(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\ncontent-length: 2\r\n\r\nok",
    )])
    .await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    assert_eq!(
        send(&mut connection, &target, "/").await,
        Answer::Status(200)
    );
    assert!(
        !connection.is_usable(Instant::now()),
        "the server said close"
    );

    let (target, _seen) = server(vec![Reply::ThenClose(
        b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
    )])
    .await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    assert_eq!(
        send(&mut connection, &target, "/").await,
        Answer::Status(200)
    );
    assert!(
        !connection.is_usable(Instant::now()),
        "the body ended with the connection"
    );
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_not_reused() {
    // The server answers, then closes without saying so (an idle timeout).
    let (target, _seen) = server(vec![Reply::ThenClose(OK_LENGTH)]).await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    assert_eq!(
        send(&mut connection, &target, "/").await,
        Answer::Status(200)
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !connection.is_usable(Instant::now()),
        "a closed idle connection must be replaced, not fail the next request"
    );
}

#[tokio::test]
async fn a_garbled_or_cut_answer_is_a_request_error_and_silence_a_timeout() {
    let (target, _seen) = server(vec![Reply::ThenClose(
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
    )])
    .await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    assert_eq!(
        send(&mut connection, &target, "/").await,
        Answer::RequestError
    );
    assert!(!connection.is_usable(Instant::now()));

    let (target, _seen) = server(vec![Reply::ThenClose(b"SMTP ready\r\n\r\n")]).await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    assert_eq!(
        send(&mut connection, &target, "/").await,
        Answer::RequestError
    );

    let (target, _seen) = server(vec![Reply::Silent]).await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    let (method, uri, headers) = get("/", &target);
    let answer = connection
        .send(
            Outgoing {
                method: &method,
                path: &uri,
                headers: &headers,
            },
            Instant::now() + Duration::from_millis(100),
        )
        .await
        .0;
    assert_eq!(answer, Answer::Timeout);
    assert!(
        !connection.is_usable(Instant::now()),
        "an unanswered HTTP/1 connection cannot carry another request"
    );
}

/// Over one connection: a request answered within `first_timeout`, then one the server never
/// answers, with `second_timeout`. How the second ended, and how long after it was sent.
async fn answered_then_silent(
    first_timeout: Duration,
    second_timeout: Duration,
) -> (Answer, Duration) {
    let (target, _seen) = server(vec![Reply::Pieces(vec![OK_LENGTH]), Reply::Silent]).await;
    let mut connection = HttpTransport.connect(&target).await.expect("connected");
    let (method, uri, headers) = get("/", &target);
    let outgoing = || Outgoing {
        method: &method,
        path: &uri,
        headers: &headers,
    };
    let first = connection
        .send(outgoing(), Instant::now() + first_timeout)
        .await
        .0;
    assert_eq!(first, Answer::Status(200));
    let started = Instant::now();
    let (answer, ended) = connection.send(outgoing(), started + second_timeout).await;
    (answer, ended - started)
}

#[tokio::test]
async fn each_request_times_out_at_its_own_deadline_on_a_reused_connection() {
    // The connection's timer is armed for the first request's deadline and moved on when it
    // fires early: the second request, silent, must time out at its own deadline, not at the
    // first one's (already past) nor later.
    let (answer, waited) =
        answered_then_silent(Duration::from_millis(50), Duration::from_millis(300)).await;
    assert_eq!(answer, Answer::Timeout);
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1500),
        "timed out after {waited:?}, not at its 300 ms deadline"
    );
}

#[tokio::test]
async fn a_deadline_earlier_than_the_last_one_still_ends_the_wait() {
    // The timer, armed for a first request's distant deadline, is moved back for a second
    // request's nearer one.
    let (answer, waited) =
        answered_then_silent(Duration::from_secs(30), Duration::from_millis(200)).await;
    assert_eq!(answer, Answer::Timeout);
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "timed out after {waited:?}, not at its 200 ms deadline"
    );
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let authority = listener.local_addr().expect("address").to_string();
    drop(listener);
    let _ = TcpStream::connect(&authority).await;
    let result = HttpTransport.connect(&Target { authority }).await;
    assert!(matches!(result, Err(Answer::ConnectError)));
}
