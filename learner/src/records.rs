//! Trajectory records for the offline tools (`tokenizer train`, `export`, `inspect-record`) and
//! the service's `tokenizer_corpus`: JSONL files (one `agentmill.trajectory/v1` record a line;
//! blank lines are skipped, a bad line fails with its number) or a stream read with `XRANGE`
//! ([`RecordSource`]), which claims and acknowledges nothing.

use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};

use agentmill_proto::{RECORD_SCHEMA, TrajectoryRecord};

/// Why a records file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The file could not be opened or read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The stream could not be read.
    #[error(transparent)]
    Stream(#[from] crate::stream::StreamError),
    /// A line is not a record.
    #[error("{path} line {line}: not an {RECORD_SCHEMA} record: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Records of a JSONL file, read one line at a time.
#[derive(Debug)]
pub struct JsonlRecords {
    path: PathBuf,
    lines: Lines<BufReader<File>>,
    line: usize,
}

impl JsonlRecords {
    /// Opens a JSONL file of records.
    pub fn open(path: &Path) -> Result<JsonlRecords, RecordsError> {
        let file = File::open(path).map_err(|error| RecordsError::Io { path: path.to_path_buf(), error })?;
        Ok(JsonlRecords { path: path.to_path_buf(), lines: BufReader::new(file).lines(), line: 0 })
    }
}

impl Iterator for JsonlRecords {
    type Item = Result<TrajectoryRecord, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.line += 1;
            let text = match self.lines.next()? {
                Ok(t) => t,
                Err(error) => return Some(Err(RecordsError::Io { path: self.path.clone(), error })),
            };
            if text.trim().is_empty() {
                continue;
            }
            let parsed = serde_json::from_str::<TrajectoryRecord>(&text)
                .map_err(|e| e.to_string())
                .and_then(|r| if r.schema == RECORD_SCHEMA { Ok(r) } else { Err(format!("schema is {:?}", r.schema)) });
            return Some(parsed.map_err(|reason| RecordsError::Line {
                path: self.path.clone(),
                line: self.line,
                reason,
            }));
        }
    }
}

/// Every record of a JSONL file.
pub fn read_jsonl(path: &Path) -> Result<Vec<TrajectoryRecord>, RecordsError> {
    JsonlRecords::open(path)?.collect()
}

/// Where the offline tools read records from.
#[derive(Debug, Clone)]
pub enum RecordSource {
    /// JSONL files, in order.
    Files(Vec<PathBuf>),
    /// A Redis stream, from its first entry (no consumer group).
    Stream {
        /// Redis URL.
        redis_url: String,
        /// Stream key.
        stream: String,
    },
}

impl RecordSource {
    /// Calls `f` with each record in order (an undecodable stream entry as `Err(reason)`) until
    /// `limit` records were read or `f` returns false. Returns how many were read.
    pub async fn for_each(
        &self,
        limit: usize,
        mut f: impl FnMut(Result<TrajectoryRecord, String>) -> bool,
    ) -> Result<usize, RecordsError> {
        let mut read = 0;
        match self {
            RecordSource::Files(paths) => {
                for path in paths {
                    for record in JsonlRecords::open(path)? {
                        if read >= limit {
                            return Ok(read);
                        }
                        read += 1;
                        if !f(Ok(record?)) {
                            return Ok(read);
                        }
                    }
                }
            }
            RecordSource::Stream { redis_url, stream } => {
                let mut scan = crate::stream::StreamScan::open(redis_url, stream).await?;
                loop {
                    let page = scan.next_page(512).await?;
                    if page.is_empty() {
                        break;
                    }
                    for entry in page {
                        if read >= limit {
                            return Ok(read);
                        }
                        read += 1;
                        let record = entry.record.map_err(|e| format!("stream entry {}: {e}", entry.id));
                        if !f(record) {
                            return Ok(read);
                        }
                    }
                }
            }
        }
        Ok(read)
    }

    /// Up to `limit` records; undecodable stream entries are logged and left out.
    pub async fn collect(&self, limit: usize) -> Result<Vec<TrajectoryRecord>, RecordsError> {
        let mut out = Vec::new();
        self.for_each(limit, |r| {
            match r {
                Ok(r) => out.push(r),
                Err(reason) => tracing::warn!("{reason}; left out"),
            }
            true
        })
        .await?;
        Ok(out)
    }
}
