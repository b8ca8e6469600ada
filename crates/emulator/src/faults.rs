//! Injected faults that need more than a status code.

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
