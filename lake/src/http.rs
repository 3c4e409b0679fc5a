//! A small HTTP/1 server for the endpoints the binaries expose: metrics and
//! health (consumer, refiner) and the status page (inspector). GET only;
//! the handler maps a path and its query to a reply. hyper is in the tree
//! already, under the S3 client.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One request, as handlers see it.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    /// Decoded `name=value` pairs of the query string.
    pub query: Vec<(String, String)>,
}

impl Request {
    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a handler answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Reply {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            content_type,
            body: body.into(),
        }
    }

    pub fn text(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn json(value: &serde_json::Value) -> Reply {
        Reply::new(200, "application/json", value.to_string())
    }

    pub fn not_found() -> Reply {
        Reply::text(404, "not found\n")
    }
}

pub type Handler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// Serves connections from `listener` until the runtime stops, one task per
/// connection.
pub async fn serve(listener: TcpListener, handler: Handler) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(respond(&handler, request).await) }
            });
            // A client that hangs up mid-request is its own business.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(
    handler: &Handler,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let reply = if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD
    {
        Reply::text(405, "only GET\n")
    } else {
        let uri = request.uri();
        handler(Request {
            path: uri.path().to_string(),
            query: uri.query().map(parse_query).unwrap_or_default(),
        })
        .await
    };
    let mut response = hyper::Response::new(Full::new(reply.body));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(reply.content_type),
    );
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `a=1&b=x%20y` → `[("a","1"), ("b","x y")]`.
fn parse_query(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Starts `handler` on `addr` on a thread of its own with its own runtime,
/// so the endpoints answer whatever the caller's threads are doing (a
/// blocking DuckDB query, a long flush), and callable from sync code and
/// from within another runtime alike. Returns the address bound (port 0
/// picks a free one) or a one-line error naming `setting`.
pub fn spawn(addr: &str, setting: &str, handler: Handler) -> Result<std::net::SocketAddr, String> {
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| format!("{setting} {addr:?}: cannot listen: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("{setting} {addr:?}: {e}"))?;
    // The runtime is made on the thread: dropping one inside the caller's
    // runtime (were the thread not to start) would panic.
    std::thread::Builder::new()
        .name(format!("http {bound}"))
        .spawn(move || {
            let served = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|runtime| {
                    runtime.block_on(async move {
                        serve(TcpListener::from_std(listener)?, handler).await;
                        Ok(())
                    })
                });
            if let Err(e) = served {
                tracing::error!(address = %bound, error = %e, "cannot serve HTTP");
            }
        })
        .map_err(|e| format!("{setting}: cannot start the HTTP thread: {e}"))?;
    Ok(bound)
}
