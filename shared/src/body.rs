//! Request bodies as BBB servers take them: read with a size limit, and the Content-Types each
//! call accepts (bbb-web 2.6.18/2.7.8+ rules). Runtime-agnostic: works on any byte stream.

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};

/// The whole body, or `None` once it exceeds `max` bytes (checked while reading, so a huge or
/// endless chunked body costs at most `max` bytes of memory) or the stream fails.
pub async fn read_limited<S, B, E>(body: S, max: usize) -> Option<Bytes>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.ok()?;
        if out.len() + chunk.remaining() > max {
            return None;
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            let n = piece.len();
            out.extend_from_slice(piece);
            chunk.advance(n);
        }
    }
    Some(Bytes::from(out))
}

/// The media types a body of `call` may have.
pub fn accepted_content_types(call: &str) -> &'static [&'static str] {
    match call {
        "create" => &[
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/xml",
            "text/xml",
        ],
        "insertDocument" => &["application/xml", "text/xml"],
        _ => &["application/x-www-form-urlencoded", "multipart/form-data"],
    }
}

/// The media type of a Content-Type header, lower-cased, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_rules() {
        assert_eq!(media_type("Text/XML; charset=UTF-8"), "text/xml");
        assert!(accepted_content_types("create").contains(&"text/xml"));
        assert!(!accepted_content_types("getMeetings").contains(&"application/json"));
        assert_eq!(
            accepted_content_types("insertDocument"),
            ["application/xml", "text/xml"]
        );
    }

    #[test]
    fn bodies_are_read_up_to_the_limit() {
        let chunks = || {
            futures_util::stream::iter(vec![
                Ok::<_, ()>(Bytes::from_static(b"abc")),
                Ok(Bytes::from_static(b"def")),
            ])
        };
        let block_on = |f| futures_util::FutureExt::now_or_never(f).flatten();
        assert_eq!(
            block_on(read_limited(chunks(), 6)),
            Some(Bytes::from_static(b"abcdef"))
        );
        assert_eq!(block_on(read_limited(chunks(), 5)), None);
    }
}
