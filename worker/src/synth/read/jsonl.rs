//! PR rows from a JSONL file: one JSON object a line, read one row at a time so a file of
//! millions of PRs streams. A bad row is reported (row number, field, reason) and the rows beside
//! it are not lost.

use std::io::BufRead;

use serde_json::Value;

use crate::synth::row::{PrRow, RowError, row_from_value};

/// An iterator over the rows of a JSONL reader; blank lines are skipped, row numbers are line
/// numbers.
#[derive(Debug)]
pub struct JsonlRows<R> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> JsonlRows<R> {
    /// Reads rows from `reader`.
    pub fn new(reader: R) -> Self {
        JsonlRows { reader, line: 0, buf: Vec::new(), done: false }
    }
}

impl<R: BufRead> Iterator for JsonlRows<R> {
    type Item = Result<PrRow, Vec<RowError>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            self.line += 1;
            let row = self.line;
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    let Ok(text) = std::str::from_utf8(&self.buf) else {
                        return Some(Err(vec![whole_row(row, "is not UTF-8; JSONL rows must be UTF-8 JSON")]));
                    };
                    if text.trim().is_empty() {
                        continue;
                    }
                    return Some(match serde_json::from_str::<Value>(text) {
                        Ok(v) => row_from_value(row, v),
                        Err(e) => Err(vec![whole_row(row, &format!("is not valid JSON ({e}); each line must be one JSON object"))]),
                    });
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(vec![whole_row(row, &format!("could not be read: {e}"))]));
                }
            }
        }
        None
    }
}

fn whole_row(row: usize, reason: &str) -> RowError {
    RowError { row, pr: None, field: "(row)".into(), reason: reason.into() }
}

/// Parses every row of a JSONL text: the rows that read, and every error of those that did not.
pub fn parse_rows_jsonl<R: BufRead>(reader: R) -> (Vec<PrRow>, Vec<RowError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for r in JsonlRows::new(reader) {
        match r {
            Ok(row) => rows.push(row),
            Err(e) => errors.extend(e),
        }
    }
    (rows, errors)
}
