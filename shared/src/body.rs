//! Request bodies as BBB servers take them: read with a size limit, and the Content-Types each
//! call accepts (bbb-web 2.6.18/2.7.8+ rules). Runtime-agnostic: works on any byte stream.

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};

/// Why a body could not be read whole.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError<E> {
    /// Longer than the limit (checked while reading).
    #[error("request body too large")]
    TooLarge,
    /// The stream failed: a malformed chunked encoding, a closed or timed-out connection.
    #[error("request body could not be read: {0}")]
    Read(E),
}

/// The whole body, or an error once it exceeds `max` bytes (checked while reading, so a huge or
/// endless chunked body costs at most `max` bytes of memory) or the stream fails.
pub async fn read_limited<S, B, E>(body: S, max: usize) -> Result<Bytes, BodyError<E>>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(BodyError::Read)?;
        if out.len() + chunk.remaining() > max {
            return Err(BodyError::TooLarge);
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            let n = piece.len();
            out.extend_from_slice(piece);
            chunk.advance(n);
        }
    }
    Ok(Bytes::from(out))
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
        fn block_on<F: std::future::Future>(f: F) -> F::Output {
            futures_util::FutureExt::now_or_never(f).expect("ready")
        }
        assert_eq!(
            block_on(read_limited(chunks(), 6)),
            Ok(Bytes::from_static(b"abcdef"))
        );
        assert_eq!(
            block_on(read_limited(chunks(), 5)),
            Err(BodyError::TooLarge)
        );
        let failing = futures_util::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Err(7u8)]);
        assert_eq!(block_on(read_limited(failing, 6)), Err(BodyError::Read(7)));
    }
}
