//! The one CSV writer of the library and the experiments: a header, then rows each caller
//! formats (their number formats are part of the files' contents). Files are written inside
//! a command's staging folder (`output::Output`), which makes them appear atomically.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, file_error};

/// A CSV file being written; every error names the file.
pub struct CsvWriter {
    path: PathBuf,
    w: BufWriter<File>,
}

impl CsvWriter {
    /// Creates (or truncates) `path` and writes `header` as its first line.
    pub fn create(path: &Path, header: &str) -> Result<Self> {
        let mut csv = Self::create_empty(path)?;
        csv.line(format_args!("{header}"))?;
        Ok(csv)
    }

    /// Creates (or truncates) `path` with no header yet: for a file that continues the lines
    /// of an earlier one (a resumed run's metrics).
    pub fn create_empty(path: &Path) -> Result<Self> {
        let file =
            File::create(path).map_err(|e| file_error(path, format!("cannot create: {e}")))?;
        Ok(CsvWriter {
            path: path.to_path_buf(),
            w: BufWriter::new(file),
        })
    }

    /// Writes one line (a row the caller formatted, without its newline).
    pub fn line(&mut self, row: fmt::Arguments) -> Result<()> {
        self.w
            .write_fmt(row)
            .and_then(|()| self.w.write_all(b"\n"))
            .map_err(|e| self.error(e))
    }

    /// Writes a row of numbers in Rust's shortest round-trip form (`{}`), comma-separated.
    pub fn numbers(&mut self, row: &[f64]) -> Result<()> {
        for (k, v) in row.iter().enumerate() {
            let sep = if k == 0 { "" } else { "," };
            write!(self.w, "{sep}{v}").map_err(|e| self.error(e))?;
        }
        self.line(format_args!(""))
    }

    /// Hands what is buffered to the file (a checkpoint records the file's length after it).
    pub fn flush(&mut self) -> Result<()> {
        self.w.flush().map_err(|e| self.error(e))
    }

    /// Flushes and syncs the file to the disk; returns its length (what a checkpoint covers).
    pub fn sync(&mut self) -> Result<u64> {
        self.flush()?;
        let file = self.w.get_ref();
        file.sync_data()
            .and_then(|()| file.metadata())
            .map(|m| m.len())
            .map_err(|e| self.error(e))
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<()> {
        self.flush()
    }

    fn error(&self, e: std::io::Error) -> crate::Error {
        file_error(&self.path, format!("cannot write: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_and_numbers() {
        let dir = std::env::temp_dir().join(format!("attnflow-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.csv");
        let mut csv = CsvWriter::create(&path, "t,x").unwrap();
        csv.line(format_args!("{},{:.3e}", 1, 0.5)).unwrap();
        csv.numbers(&[0.1, 2.0, -3.5e-9]).unwrap();
        csv.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "t,x\n1,5.000e-1\n0.1,2,-0.0000000035\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
