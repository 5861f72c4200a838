//! Parquet shards of token lists, written with parquet's own column writers (no arrow).
//!
//! Every list column is the standard three-level `LIST` of non-null `INT32`
//! (`required group input_ids (LIST) { repeated group list { required int32 element; } }`),
//! which pyarrow reads as `list<element: int32 not null>` and pandas as arrays. Packed rows have
//! `input_ids`, `position_ids` (restarting at 0 for each document, so a reader can rebuild the
//! document mask) and `labels` (the next token, or -100 where nothing is trained); documents
//! have `record_id` (string) and `input_ids`. Pages are zstd-compressed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use super::ExportError;

/// Rows buffered before a row group is written.
const ROWS_PER_GROUP: usize = 1024;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A list of int32.
    IntList,
    /// A UTF-8 string.
    Text,
}

/// One row's value of one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// For [`ColumnKind::IntList`].
    Ints(Vec<i32>),
    /// For [`ColumnKind::Text`].
    Text(String),
}

/// Writes one Parquet file of rows with the given columns.
pub struct ParquetShardWriter {
    writer: SerializedFileWriter<File>,
    path: PathBuf,
    columns: Vec<(String, ColumnKind)>,
    rows: Vec<Vec<Value>>,
    written: usize,
}

impl std::fmt::Debug for ParquetShardWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetShardWriter").field("path", &self.path).field("columns", &self.columns).finish()
    }
}

fn pq(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> ExportError + '_ {
    move |e| ExportError::Parquet { path: path.to_path_buf(), message: e.to_string() }
}

impl ParquetShardWriter {
    /// Creates `path` with `columns` (names are plain identifiers).
    pub fn create(path: &Path, columns: &[(&str, ColumnKind)]) -> Result<ParquetShardWriter, ExportError> {
        let fields: Vec<String> = columns
            .iter()
            .map(|(name, kind)| match kind {
                ColumnKind::IntList => {
                    format!("required group {name} (LIST) {{ repeated group list {{ required int32 element; }} }}")
                }
                ColumnKind::Text => format!("required binary {name} (STRING);"),
            })
            .collect();
        let schema =
            parse_message_type(&format!("message agentmill_tokens {{ {} }}", fields.join(" "))).map_err(pq(path))?;
        let level = ZstdLevel::try_new(3).map_err(pq(path))?;
        let props = WriterProperties::builder().set_compression(Compression::ZSTD(level)).build();
        let file = File::create(path).map_err(ExportError::io("creating", path))?;
        let writer = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).map_err(pq(path))?;
        Ok(ParquetShardWriter {
            writer,
            path: path.to_path_buf(),
            columns: columns.iter().map(|(n, k)| (n.to_string(), *k)).collect(),
            rows: Vec::new(),
            written: 0,
        })
    }

    /// Adds a row (one value per column, in column order).
    pub fn push(&mut self, row: Vec<Value>) -> Result<(), ExportError> {
        let fits = row.len() == self.columns.len()
            && row.iter().zip(&self.columns).all(|(v, (_, k))| {
                matches!((v, k), (Value::Ints(_), ColumnKind::IntList) | (Value::Text(_), ColumnKind::Text))
            });
        if !fits {
            return Err(ExportError::Format(format!("a row does not match the columns {:?}", self.columns)));
        }
        self.rows.push(row);
        if self.rows.len() >= ROWS_PER_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    /// Rows written or buffered.
    pub fn rows(&self) -> usize {
        self.written + self.rows.len()
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let path = self.path.clone();
        let mut group = self.writer.next_row_group().map_err(pq(&path))?;
        let mut index = 0;
        while let Some(mut column) = group.next_column().map_err(pq(&path))? {
            match self.columns.get(index).map(|c| c.1) {
                Some(ColumnKind::IntList) => {
                    let (mut values, mut def, mut rep) = (Vec::new(), Vec::new(), Vec::new());
                    for row in &rows {
                        let Value::Ints(list) = &row[index] else { continue };
                        if list.is_empty() {
                            // An empty list: one level entry, no value.
                            def.push(0);
                            rep.push(0);
                        }
                        for (i, &v) in list.iter().enumerate() {
                            values.push(v);
                            def.push(1);
                            rep.push(i16::from(i > 0));
                        }
                    }
                    column.typed::<Int32Type>().write_batch(&values, Some(&def), Some(&rep)).map_err(pq(&path))?;
                }
                Some(ColumnKind::Text) => {
                    let values: Vec<ByteArray> = rows
                        .iter()
                        .filter_map(|row| match &row[index] {
                            Value::Text(s) => Some(ByteArray::from(s.as_str())),
                            Value::Ints(_) => None,
                        })
                        .collect();
                    column.typed::<ByteArrayType>().write_batch(&values, None, None).map_err(pq(&path))?;
                }
                None => return Err(ExportError::Format("the schema has more columns than the writer".into())),
            }
            column.close().map_err(pq(&path))?;
            index += 1;
        }
        group.close().map_err(pq(&path))?;
        self.written += rows.len();
        Ok(())
    }

    /// Writes the last row group and the footer; returns the path.
    pub fn finish(mut self) -> Result<PathBuf, ExportError> {
        self.flush()?;
        let path = self.path.clone();
        self.writer.close().map_err(pq(&path))?;
        Ok(path)
    }
}
