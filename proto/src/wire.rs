//! The wire form of a record in the Redis stream: JSON compressed with zstd.
//!
//! A stream entry carries the fields named by the constants below; `codec` lets a future
//! encoding coexist with this one in the same stream.

use crate::record::{RECORD_SCHEMA, TrajectoryRecord};

/// The Redis stream both kinds of record go to unless configured otherwise. Written by workers
/// (`XADD`), read by learners (one consumer group per learner job).
pub const DEFAULT_STREAM: &str = "agentmill:trajectories";

/// Stream entry field: the record id (the idempotency key).
pub const FIELD_ID: &str = "id";
/// Stream entry field: `env` or `ctx`.
pub const FIELD_KIND: &str = "kind";
/// Stream entry field: the codec of `data`.
pub const FIELD_CODEC: &str = "codec";
/// Stream entry field: the encoded record.
pub const FIELD_DATA: &str = "data";
/// The codec this module writes.
pub const CODEC_ZSTD_JSON: &str = "zstd+json";

/// zstd level: 3 is zstd's default, a good speed/size balance for chatty JSON.
const LEVEL: i32 = 3;
/// A decoded record may not exceed this (guards against a corrupt or hostile entry).
pub const MAX_DECODED_BYTES: usize = 256 << 20;

/// Why a wire payload could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The payload names a codec this build does not know.
    #[error("unknown record codec {0:?}; this build reads {CODEC_ZSTD_JSON:?}")]
    UnknownCodec(String),
    /// zstd failed.
    #[error("record payload is not valid zstd: {0}")]
    Compression(#[from] std::io::Error),
    /// The JSON did not match the schema.
    #[error("record JSON does not match {RECORD_SCHEMA}: {0}")]
    Json(#[from] serde_json::Error),
    /// The record names another schema.
    #[error("record schema is {0:?}; this build reads {RECORD_SCHEMA:?}")]
    Schema(String),
}

/// Encodes a record: JSON, then zstd.
pub fn encode(record: &TrajectoryRecord) -> Result<Vec<u8>, WireError> {
    let json = serde_json::to_vec(record)?;
    Ok(zstd::bulk::compress(&json, LEVEL)?)
}

/// Decodes a payload written by [`encode`] under the given codec.
pub fn decode(codec: &str, data: &[u8]) -> Result<TrajectoryRecord, WireError> {
    if codec != CODEC_ZSTD_JSON {
        return Err(WireError::UnknownCodec(codec.to_string()));
    }
    let mut decoder = zstd::stream::read::Decoder::new(data)?;
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut decoder, MAX_DECODED_BYTES as u64 + 1), &mut json)?;
    if json.len() > MAX_DECODED_BYTES {
        return Err(WireError::Compression(std::io::Error::other(format!(
            "decoded record exceeds {MAX_DECODED_BYTES} bytes"
        ))));
    }
    let record: TrajectoryRecord = serde_json::from_slice(&json)?;
    if record.schema != RECORD_SCHEMA {
        return Err(WireError::Schema(record.schema));
    }
    Ok(record)
}
