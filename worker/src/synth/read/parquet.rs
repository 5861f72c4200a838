//! PR rows from a Parquet file (daVinci-Dev's release format on Hugging Face), through the
//! `parquet` crate's row API — no Arrow, so the dependency stays small. Each row becomes a JSON
//! object and is read by the same lenient [`PrRow`] reader as JSONL, so both formats accept and
//! reject the same things. Binary columns holding UTF-8 read as strings.

use std::fs::File;
use std::path::Path;

use ::parquet::file::reader::SerializedFileReader;
use ::parquet::record::reader::RowIter;
use ::parquet::record::{Field, Row};
use serde_json::{Map, Number, Value};

use crate::synth::SynthError;
use crate::synth::row::{PrRow, RowError, row_from_value};

/// An iterator over the rows of a Parquet file; row numbers are 1-based.
pub struct ParquetRows {
    rows: RowIter<'static>,
    row: usize,
}

impl std::fmt::Debug for ParquetRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetRows").field("row", &self.row).finish_non_exhaustive()
    }
}

impl ParquetRows {
    /// Opens a Parquet file.
    pub fn open(path: &Path) -> Result<ParquetRows, SynthError> {
        let file = File::open(path).map_err(|e| SynthError::Input { path: path.display().to_string(), reason: e.to_string() })?;
        let reader = SerializedFileReader::new(file)
            .map_err(|e| SynthError::Input { path: path.display().to_string(), reason: format!("is not a readable Parquet file ({e})") })?;
        Ok(ParquetRows { rows: reader.into_iter(), row: 0 })
    }
}

impl Iterator for ParquetRows {
    type Item = Result<PrRow, Vec<RowError>>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.rows.next()?;
        self.row += 1;
        Some(match next {
            Ok(row) => row_from_value(self.row, row_to_json(&row)),
            Err(e) => Err(vec![RowError { row: self.row, pr: None, field: "(row)".into(), reason: format!("could not be decoded: {e}") }]),
        })
    }
}

fn row_to_json(row: &Row) -> Value {
    Value::Object(row.get_column_iter().map(|(k, v)| (k.clone(), field_to_json(v))).collect::<Map<_, _>>())
}

fn field_to_json(f: &Field) -> Value {
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(v) => Value::from(*v),
        Field::Short(v) => Value::from(*v),
        Field::Int(v) => Value::from(*v),
        Field::Long(v) => Value::from(*v),
        Field::UByte(v) => Value::from(*v),
        Field::UShort(v) => Value::from(*v),
        Field::UInt(v) => Value::from(*v),
        Field::ULong(v) => Value::from(*v),
        Field::Float(v) => Number::from_f64(f64::from(*v)).map_or(Value::Null, Value::Number),
        Field::Double(v) => Number::from_f64(*v).map_or(Value::Null, Value::Number),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_string()),
            // Not text: keep the row readable; a field that needed text reports its type.
            Err(_) => Value::Array(b.data().iter().map(|&x| Value::from(x)).collect()),
        },
        Field::Group(r) => row_to_json(r),
        Field::ListInternal(l) => Value::Array(l.elements().iter().map(field_to_json).collect()),
        Field::MapInternal(m) => Value::Object(
            m.entries()
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Field::Str(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (key, field_to_json(v))
                })
                .collect(),
        ),
        // Dates, times, decimals, float16: their display form.
        other => Value::String(other.to_string()),
    }
}
