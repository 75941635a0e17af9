//! Reading and writing NumPy `.npy` files (through the `npyz` crate), with the checks attnflow
//! needs: float32/float64 only, C order, every value finite.

use std::fs::{File, OpenOptions};
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
    let mut file = crate::output::open_input(path)?;
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

/// The keys of a header dictionary, in order (top level only), and how deep its brackets nest
/// outside strings (2 for numpy's own: the dictionary and the shape).
fn scan_header(dict: &str) -> (Vec<String>, i32) {
    let mut keys = Vec::new();
    let (mut depth, mut quote, mut token, mut expect_key) = (0i32, None, String::new(), false);
    let mut deepest = 0;
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
                deepest = deepest.max(depth);
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
    (keys, deepest)
}

/// Brackets nested deeper than this in a header are refused before npyz parses it: numpy's
/// headers nest 2 deep (4 for the structured types attnflow does not read), and npyz's parser
/// of the header's Python literal took more than 30 s on one nested 2,000 deep (2026-12-07).
const HEADER_NESTING: i32 = 8;

/// The .npy file `file` (opened from `path`) with its header parsed by npyz, once the header
/// was checked to nest no deeper than [`HEADER_NESTING`].
fn npy_file(path: &Path, file: File) -> Result<NpyFile<BufReader<File>>> {
    let (dict, _) = raw_header(path)?;
    let (_, deepest) = scan_header(&dict);
    if deepest > HEADER_NESTING {
        return Err(file_error(
            path,
            format!(
                "not a valid .npy file: its header nests brackets {deepest} deep; numpy's nest \
                 2 deep (the dictionary and the shape)"
            ),
        ));
    }
    NpyFile::new(BufReader::new(file))
        .map_err(|e| file_error(path, format!("not a valid .npy file: {e}")))
}

/// What numpy itself refuses, checked before npyz reads the data: a header with keys other
/// than descr, fortran_order and shape, and a shape whose data the file cannot hold (so that
/// a forged header cannot ask for an absurd allocation).
fn check_header(path: &Path, shape: &[u64], item: u64) -> Result<()> {
    let (dict, data_start) = raw_header(path)?;
    let (mut keys, _) = scan_header(&dict);
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
    let npy = npy_file(path, crate::output::open_input(path)?)?;
    let item = match npy.dtype().descr().as_str() {
        "'<f8'" | "'>f8'" => 8,
        "'<f4'" | "'>f4'" => 4,
        // Named before the size check, which would call it truncated (4 bytes per element).
        other => {
            let name = match other
                .trim_matches('\'')
                .trim_start_matches(['<', '>', '|', '='])
            {
                "f2" => "float16",
                "b1" => "bool",
                "i1" | "i2" | "i4" | "i8" => "a signed integer type",
                "u1" | "u2" | "u4" | "u8" => "an unsigned integer type",
                "c8" | "c16" => "a complex type",
                "f16" => "float128",
                _ => "a type",
            };
            return Err(file_error(
                path,
                format!(
                    "has element type {other} ({name}); attnflow reads float32 or float64: save \
                     it with .astype(numpy.float32) or numpy.float64"
                ),
            ));
        }
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
    let npy = npy_file(path, crate::output::open_input(path)?)?;
    check_header(path, npy.shape(), 1)?;
    let shape = npy.shape().to_vec();
    let data = npy
        .into_vec::<T>()
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    Ok((shape, data))
}

/// The byte offset of a .npy file's data (its header's length).
pub fn data_start(path: &Path) -> Result<u64> {
    raw_header(path).map(|(_, start)| start)
}

/// Feeds what is written to a hasher.
struct HashWriter<'a>(&'a mut sha2::Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Element types of the frames a [`FrameWriter`] writes.
pub trait Element: bytemuck::Pod {
    /// numpy's descr, little-endian.
    const DESCR: &'static str;
}

impl Element for f32 {
    const DESCR: &'static str = "<f4";
}

impl Element for f64 {
    const DESCR: &'static str = "<f8";
}

/// A trajectory file: frames of one shape appended one at a time. Its header names the frames
/// written (rewritten in place when finished: the header keeps room for any count), so a run
/// stopped early still leaves a file numpy loads, and a resumed run appends to it.
pub struct FrameWriter<T: Element> {
    path: PathBuf,
    file: BufWriter<File>,
    frame: Vec<usize>,
    frames: usize,
    header_len: usize,
    /// The SHA-256 of the frames' bytes so far (what a checkpoint records of the file).
    hasher: sha2::Sha256,
    _t: std::marker::PhantomData<T>,
}

/// The header of a .npy file (version 1.0) for `shape`, padded with room for 24 more
/// characters in the shape (so that any frame count fits later) to a multiple of 64 bytes.
fn frame_header<T: Element>(shape: &[usize], len: Option<usize>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {tuple}, }}",
        T::DESCR
    );
    let total = len.unwrap_or_else(|| (10 + dict.len() + 24 + 1).next_multiple_of(64));
    while 10 + dict.len() + 1 < total {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend(((total - 10) as u16).to_le_bytes());
    bytes.extend(dict.as_bytes());
    bytes
}

