//! The traffic listener of a service, which a `down` fault takes down.
//!
//! While the fault is on, new connections are accepted and closed at once (the caller sees a
//! reset or an empty reply, as from a crashed process behind a load balancer), and open
//! keep-alive connections fail on their next read, so a client's connection pool cannot hide
//! the outage.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::faults::FaultTable;

/// A TCP listener that refuses service while a `down` fault is on.
#[derive(Debug)]
pub struct FaultyListener {
    inner: TcpListener,
    faults: Arc<FaultTable>,
}

impl FaultyListener {
    /// Wraps `inner`, reading the `down` state from `faults`.
    pub fn new(inner: TcpListener, faults: Arc<FaultTable>) -> Self {
        FaultyListener { inner, faults }
    }
}

impl tracelab_net::Accept for FaultyListener {
    type Io = FaultyStream;

    async fn accept(&mut self) -> io::Result<(Self::Io, SocketAddr)> {
        loop {
            let (stream, addr) = self.inner.accept().await?;
            if self.faults.is_down() {
                drop(stream);
                continue;
            }
            let _ = stream.set_nodelay(true);
            return Ok((
                FaultyStream {
                    inner: stream,
                    faults: self.faults.clone(),
                },
                addr,
            ));
        }
    }
}

/// An accepted connection whose reads fail while the service is down.
#[derive(Debug)]
pub struct FaultyStream {
    inner: TcpStream,
    faults: Arc<FaultTable>,
}

impl AsyncRead for FaultyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.faults.is_down() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "service is down (injected fault)",
            )));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
