//! The `aws-chunked` content encoding of S3 streaming uploads, decoded incrementally.
//!
//! Clients that stream a body of unknown hash send it in chunks: `hex-size[;chunk-signature=sig]
//! CRLF data CRLF`, ending with a zero-size chunk and optional trailers (`x-amz-checksum-crc32:..`).
//! With `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` every chunk is signed, each signature
//! chaining the previous one from the request's seed signature, so a chunk cannot be altered,
//! dropped or reordered; `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (what botocore sends over HTTPS)
//! carries no chunk signatures and relies on TLS and the trailing checksum.
//!
//! This is a sans-I/O state machine: the caller pushes body frames in and pulls payload bytes
//! out, so the body streams to disk and never sits in memory whole.

use aws_lc_rs::{digest, hmac};
use bytes::{Buf, Bytes, BytesMut};
use drover_aws::sigv4::EMPTY_SHA256;

use crate::error::{S3Error, S3Result};

/// A chunk header line longer than this is refused (real ones are under 100 bytes).
const MAX_LINE: usize = 4096;
/// Trailer section size limit.
const MAX_TRAILERS: usize = 16 * 1024;

/// What signs the chunks: the request's signing key, date, scope and seed signature.
pub struct ChunkSigner {
    pub key: hmac::Key,
    pub amz_date: String,
    pub scope: String,
    /// The signature of the previous chunk (the request's signature for the first).
    pub previous: String,
}

impl ChunkSigner {
    fn chunk_signature(&self, chunk_sha256: &[u8]) -> String {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex::encode(chunk_sha256)
        );
        hex::encode(hmac::sign(&self.key, string_to_sign.as_bytes()))
    }

    fn trailer_signature(&self, trailer_bytes: &[u8]) -> String {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex::encode(digest::digest(&digest::SHA256, trailer_bytes))
        );
        hex::encode(hmac::sign(&self.key, string_to_sign.as_bytes()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Data { remaining: u64 },
    DataEnd,
    Trailers,
    Done,
}

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Payload bytes, in order.
    Data(Bytes),
    /// Push more input (or call [`Decoder::finish`] at end of body).
    NeedMore,
    /// The final chunk and trailers were read (and verified).
    Done,
}

/// Incremental aws-chunked decoder.
pub struct Decoder {
    buf: BytesMut,
    state: State,
    signer: Option<Box<ChunkSigner>>,
    chunk_hash: Option<digest::Context>,
    chunk_signature: Option<String>,
    /// Trailing headers (`name`, `value`), names lower-case.
    pub trailers: Vec<(String, String)>,
    trailer_bytes: Vec<u8>,
    /// Payload bytes produced so far.
    pub decoded_len: u64,
}

impl Decoder {
    /// `signer` is `Some` for the signed variants; every chunk signature is then verified.
    pub fn new(signer: Option<Box<ChunkSigner>>) -> Self {
        Self {
            buf: BytesMut::new(),
            state: State::Header,
            signer,
            chunk_hash: None,
            chunk_signature: None,
            trailers: Vec::new(),
            trailer_bytes: Vec::new(),
            decoded_len: 0,
        }
    }

    pub fn push(&mut self, input: &[u8]) {
        self.buf.extend_from_slice(input);
    }

