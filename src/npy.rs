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

/// Reads a float32 or float64 `.npy` file. Rejects other types, Fortran order, truncated
/// files and non-finite values, naming the first bad element.
pub fn read_f64(path: &Path) -> Result<Array> {
    let file = File::open(path).map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    let npy = NpyFile::new(BufReader::new(file))
        .map_err(|e| file_error(path, format!("not a valid .npy file: {e}")))?;
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
    let shape = npy.shape().to_vec();
    let data = npy
        .into_vec::<T>()
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    Ok((shape, data))
}
