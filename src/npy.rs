//! Reading and writing NumPy `.npy` files (through the `npyz` crate), with the checks attnflow
//! needs: float32/float64 only, C order, every value finite.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use npyz::{Deserialize, NpyFile, Order, Serialize, WriterBuilder};

use crate::error::{Result, file_error};

/// An n-dimensional array read from disk, converted to f64.
#[derive(Clone, Debug)]
pub struct Array {
    pub shape: Vec<u64>,
    pub data: Vec<f64>,
    /// The element type in the file: "float32" or "float64".
    pub dtype: &'static str,
}

/// The header dictionary of a `.npy` file as written (`{'descr': ..., 'shape': ...}`) and the
/// byte offset of the data.
fn raw_header(path: &Path) -> Result<(String, u64)> {
    use std::io::Read;
    let bad = |msg: &str| file_error(path, format!("not a valid .npy file: {msg}"));
    let mut file = File::open(path).map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    let mut head = [0u8; 12];
    let got = file
        .read(&mut head)
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    if got < 10 || &head[..6] != b"\x93NUMPY" {
        return Err(bad("no .npy magic string"));
    }
    let (len, start) = match head[6] {
        1 => (u64::from(u16::from_le_bytes([head[8], head[9]])), 10u64),
        2 | 3 if got >= 12 => (
            u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]])),
            12,
        ),
        v => return Err(bad(&format!("unknown format version {v}"))),
    };
    if len > 1 << 20 {
        return Err(bad("header longer than 1 MiB"));
    }
    let mut text = vec![0u8; len as usize];
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(start))
        .and_then(|_| file.read_exact(&mut text))
        .map_err(|_| bad("truncated header"))?;
    let text = String::from_utf8(text).map_err(|_| bad("header is not text"))?;
    Ok((text, start + len))
}

/// The keys of a header dictionary, in order (top level only).
fn header_keys(dict: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let (mut depth, mut quote, mut token, mut expect_key) = (0i32, None, String::new(), false);
    for c in dict.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                if depth == 1 && expect_key {
                    keys.push(std::mem::take(&mut token));
                    expect_key = false;
                }
            }
            (Some(_), c) => token.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                token.clear();
            }
            (None, '{' | '(' | '[') => {
                depth += 1;
                if depth == 1 {
                    expect_key = true;
                }
            }
            (None, '}' | ')' | ']') => depth -= 1,
            (None, ',') if depth == 1 => expect_key = true,
            (None, ':') if depth == 1 => expect_key = false,
            _ => {}
        }
    }
    keys
}

/// What numpy itself refuses, checked before npyz reads the data: a header with keys other
/// than descr, fortran_order and shape, and a shape whose data the file cannot hold (so that
/// a forged header cannot ask for an absurd allocation).
fn check_header(path: &Path, shape: &[u64], item: u64) -> Result<()> {
    let (dict, data_start) = raw_header(path)?;
    let mut keys = header_keys(&dict);
    keys.sort();
    if keys != ["descr", "fortran_order", "shape"] {
        return Err(file_error(
            path,
            format!(
                "not a valid .npy file: its header has the keys {keys:?}; numpy writes exactly \
                 descr, fortran_order and shape"
            ),
        ));
    }
    let len = std::fs::metadata(path)
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?
        .len();
    let want = shape
        .iter()
        .try_fold(item, |acc, &s| acc.checked_mul(s))
        .and_then(|b| b.checked_add(data_start));
    if want.is_none_or(|w| w > len) {
        return Err(file_error(
            path,
            format!(
                "is truncated: the header promises shape {shape:?} ({} bytes of data), the file \
                 holds {} bytes after its header",
                want.map_or("more than 2^64".into(), |w| (w - data_start).to_string()),
                len.saturating_sub(data_start)
            ),
        ));
    }
    Ok(())
}

