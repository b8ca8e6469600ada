//! Injected faults that need more than a status code.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::response::Response;
use http_body::Frame;

/// A body whose first poll fails, so hyper aborts the connection instead of finishing the
/// response: the client sees a transport error, as when a load balancer drops a connection.
struct Severed;

impl http_body::Body for Severed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "scimsync-emulator: injected connection drop",
        ))))
    }
}

pub fn dropped_connection() -> Response {
    Response::new(Body::new(Severed))
}

/// `200 OK` with an HTML page: what a proxy, a login portal or a maintenance page answers in
/// place of the SCIM service. The request never reached it.
pub fn html_page() -> Response {
    let mut response = Response::new(Body::from(
        "<!DOCTYPE html><html><head><title>Service temporarily unavailable</title></head>\
         <body><h1>We'll be right back</h1><p>The service is under maintenance.</p></body></html>",
    ));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// The handler's answer turned into a `200 OK` of `bytes` bytes: its JSON with a padding field,
/// generated as it is sent (the emulator never holds it). `chunked`: no Content-Length.
pub async fn oversized(response: Response, bytes: u64, chunked: bool) -> Response {
    let (mut parts, body) = response.into_parts();
    let original = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    // `{…}` becomes `{…,"padding":"xxxx…"}`; a non-object answer (204) becomes an object.
    let head = match original.iter().rposition(|&b| b == b'}') {
        Some(end) if end > 1 => {
            let mut head = original[..end].to_vec();
            head.extend_from_slice(b",\"padding\":\"");
            head
        }
        _ => b"{\"padding\":\"".to_vec(),
    };
    let tail = b"\"}".to_vec();
    let padding = bytes.saturating_sub((head.len() + tail.len()) as u64);
    parts.status = axum::http::StatusCode::OK;
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(
        parts,
        Body::new(Padded {
            head: Some(Bytes::from(head)),
            padding,
            tail: Some(Bytes::from(tail)),
            announce: !chunked,
        }),
    )
}

const PAD_CHUNK: usize = 64 << 10;
static PAD: [u8; PAD_CHUNK] = [b'x'; PAD_CHUNK];

/// A JSON head, `padding` bytes of `x`, and a tail, produced frame by frame.
struct Padded {
    head: Option<Bytes>,
    padding: u64,
    tail: Option<Bytes>,
    /// Whether to announce the size (a Content-Length); otherwise chunked.
    announce: bool,
}

impl http_body::Body for Padded {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if self.padding > 0 {
            let n = self.padding.min(PAD_CHUNK as u64);
            self.padding -= n;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                &PAD[..n as usize],
            )))));
        }
        Poll::Ready(self.tail.take().map(|tail| Ok(Frame::data(tail))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let left = self.head.as_ref().map_or(0, |b| b.len() as u64)
            + self.padding
            + self.tail.as_ref().map_or(0, |b| b.len() as u64);
        if self.announce {
            http_body::SizeHint::with_exact(left)
        } else {
            http_body::SizeHint::default()
        }
    }
}

/// The handler's answer with its body trickling in: ten pieces, `over` in all (headers at
/// once). A client with a shorter timeout gives up mid-body.
pub async fn slow(response: Response, over: std::time::Duration) -> Response {
    let (mut parts, body) = response.into_parts();
    let original = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let pieces = 10usize;
    let size = original.len().div_ceil(pieces).max(1);
    let chunks: std::collections::VecDeque<Bytes> =
        original.chunks(size).map(Bytes::copy_from_slice).collect();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(
        parts,
        Body::new(Trickle {
            chunks,
            every: over / pieces as u32,
            sleep: None,
        }),
    )
}

struct Trickle {
    chunks: std::collections::VecDeque<Bytes>,
    every: std::time::Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for Trickle {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.chunks.is_empty() {
            return Poll::Ready(None);
        }
        let every = self.every;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
        match sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.sleep = None;
                Poll::Ready(self.chunks.pop_front().map(|c| Ok(Frame::data(c))))
            }
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.chunks.iter().map(|c| c.len() as u64).sum())
    }
}