    /// The next step given the input pushed so far.
    pub fn step(&mut self) -> S3Result<Step> {
        loop {
            match self.state {
                State::Done => return Ok(Step::Done),
                State::Header => {
                    let Some(line) = self.take_line()? else {
                        return Ok(Step::NeedMore);
                    };
                    let (size, signature) = parse_header(&line)?;
                    if self.signer.is_some() {
                        let sig = signature.ok_or_else(S3Error::signature_mismatch)?;
                        self.chunk_signature = Some(sig);
                        self.chunk_hash = Some(digest::Context::new(&digest::SHA256));
                    }
                    if size == 0 {
                        self.verify_chunk()?;
                        self.state = State::Trailers;
                    } else {
                        self.state = State::Data { remaining: size };
                    }
                }
                State::Data { remaining } => {
                    if self.buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = remaining.min(self.buf.len() as u64) as usize;
                    let data = self.buf.split_to(n).freeze();
                    if let Some(h) = self.chunk_hash.as_mut() {
                        h.update(&data);
                    }
                    self.decoded_len += n as u64;
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data { remaining: left }
                    };
                    return Ok(Step::Data(data));
                }
                State::DataEnd => {
                    if self.buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(S3Error::incomplete_body());
                    }
                    self.buf.advance(2);
                    self.verify_chunk()?;
                    self.state = State::Header;
                }
                State::Trailers => {
                    let Some(line) = self.take_line()? else {
                        return Ok(Step::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = State::Done;
                        continue;
                    }
                    let (name, value) = line
                        .split_once(':')
                        .ok_or_else(|| S3Error::invalid_argument("Malformed trailer"))?;
                    let name = name.trim().to_ascii_lowercase();
                    let value = value.trim().to_string();
                    if name == "x-amz-trailer-signature" {
                        if let Some(signer) = self.signer.as_ref() {
                            let expected = signer.trailer_signature(&self.trailer_bytes);
                            if !eq(&expected, &value.to_ascii_lowercase()) {
                                return Err(S3Error::signature_mismatch());
                            }
                        }
                        continue;
                    }
                    self.trailer_bytes
                        .extend_from_slice(format!("{name}:{value}\n").as_bytes());
                    if self.trailer_bytes.len() > MAX_TRAILERS {
                        return Err(S3Error::invalid_argument("Trailers too large"));
                    }
                    self.trailers.push((name, value));
                }
            }
        }
    }

    /// Called at the end of the body: the encoding must be complete. A body that ends after
    /// the final chunk's trailers without the closing empty line is accepted, as S3 does.
    pub fn finish(&mut self) -> S3Result<()> {
        if self.state == State::Trailers && self.buf.iter().all(|b| b.is_ascii_whitespace()) {
            self.state = State::Done;
        }
        if self.state == State::Done {
            Ok(())
        } else {
            Err(S3Error::incomplete_body())
        }
    }

    fn verify_chunk(&mut self) -> S3Result<()> {
        let (Some(signer), Some(hash), Some(claimed)) = (
            self.signer.as_mut(),
            self.chunk_hash.take(),
            self.chunk_signature.take(),
        ) else {
            return Ok(());
        };
        let expected = signer.chunk_signature(hash.finish().as_ref());
        if !eq(&expected, &claimed.to_ascii_lowercase()) {
            return Err(S3Error::signature_mismatch());
        }
        signer.previous = expected;
        Ok(())
    }

    /// A line without its CRLF (a bare LF is tolerated), or `None` if incomplete.
    fn take_line(&mut self) -> S3Result<Option<String>> {
        let Some(pos) = self.buf.iter().position(|&b| b == b'\n') else {
            if self.buf.len() > MAX_LINE {
                return Err(S3Error::invalid_argument("aws-chunked line too long"));
            }
            return Ok(None);
        };
        let mut line = self.buf.split_to(pos + 1);
        line.truncate(pos);
        if line.last() == Some(&b'\r') {
            line.truncate(pos - 1);
        }
        String::from_utf8(line.to_vec())
            .map(Some)
            .map_err(|_| S3Error::invalid_argument("aws-chunked line is not UTF-8"))
    }
}

fn parse_header(line: &str) -> S3Result<(u64, Option<String>)> {
    let mut parts = line.split(';');
    let size_hex = parts.next().unwrap_or("").trim();
    let size = u64::from_str_radix(size_hex, 16)
        .map_err(|_| S3Error::invalid_argument(format!("Bad aws-chunked size '{size_hex}'")))?;
    let signature = parts
        .filter_map(|p| p.trim().strip_prefix("chunk-signature="))
        .map(str::to_string)
        .next();
    Ok((size, signature))
}

