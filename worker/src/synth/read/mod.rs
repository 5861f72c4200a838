//! Where PR rows come from: JSONL and Parquet files in daVinci-Dev's schema ([`jsonl`],
//! [`parquet`]), and local git repositories ([`git`], with issue text from [`issues`]).

pub mod git;
pub mod issues;
pub mod jsonl;
pub mod parquet;

use std::io::{BufReader, Read};
use std::path::Path;

use super::SynthError;
use super::row::{PrRow, RowError};

/// Rows of a file, one at a time; a bad row is an `Err` with every problem in it.
pub type RowIter = Box<dyn Iterator<Item = Result<PrRow, Vec<RowError>>>>;

/// Opens a rows file: Parquet when it starts with Parquet's `PAR1` magic, JSONL otherwise.
pub fn open_rows(path: &Path) -> Result<RowIter, SynthError> {
    let input_err = |e: std::io::Error| SynthError::Input { path: path.display().to_string(), reason: e.to_string() };
    let file = std::fs::File::open(path).map_err(input_err)?;
    let mut magic = Vec::with_capacity(4);
    file.take(4).read_to_end(&mut magic).map_err(input_err)?;
    if magic == b"PAR1" {
        return Ok(Box::new(parquet::ParquetRows::open(path)?));
    }
    let file = std::fs::File::open(path).map_err(input_err)?;
    Ok(Box::new(jsonl::JsonlRows::new(BufReader::new(file))))
}
