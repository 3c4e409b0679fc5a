//! Just enough HTTP/1.1 to relay S3 requests: reading a message (length or
//! chunked framing, or up to the end of stream for a response), writing one
//! back re-framed with a `Content-Length`, and the proxy's own error answers.

use std::io::{self, BufRead, Write};

/// An HTTP/1.1 message head and body.
pub(super) struct Message {
    /// Request line or status line.
    pub(super) start: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Message {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
            || self.start.ends_with("HTTP/1.0")
    }
}

const MAX_HEAD: usize = 64 * 1024;

/// A start line and its headers.
type Head = (String, Vec<(String, String)>);

/// Reads the start line and headers; `None` on a clean end of stream before any byte.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut start = String::new();
    let mut total = 0;
    loop {
        start.clear();
        let n = reader.read_line(&mut start)?;
        if n == 0 {
            return Ok(None);
        }
        total += n;
        // Tolerate blank lines before a request (RFC 9112 §2.2).
        if !start.trim().is_empty() {
            break;
        }
        if total > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "end of stream inside a message head",
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(Some((
        start.trim_end_matches(['\r', '\n']).to_string(),
        headers,
    )))
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    })
}

fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    match headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        None => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")),
    }
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunked body cut",
            ));
        }
        let size = line
            .trim()
            .split(';')
            .next()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, then the final blank line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// Reads one request from the client; `None` when the client closed the connection.
pub(super) fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Message>> {
    let Some((start, headers)) = read_head(reader)? else {
        return Ok(None);
    };
    let body = if is_chunked(&headers) {
        read_chunked(reader)?
    } else {
        let len = content_length(&headers)?.unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(Message {
        start,
        headers,
        body,
    }))
}

/// Reads one response to a request with `method`, the upstream closing afterwards.
pub(super) fn read_response(reader: &mut impl BufRead, method: &str) -> io::Result<Message> {
    let Some((start, headers)) = read_head(reader)? else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "upstream closed without answering",
        ));
    };
    let status: u16 = start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let no_body = method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304;
    let body = if no_body {
        Vec::new()
    } else if is_chunked(&headers) {
        read_chunked(reader)?
    } else if let Some(len) = content_length(&headers)? {
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        body
    };
    Ok(Message {
        start,
        headers,
        body,
    })
}

pub(super) fn status_of(response: &Message) -> u16 {
    response
        .start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Writes `request` for an upstream connection that carries only this one
/// request, its body re-framed with a length.
pub(super) fn write_request(upstream: &mut impl Write, request: &Message) -> io::Result<()> {
    let mut head = String::with_capacity(512);
    head.push_str(&request.start);
    head.push_str("\r\n");
    for (name, value) in &request.headers {
        // One request per upstream connection; the body is re-framed with a length.
        if name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("keep-alive")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("content-length")
        {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let has_length = request.header("content-length").is_some() || is_chunked(&request.headers);
    if has_length || !request.body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(&request.body)?;
    upstream.flush()
}

/// Writes the upstream's response to the client, re-framed with a length.
pub(super) fn write_response(
    client: &mut impl Write,
    response: &Message,
    method: &str,
    close: bool,
) -> io::Result<()> {
    let head_request = method.eq_ignore_ascii_case("HEAD");
    let status = status_of(response);
    let mut head = String::with_capacity(512);
    head.push_str(&response.start);
    head.push_str("\r\n");
    for (name, value) in &response.headers {
        let framing = name.eq_ignore_ascii_case("transfer-encoding")
            || (!head_request && name.eq_ignore_ascii_case("content-length"));
        if framing
            || name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("keep-alive")
        {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !head_request && !(100..200).contains(&status) && status != 204 && status != 304 {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    client.write_all(head.as_bytes())?;
    if !head_request {
        client.write_all(&response.body)?;
    }
    client.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        412 => "Precondition Failed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

pub(super) fn error_response(
    status: u16,
    code: &str,
    target: &str,
    method: &str,
    request_id: u64,
) -> Vec<u8> {
    let path = target.split('?').next().unwrap_or(target);
    let message = match code {
        "SlowDown" => "Please reduce your request rate.",
        "InternalError" => "We encountered an internal error. Please try again.",
        "ServiceUnavailable" => "Service is unable to handle request.",
        _ => "Injected fault.",
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <Resource>{path}</Resource><RequestId>FAULTPROXY{request_id:08}</RequestId></Error>"
    );
    let head_request = method.eq_ignore_ascii_case("HEAD");
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/xml\r\nx-amz-request-id: FAULTPROXY{request_id:08}\r\nContent-Length: {}\r\n\r\n",
        reason(status),
        if head_request { 0 } else { body.len() }
    )
    .into_bytes();
    if !head_request {
        out.extend_from_slice(body.as_bytes());
    }
    out
}