impl<T: Element> FrameWriter<T> {
    /// A new file of frames of shape `frame`.
    pub fn create(path: &Path, frame: &[usize]) -> Result<Self> {
        let mut file = BufWriter::new(
            File::create(path).map_err(|e| file_error(path, format!("cannot create: {e}")))?,
        );
        let mut shape = vec![0];
        shape.extend(frame);
        let header = frame_header::<T>(&shape, None);
        std::io::Write::write_all(&mut file, &header)
            .map_err(|e| file_error(path, format!("cannot write: {e}")))?;
        Ok(FrameWriter {
            path: path.to_path_buf(),
            file,
            frame: frame.to_vec(),
            frames: 0,
            header_len: header.len(),
            hasher: sha2::Digest::new(),
            _t: std::marker::PhantomData,
        })
    }

    /// An existing file of frames of shape `frame` (written by a [`FrameWriter`]), to append
    /// to, keeping its first `keep` frames (all that its header names when `None`; anything
    /// after them is cut). Returns the writer and the frames kept.
    pub fn append(path: &Path, frame: &[usize], keep: Option<usize>) -> Result<(Self, usize)> {
        let bad = |msg: String| file_error(path, msg);
        let file = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        let npy = npy_file(path, file)?;
        let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
        if npy.dtype().descr() != format!("'{}'", T::DESCR) || shape.get(1..) != Some(frame) {
            return Err(bad(format!(
                "holds {} frames of shape {:?}; expected frames {frame:?} of {}",
                npy.dtype().descr(),
                shape.get(1..).unwrap_or(&[]),
                T::DESCR
            )));
        }
        let (_, data_start) = raw_header(path)?;
        let frames = match keep {
            Some(k) if k > shape[0] => {
                return Err(bad(format!(
                    "holds {} frames, fewer than the {k} its checkpoint recorded",
                    shape[0]
                )));
            }
            Some(k) => k,
            None => shape[0],
        };
        let frame_bytes = frame.iter().product::<usize>() * std::mem::size_of::<T>();
        let end = data_start as usize + frames * frame_bytes;
        // A cut file is refused: extending it would fill the missing frames with zeros.
        let len = std::fs::metadata(path)
            .map_err(|e| bad(format!("cannot read: {e}")))?
            .len();
        if len < end as u64 {
            return Err(bad(format!(
                "is truncated: {frames} snapshots need {} bytes after the header, the file holds \
                 {}; it cannot be resumed from (start a new run)",
                frames * frame_bytes,
                len.saturating_sub(data_start)
            )));
        }
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        {
            use std::io::{Read, Seek};
            let mut f = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
            f.seek(std::io::SeekFrom::Start(data_start))
                .map_err(|e| bad(format!("cannot read: {e}")))?;
            let mut f = f.take((frames * frame_bytes) as u64);
            std::io::copy(&mut f, &mut HashWriter(&mut hasher))
                .map_err(|e| bad(format!("cannot read: {e}")))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| bad(format!("cannot open for writing: {e}")))?;
        file.set_len(end as u64)
            .map_err(|e| bad(format!("cannot write: {e}")))?;
        let mut file = BufWriter::new(file);
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(end as u64))
            .map_err(|e| bad(format!("cannot write: {e}")))?;
        Ok((
            FrameWriter {
                path: path.to_path_buf(),
                file,
                frame: frame.to_vec(),
                frames,
                header_len: data_start as usize,
                hasher,
                _t: std::marker::PhantomData,
            },
            frames,
        ))
    }

    pub fn push(&mut self, data: &[T]) -> Result<()> {
        if data.len() != self.frame.iter().product::<usize>() {
            return Err(file_error(&self.path, "a frame of the wrong size"));
        }
        let bytes: Vec<u8> = if cfg!(target_endian = "little") {
            bytemuck::cast_slice(data).to_vec()
        } else {
            data.iter()
                .flat_map(|v| {
                    let mut b = bytemuck::bytes_of(v).to_vec();
                    b.reverse();
                    b
                })
                .collect()
        };
        std::io::Write::write_all(&mut self.file, &bytes)
            .map_err(|e| file_error(&self.path, format!("cannot write: {e}")))?;
        sha2::Digest::update(&mut self.hasher, &bytes);
        self.frames += 1;
        Ok(())
    }

    pub fn frames(&self) -> usize {
        self.frames
    }

    /// The bytes of the frames written (after the header) and their `sha256:HEX`.
    pub fn data_digest(&self) -> (u64, String) {
        let bytes = self.frames * self.frame.iter().product::<usize>() * std::mem::size_of::<T>();
        (bytes as u64, crate::output::sha256_hex(self.hasher.clone()))
    }

    /// Rewrites the header for the frames written so far and puts the file on disk (a
    /// checkpoint): the file is complete as it stands, and more frames may follow.
    pub fn sync(&mut self) -> Result<()> {
        let mut shape = vec![self.frames];
        shape.extend(&self.frame);
        let header = frame_header::<T>(&shape, Some(self.header_len));
        if header.len() != self.header_len {
            return Err(file_error(&self.path, "the header outgrew its room"));
        }
        let err = |e: std::io::Error| file_error(&self.path, format!("cannot write: {e}"));
        std::io::Write::flush(&mut self.file).map_err(err)?;
        let file = self.file.get_mut();
        let end = std::io::Seek::stream_position(file).map_err(err)?;
        std::io::Seek::seek(file, std::io::SeekFrom::Start(0)).map_err(err)?;
        std::io::Write::write_all(file, &header).map_err(err)?;
        std::io::Seek::seek(file, std::io::SeekFrom::Start(end)).map_err(err)?;
        file.sync_data().map_err(err)
    }

    /// Writes the header for the frames written and flushes the file.
    pub fn finish(mut self) -> Result<()> {
        self.sync()
    }
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
        // Was: a shape whose product overflows said "batch * n * d overflows", naming no file.
        let over =
            "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 100000000000, 3), }";
        let e = read_f64(&file(dir.path(), "over.npy", over, &data))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("over.npy") && e.contains("more than 2^64"),
            "{e}"
        ); // Was: a header with a list nested 2,000 deep (an extra key, which the key check
        // refuses after npyz's parse) kept npyz's parser busy for more than 30 s.
        let deep = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': {}{}}}",
            "[".repeat(2000),
            "]".repeat(2000)
        );
        let e = read_f64(&file(dir.path(), "deep.npy", &deep, &data))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("deep.npy") && e.contains("nests brackets 2001 deep"),
            "{e}"
        );
    }

    /// A trajectory stopped after 2 of 5 frames names 2 in its header; appending goes on.
    #[test]
    fn frame_files_name_the_frames_written_and_take_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traj.npy");
        let mut w = FrameWriter::<f32>::create(&path, &[2, 3]).unwrap();
        w.push(&[1.0; 6]).unwrap();
        w.push(&[2.0; 6]).unwrap();
        w.finish().unwrap();
        let (shape, data) = read_as::<f32>(&path).unwrap();
        assert_eq!((shape, data.len()), (vec![2, 2, 3], 12));
        let (mut w, present) = FrameWriter::<f32>::append(&path, &[2, 3], None).unwrap();
        assert_eq!(present, 2);
        for k in 0..1000 {
            w.push(&[k as f32; 6]).unwrap();
        }
        w.finish().unwrap();
        let (shape, data) = read_as::<f32>(&path).unwrap();
        assert_eq!(shape, vec![1002, 2, 3]);
        assert_eq!(
            &data[..12],
            &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
        );
        assert_eq!(data[12 + 999 * 6], 999.0);
        assert!(FrameWriter::<f64>::append(&path, &[2, 3], None).is_err());
        // A checkpoint: the synced file loads with the frames so far; frames written after
        // it (a kill before the next checkpoint) are cut when it is resumed.
        let (mut w, _) = FrameWriter::<f32>::append(&path, &[2, 3], Some(3)).unwrap();
        w.push(&[7.0; 6]).unwrap();
        w.sync().unwrap();
        assert_eq!(read_as::<f32>(&path).unwrap().0, vec![4, 2, 3]);
        w.push(&[8.0; 6]).unwrap();
        drop(w);
        let (w, present) = FrameWriter::<f32>::append(&path, &[2, 3], Some(4)).unwrap();
        assert_eq!(present, 4);
        w.finish().unwrap();
        let (shape, data) = read_as::<f32>(&path).unwrap();
        assert_eq!(shape, vec![4, 2, 3]);
        assert_eq!(data[18..], [7.0; 6]);
        assert!(FrameWriter::<f32>::append(&path, &[2, 3], Some(5)).is_err());
    }
}