fn eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_aws::sigv4;

    fn decode_all(decoder: &mut Decoder, input: &[u8], piece: usize) -> S3Result<Vec<u8>> {
        let mut out = Vec::new();
        for frame in input.chunks(piece) {
            decoder.push(frame);
            while let Step::Data(d) = decoder.step()? {
                out.extend_from_slice(&d);
            }
        }
        decoder.finish()?;
        Ok(out)
    }

    #[test]
    fn unsigned_with_trailer_in_any_framing() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for piece in [1, 2, 3, 7, 100] {
            let mut d = Decoder::new(None);
            assert_eq!(decode_all(&mut d, body, piece).unwrap(), b"hello world");
            assert_eq!(
                d.trailers,
                vec![("x-amz-checksum-crc32".into(), "DUoRhQ==".into())]
            );
        }
    }

    #[test]
    fn truncated_bodies_are_refused() {
        let mut d = Decoder::new(None);
        assert!(decode_all(&mut d, b"5\r\nhel", 100).is_err());
        let mut d = Decoder::new(None);
        assert!(decode_all(&mut d, b"5\r\nhelloX\r\n", 100).is_err());
        let mut d = Decoder::new(None);
        assert!(decode_all(&mut d, b"zz\r\n", 100).is_err());
    }

    /// The example of AWS's "Signature Calculations for the Authorization Header: Transferring
    /// Payload in Multiple Chunks": 66560 bytes of 'a' in chunks of 65536 and 1024.
    fn aws_example_signer() -> ChunkSigner {
        ChunkSigner {
            key: sigv4::signing_key(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "20130524",
                "us-east-1",
                "s3",
            ),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            previous: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        }
    }

    fn aws_example_body(first_sig: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(format!("10000;chunk-signature={first_sig}\r\n").as_bytes());
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        body
    }

    #[test]
    fn aws_documented_chunk_signatures_verify() {
        let body =
            aws_example_body("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
        let mut d = Decoder::new(Some(Box::new(aws_example_signer())));
        let out = decode_all(&mut d, &body, 8192).unwrap();
        assert_eq!(out.len(), 66560);
        assert_eq!(d.decoded_len, 66560);
    }

    #[test]
    fn a_tampered_chunk_is_refused() {
        let mut body =
            aws_example_body("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
        body[100] = b'b';
        let mut d = Decoder::new(Some(Box::new(aws_example_signer())));
        let err = decode_all(&mut d, &body, 8192).unwrap_err();
        assert_eq!(err.code, "SignatureDoesNotMatch");
        let body =
            aws_example_body("bd80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
        let mut d = Decoder::new(Some(Box::new(aws_example_signer())));
        assert!(decode_all(&mut d, &body, 8192).is_err());
        // A signed stream must carry signatures.
        let mut d = Decoder::new(Some(Box::new(aws_example_signer())));
        assert!(decode_all(&mut d, b"1\r\na\r\n0\r\n\r\n", 100).is_err());
    }

    #[test]
    fn signed_trailers_verify() {
        let mut signer = aws_example_signer();
        // Sign a one-chunk body with a trailer using the same chain the decoder checks.
        let chunk_sig = signer.chunk_signature(digest::digest(&digest::SHA256, b"abc").as_ref());
        signer.previous = chunk_sig.clone();
        let final_sig = signer.chunk_signature(digest::digest(&digest::SHA256, b"").as_ref());
        signer.previous = final_sig.clone();
        let trailer_sig = signer.trailer_signature(b"x-amz-checksum-crc32:NSRBwg==\n");
        let body = format!(
            "3;chunk-signature={chunk_sig}\r\nabc\r\n0;chunk-signature={final_sig}\r\nx-amz-checksum-crc32:NSRBwg==\r\nx-amz-trailer-signature:{trailer_sig}\r\n\r\n"
        );
        let mut d = Decoder::new(Some(Box::new(aws_example_signer())));
        assert_eq!(decode_all(&mut d, body.as_bytes(), 5).unwrap(), b"abc");
        let bad = body.replace("NSRBwg==", "AAAAAA==");
        let mut d = Decoder::new(Some(Box::new(aws_example_signer())));
        assert!(decode_all(&mut d, bad.as_bytes(), 5).is_err());
    }

    /// A tiny deterministic generator, so the randomized cases are reproducible.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound as u64) as usize
        }
    }

    /// Encodes `payload` in random chunk sizes, signed with a fresh chain from `signer`.
    fn encode(payload: &[u8], rng: &mut XorShift, mut signer: Option<ChunkSigner>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let n = if pos == payload.len() {
                0
            } else {
                (1 + rng.next(3000)).min(payload.len() - pos)
            };
            let chunk = &payload[pos..pos + n];
            match signer.as_mut() {
                Some(s) => {
                    let sig = s.chunk_signature(digest::digest(&digest::SHA256, chunk).as_ref());
                    s.previous = sig.clone();
                    out.extend_from_slice(format!("{n:x};chunk-signature={sig}\r\n").as_bytes());
                }
                None => out.extend_from_slice(format!("{n:x}\r\n").as_bytes()),
            }
            if n == 0 {
                break;
            }
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
            pos += n;
        }
        if signer.is_none() {
            out.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    #[test]
    fn random_payloads_and_framings_round_trip() {
        let mut rng = XorShift(0x9e3779b97f4a7c15);
        for case in 0..200 {
            let len = rng.next(20_000);
            let payload: Vec<u8> = (0..len).map(|_| rng.next(256) as u8).collect();
            let signed = case % 2 == 0;
            let body = encode(&payload, &mut rng, signed.then(aws_example_signer));
            let piece = 1 + rng.next(5000);
            let mut d = Decoder::new(signed.then(|| Box::new(aws_example_signer())));
            assert_eq!(
                decode_all(&mut d, &body, piece).unwrap(),
                payload,
                "case {case}"
            );
            if signed && len > 0 {
                // Any flipped byte is caught: in data by the chunk signature, in the framing by
                // the parser.
                let mut bad = body.clone();
                let at = rng.next(bad.len() - 2);
                bad[at] ^= 0x01;
                let mut d = Decoder::new(Some(Box::new(aws_example_signer())));
                assert!(
                    decode_all(&mut d, &bad, piece).is_err(),
                    "case {case} flip at {at}"
                );
            }
        }
    }
}