/// Reads a float32 or float64 `.npy` file. Rejects other types, Fortran order, truncated
/// files and non-finite values, naming the first bad element.
pub fn read_f64(path: &Path) -> Result<Array> {
    let file = File::open(path).map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    let npy = NpyFile::new(BufReader::new(file))
        .map_err(|e| file_error(path, format!("not a valid .npy file: {e}")))?;
    let item = match npy.dtype().descr().as_str() {
        "'<f8'" | "'>f8'" => 8,
        _ => 4,
    };
    check_header(path, npy.shape(), item)?;
    if npy.order() == Order::Fortran && npy.shape().len() > 1 {
        return Err(file_error(
            path,
            "is stored in Fortran order; save it in C order (numpy.ascontiguousarray)",
        ));
    }
    let shape = npy.shape().to_vec();
    let descr = npy.dtype().descr();
    let truncated = |e: std::io::Error| {
        file_error(
            path,
            format!("is truncated or unreadable ({e}); header promises shape {shape:?}"),
        )
    };
    let (data, dtype) = match descr.as_str() {
        "'<f8'" | "'>f8'" => (npy.into_vec::<f64>().map_err(truncated)?, "float64"),
        "'<f4'" | "'>f4'" => (
            npy.into_vec::<f32>()
                .map_err(truncated)?
                .into_iter()
                .map(f64::from)
                .collect(),
            "float32",
        ),
        other => {
            return Err(file_error(
                path,
                format!("has element type {other}; attnflow reads float32 or float64"),
            ));
        }
    };
    if let Some(bad) = data.iter().position(|v| !v.is_finite()) {
        return Err(file_error(
            path,
            format!(
                "element {} (flat index {bad}) is {}: inputs must be finite",
                unravel(bad, &shape),
                data[bad]
            ),
        ));
    }
    Ok(Array { shape, data, dtype })
}

/// Formats a flat index as `[i, j, ...]` in the given shape.
pub fn unravel(mut flat: usize, shape: &[u64]) -> String {
    let mut idx = vec![0u64; shape.len()];
    for (k, &s) in shape.iter().enumerate().rev() {
        if s > 0 {
            idx[k] = flat as u64 % s;
            flat /= s as usize;
        }
    }
    format!("{idx:?}")
}

/// Writes a whole array.
pub fn write<T: Serialize + npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<()> {
    let mut w = StreamWriter::<T>::create(path, shape)?;
    w.push(data)?;
    w.finish()
}

/// Writes an array of known shape piece by piece (a trajectory, one snapshot at a time), so
/// that nothing larger than a snapshot is held in memory.
pub struct StreamWriter<T: Serialize + npyz::AutoSerialize> {
    path: PathBuf,
    writer: npyz::NpyWriter<T, BufWriter<File>>,
}

impl<T: Serialize + npyz::AutoSerialize + Copy> StreamWriter<T> {
    pub fn create(path: &Path, shape: &[usize]) -> Result<Self> {
        let file =
            File::create(path).map_err(|e| file_error(path, format!("cannot create: {e}")))?;
        let shape: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
        let writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(BufWriter::new(file))
            .begin_nd()
            .map_err(|e| file_error(path, format!("cannot write: {e}")))?;
        Ok(StreamWriter {
            path: path.to_path_buf(),
            writer,
        })
    }

    pub fn push(&mut self, data: &[T]) -> Result<()> {
        for v in data {
            self.writer
                .push(v)
                .map_err(|e| file_error(&self.path, format!("cannot write: {e}")))?;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        let path = self.path;
        self.writer
            .finish()
            .map_err(|e| file_error(&path, format!("cannot finish: {e}")))
    }
}

/// Reads a whole file as T (for tests and tools that know the type).
pub fn read_as<T: Deserialize>(path: &Path) -> Result<(Vec<u64>, Vec<T>)> {
    let file = File::open(path).map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    let npy = NpyFile::new(BufReader::new(file))
        .map_err(|e| file_error(path, format!("not a valid .npy file: {e}")))?;
    check_header(path, npy.shape(), 1)?;
    let shape = npy.shape().to_vec();
    let data = npy
        .into_vec::<T>()
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .npy file with the given header dictionary and data bytes.
    fn file(dir: &Path, name: &str, dict: &str, data: &[u8]) -> PathBuf {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn headers_numpy_refuses_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let a = read_f64(&file(dir.path(), "good.npy", good, &data)).unwrap();
        assert_eq!((a.shape, a.data.len()), (vec![2, 3], 6));
        let extra = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1, }";
        let e = read_f64(&file(dir.path(), "extra.npy", extra, &data))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'extra'") || e.contains("\"extra\""), "{e}");
        // A header asking for 10^12 rows of a 24-byte file is refused before reading.
        let huge = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 3), }";
        let e = read_f64(&file(dir.path(), "huge.npy", huge, &data))
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
