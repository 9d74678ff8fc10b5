//! Content-addressed blobs (envelopes and payloads), one file per SHA-256, and their
//! download with HTTP Range and ETag (RFC 9110 §13–14): a device whose download was cut
//! asks for the rest with `Range: bytes=N-` and `If-Range: "<etag>"`.
//!
//! tower-http's `ServeFile` handles Range but sends no ETag and ignores `If-Range` with an
//! entity tag, so the response is built here; the Range header is parsed and validated by
//! `http-range-header` (the parser `ServeFile` itself uses). Since a blob's name is its
//! digest, its strong ETag is the digest and never changes.

use std::io::SeekFrom;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::error::ApiError;

/// Read size when serving a payload. tokio's file reads are hand-offs to its blocking
/// pool; with the default 4 KiB chunk a 16 MiB download is 4 096 of them and the server
/// reached 0.10–0.21 of nginx's throughput (BENCHMARKS.md §6); 256 KiB brings it level.
const READ_CHUNK: usize = 256 * 1024;

/// The blob directory.
#[derive(Debug)]
pub(crate) struct Blobs {
    dir: PathBuf,
}

/// Whether `s` is a SHA-256 in lower-case hex (the only names ever joined to the path).
pub(crate) fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Blobs {
    pub(crate) fn open(dir: PathBuf) -> std::io::Result<Blobs> {
        std::fs::create_dir_all(dir.join("tmp"))?;
        Ok(Blobs { dir })
    }

    fn path(&self, digest: &str) -> Result<PathBuf, ApiError> {
        if is_digest(digest) {
            Ok(self.dir.join(digest))
        } else {
            Err(ApiError::bad(
                "a blob is named by its SHA-256 in lower-case hex",
            ))
        }
    }

    /// Stores `bytes` under their SHA-256 and returns it. Written to a temporary file,
    /// synced, then renamed: a blob either exists whole or not at all, whenever the
    /// process dies.
    pub(crate) async fn put(&self, bytes: &[u8]) -> Result<String, ApiError> {
        let digest = crate::sha256_hex(bytes);
        let path = self.path(&digest)?;
        if tokio::fs::try_exists(&path).await? {
            return Ok(digest);
        }
        let tmp = self.dir.join("tmp").join(crate::random_hex(8)?);
        let mut f = tokio::fs::File::create(&tmp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut f, bytes).await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(&tmp, &path).await?;
        Ok(digest)
    }

    /// Whether the blob exists.
    pub(crate) async fn exists(&self, digest: &str) -> Result<bool, ApiError> {
        Ok(tokio::fs::try_exists(self.path(digest)?).await?)
    }

    /// The whole blob.
    pub(crate) async fn get(&self, digest: &str) -> Result<Vec<u8>, ApiError> {
        match tokio::fs::read(self.path(digest)?).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError::NotFound("blob")),
            Err(e) => Err(e.into()),
        }
    }

    async fn open_file(&self, digest: &str) -> Result<tokio::fs::File, ApiError> {
        match tokio::fs::File::open(self.path(digest)?).await {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError::NotFound("blob")),
            Err(e) => Err(e.into()),
        }
    }

    /// Up to `max` bytes of the blob from `offset`, and the blob's length (CoAP Block2
    /// reads one block per request: the file is never read whole for it).
    pub(crate) async fn range(
        &self,
        digest: &str,
        offset: u64,
        max: usize,
    ) -> Result<(Vec<u8>, u64), ApiError> {
        let mut file = self.open_file(digest).await?;
        let len = file.metadata().await?.len();
        let mut out = Vec::new();
        if offset < len {
            file.seek(SeekFrom::Start(offset)).await?;
            file.take(max as u64).read_to_end(&mut out).await?;
        }
        Ok((out, len))
    }

    /// The blob as an HTTP response honouring `Range`, `If-Range` and `If-None-Match`.
    pub(crate) async fn serve(
        &self,
        digest: &str,
        content_type: &'static str,
        request: &HeaderMap,
    ) -> Result<Response, ApiError> {
        let mut file = self.open_file(digest).await?;
        let len = file.metadata().await?.len();
        let etag = format!("\"{digest}\"");
        let etag_value =
            HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, etag_value);
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));

        if let Some(inm) = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            && inm.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == etag
            })
        {
            return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
        }

        match wanted_range(request, &etag, len)? {
            None => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                let body = Body::from_stream(ReaderStream::with_capacity(file, READ_CHUNK));
                Ok((StatusCode::OK, headers, body).into_response())
            }
            Some((start, end)) => {
                let count = end - start + 1;
                file.seek(SeekFrom::Start(start)).await?;
                let range = format!("bytes {start}-{end}/{len}");
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&range).map_err(|e| ApiError::Internal(e.to_string()))?,
                );
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
                let body =
                    Body::from_stream(ReaderStream::with_capacity(file.take(count), READ_CHUNK));
                Ok((StatusCode::PARTIAL_CONTENT, headers, body).into_response())
            }
        }
    }
}

