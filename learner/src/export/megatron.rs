//! Megatron-LM's indexed dataset (`.bin` + `.idx`, the `MMIDIDX` format of
//! `megatron/core/datasets/indexed_dataset.py`), written without Python.
//!
//! `.bin` is the token ids of every sequence back to back, little-endian, in the index's dtype.
//! `.idx` is, all little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 9 | magic `MMIDIDX\x00\x00` |
//! | 8 | version, u64 = 1 |
//! | 1 | dtype code, u8 (Megatron's `DType`: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16) |
//! | 8 | sequence count `S`, u64 |
//! | 8 | document count `D`, u64 — entries of the document index, so documents + 1 |
//! | 4·S | sequence lengths in tokens, i32 |
//! | 8·S | sequence pointers: byte offset of each sequence in `.bin`, i64 |
//! | 8·D | document index: `[0, end of doc 0, end of doc 1, …]` in sequences, i64 |
//!
//! The dtype follows Megatron's `DType.optimal_dtype`: uint16 when the vocabulary has fewer than
//! 65,500 ids, else int32. Each sequence written here is one document (Megatron's
//! `preprocess_data.py` without sentence splitting).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::ExportError;

/// The `.idx` magic.
pub const INDEX_MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";
/// The `.idx` version.
pub const INDEX_VERSION: u64 = 1;

/// The token dtype of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenDtype {
    /// Megatron's code 8.
    Uint16,
    /// Megatron's code 4.
    Int32,
}

impl TokenDtype {
    /// Megatron's choice for a vocabulary of `vocab_size` ids.
    pub fn for_vocab(vocab_size: usize) -> TokenDtype {
        if vocab_size < 65_500 { TokenDtype::Uint16 } else { TokenDtype::Int32 }
    }

    /// Megatron's numeric code.
    pub fn code(self) -> u8 {
        match self {
            TokenDtype::Uint16 => 8,
            TokenDtype::Int32 => 4,
        }
    }

    /// Bytes per token.
    pub fn size(self) -> usize {
        match self {
            TokenDtype::Uint16 => 2,
            TokenDtype::Int32 => 4,
        }
    }
}

/// Writes one `.bin` + `.idx` pair.
#[derive(Debug)]
pub struct IndexedDatasetWriter {
    bin: BufWriter<File>,
    bin_path: PathBuf,
    idx_path: PathBuf,
    dtype: TokenDtype,
    lengths: Vec<i32>,
    tokens: u64,
}

impl IndexedDatasetWriter {
    /// Creates `prefix.bin` (and `prefix.idx` at [`IndexedDatasetWriter::finish`]).
    pub fn create(prefix: &Path, dtype: TokenDtype) -> Result<IndexedDatasetWriter, ExportError> {
        let bin_path = with_suffix(prefix, "bin");
        let idx_path = with_suffix(prefix, "idx");
        let file = File::create(&bin_path).map_err(ExportError::io("creating", &bin_path))?;
        Ok(IndexedDatasetWriter {
            bin: BufWriter::new(file),
            bin_path,
            idx_path,
            dtype,
            lengths: Vec::new(),
            tokens: 0,
        })
    }

    /// Appends one document of one sequence.
    pub fn add_document(&mut self, tokens: &[u32]) -> Result<(), ExportError> {
        let len = i32::try_from(tokens.len()).map_err(|_| {
            ExportError::Format(format!("a sequence of {} tokens exceeds Megatron's i32 length", tokens.len()))
        })?;
        let mut bytes = Vec::with_capacity(tokens.len() * self.dtype.size());
        for &t in tokens {
            match self.dtype {
                TokenDtype::Uint16 => {
                    let t = u16::try_from(t).map_err(|_| {
                        ExportError::Format(format!("token id {t} does not fit uint16; the vocabulary needs int32"))
                    })?;
                    bytes.extend_from_slice(&t.to_le_bytes());
                }
                TokenDtype::Int32 => {
                    let t = i32::try_from(t)
                        .map_err(|_| ExportError::Format(format!("token id {t} does not fit int32")))?;
                    bytes.extend_from_slice(&t.to_le_bytes());
                }
            }
        }
        self.bin.write_all(&bytes).map_err(ExportError::io("writing", &self.bin_path))?;
        self.lengths.push(len);
        self.tokens += tokens.len() as u64;
        Ok(())
    }

    /// Tokens written so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Sequences written so far.
    pub fn sequences(&self) -> usize {
        self.lengths.len()
    }

    /// Flushes `.bin` and writes `.idx`; returns both paths.
    pub fn finish(mut self) -> Result<(PathBuf, PathBuf), ExportError> {
        self.bin.flush().map_err(ExportError::io("writing", &self.bin_path))?;
        let n = self.lengths.len();
        let mut idx = Vec::with_capacity(34 + n * 20 + 8);
        idx.extend_from_slice(INDEX_MAGIC);
        idx.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        idx.push(self.dtype.code());
        idx.extend_from_slice(&(n as u64).to_le_bytes());
        idx.extend_from_slice(&(n as u64 + 1).to_le_bytes());
        for &len in &self.lengths {
            idx.extend_from_slice(&len.to_le_bytes());
        }
        let mut pointer = 0i64;
        for &len in &self.lengths {
            idx.extend_from_slice(&pointer.to_le_bytes());
            pointer += i64::from(len) * self.dtype.size() as i64;
        }
        for doc in 0..=n as i64 {
            idx.extend_from_slice(&doc.to_le_bytes());
        }
        std::fs::write(&self.idx_path, idx).map_err(ExportError::io("writing", &self.idx_path))?;
        Ok((self.bin_path, self.idx_path))
    }
}

fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_os_string();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_has_megatrons_layout_byte_for_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = IndexedDatasetWriter::create(&dir.path().join("d"), TokenDtype::Uint16).expect("create");
        w.add_document(&[5, 6, 7]).expect("add");
        w.add_document(&[65_000]).expect("add");
        assert!(w.add_document(&[70_000]).is_err(), "uint16 overflow is refused");
        let (bin, idx) = w.finish().expect("finish");
        assert_eq!(std::fs::read(bin).expect("bin"), [5, 0, 6, 0, 7, 0, 0xe8, 0xfd]);
        let idx = std::fs::read(idx).expect("idx");
        let mut want = b"MMIDIDX\x00\x00".to_vec();
        want.extend_from_slice(&1u64.to_le_bytes());
        want.push(8);
        want.extend_from_slice(&2u64.to_le_bytes());
        want.extend_from_slice(&3u64.to_le_bytes());
        for len in [3i32, 1] {
            want.extend_from_slice(&len.to_le_bytes());
        }
        for ptr in [0i64, 6] {
            want.extend_from_slice(&ptr.to_le_bytes());
        }
        for doc in [0i64, 1, 2] {
            want.extend_from_slice(&doc.to_le_bytes());
        }
        assert_eq!(idx, want);
        assert_eq!(TokenDtype::for_vocab(151_936), TokenDtype::Int32);
    }
}