/// The one byte range to send (inclusive), or `None` for the whole representation.
///
/// RFC 9110 §14.2: a Range on anything but GET is ignored by the router already; an
/// `If-Range` that does not match the current strong ETag means "send it all"; several
/// ranges are served whole (allowed, and a device asks for one); an unparsable Range
/// header is ignored; a syntactically valid one that misses the representation is 416.
fn wanted_range(request: &HeaderMap, etag: &str, len: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(range) = request.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    if let Some(if_range) = request.get(header::IF_RANGE) {
        // Only a strong comparison with our ETag counts; a date or weak tag fails it.
        if if_range.to_str().ok().map(str::trim) != Some(etag) {
            return Ok(None);
        }
    }
    let Ok(parsed) = http_range_header::parse_range_header(range) else {
        return Ok(None);
    };
    match parsed.validate(len) {
        Ok(ranges) => match ranges.as_slice() {
            [one] => Ok(Some((*one.start(), *one.end()))),
            _ => Ok(None),
        },
        Err(_) => Err(ApiError::RangeNotSatisfiable(len)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const TAG: &str = "\"abc\"";

    #[test]
    fn ranges_per_rfc_9110() {
        let r = |v: &str| wanted_range(&headers(&[(header::RANGE, v)]), TAG, 100);
        assert_eq!(r("bytes=0-9").unwrap(), Some((0, 9)));
        assert_eq!(r("bytes=90-").unwrap(), Some((90, 99)));
        assert_eq!(r("bytes=-10").unwrap(), Some((90, 99)));
        // The end is clamped to the representation.
        assert_eq!(r("bytes=95-200").unwrap(), Some((95, 99)));
        // Several ranges: the whole thing.
        assert_eq!(r("bytes=0-1,5-6").unwrap(), None);
        // Unparsable: ignored.
        assert_eq!(r("lines=1-2").unwrap(), None);
        assert_eq!(r("bytes=x-").unwrap(), None);
        // Starts past the end: 416.
        assert!(matches!(
            r("bytes=100-"),
            Err(ApiError::RangeNotSatisfiable(100))
        ));
    }

    #[test]
    fn if_range_must_match_the_strong_etag() {
        let h = headers(&[(header::RANGE, "bytes=10-"), (header::IF_RANGE, TAG)]);
        assert_eq!(wanted_range(&h, TAG, 100).unwrap(), Some((10, 99)));
        let h = headers(&[
            (header::RANGE, "bytes=10-"),
            (header::IF_RANGE, "\"other\""),
        ]);
        assert_eq!(wanted_range(&h, TAG, 100).unwrap(), None);
        let h = headers(&[
            (header::RANGE, "bytes=10-"),
            (header::IF_RANGE, "W/\"abc\""),
        ]);
        assert_eq!(wanted_range(&h, TAG, 100).unwrap(), None);
    }

    proptest::proptest! {
        /// Whatever the headers say, the answer is the whole body, one in-bounds range,
        /// or 416: never a range past the end, never a panic.
        #[test]
        fn any_range_header_is_safe(range in ".{0,40}", if_range in proptest::option::of(".{0,10}"), len in 0u64..10_000) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&range) {
                h.insert(header::RANGE, v);
            }
            if let Some(v) = if_range.and_then(|s| HeaderValue::from_str(&s).ok()) {
                h.insert(header::IF_RANGE, v);
            }
            if let Ok(Some((start, end))) = wanted_range(&h, TAG, len) {
                proptest::prop_assert!(start <= end && end < len);
            }
        }
    }

    #[test]
    fn only_hex_digests_name_files() {
        assert!(is_digest(&"a".repeat(64)));
        assert!(!is_digest(&"A".repeat(64)));
        assert!(!is_digest("../../etc/passwd"));
        assert!(!is_digest(&"a".repeat(63)));
    }
}
