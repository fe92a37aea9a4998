//! `.npy` files in and out, as little-endian bytes in the runtime's [`DType`]s.
//!
//! Both backends take and give tensors as little-endian bytes, so this module converts at
//! the file boundary only: whatever byte order a file uses, an [`Array`] holds
//! little-endian data. Outputs are written atomically (a temporary file in the target
//! directory, renamed into place) so that a failed run never leaves a truncated file that a
//! script could mistake for a result.

use anyhow::{bail, Context, Result};
use edgetrim_runtime::{DType, TensorRef};
use npyz::{NpyFile, Order, TypeChar, WriteOptions, WriterBuilder};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A tensor read from a file (or generated), owning little-endian element bytes.
#[derive(Clone, Debug)]
pub struct Array {
    /// Element type.
    pub dtype: DType,
    /// Dims.
    pub shape: Vec<usize>,
    /// `shape.product() * dtype.size()` little-endian bytes.
    pub bytes: Vec<u8>,
}

/// The runtime dtype of a plain numpy type string, `None` for types no model takes.
fn dtype_of(ts: &npyz::TypeStr) -> Option<DType> {
    Some(match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 2) => DType::F16,
        (TypeChar::Float, 4) => DType::F32,
        (TypeChar::Float, 8) => DType::F64,
        (TypeChar::Int, 1) => DType::I8,
        (TypeChar::Int, 2) => DType::I16,
        (TypeChar::Int, 4) => DType::I32,
        (TypeChar::Int, 8) => DType::I64,
        (TypeChar::Uint, 1) => DType::U8,
        (TypeChar::Bool, 1) => DType::Bool,
        _ => return None,
    })
}

/// Reads every element as `T` and appends its little-endian bytes.
fn read_le<T: npyz::Deserialize, R: Read, const W: usize>(
    npy: NpyFile<R>,
    to_le: fn(T) -> [u8; W],
) -> io::Result<Vec<u8>> {
    let data = npy
        .data::<T>()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut out = Vec::with_capacity(data.len() as usize * W);
    for v in data {
        out.extend_from_slice(&to_le(v?));
    }
    Ok(out)
}

/// Reads a C-order `.npy` file of a numeric or bool dtype.
pub fn read(path: &Path) -> Result<Array> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let npy = NpyFile::new(BufReader::new(file))
        .with_context(|| format!("{}: not a valid .npy file", path.display()))?;
    if npy.order() == Order::Fortran {
        bail!(
            "{}: Fortran-order arrays are not supported; save with numpy.ascontiguousarray",
            path.display()
        );
    }
    let dtype = match npy.dtype() {
        npyz::DType::Plain(ts) => dtype_of(&ts)
            .with_context(|| format!("{}: unsupported .npy dtype {ts}", path.display()))?,
        other => bail!(
            "{}: structured .npy dtype {} is not supported",
            path.display(),
            other.descr()
        ),
    };
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let bytes = match dtype {
        DType::F32 => read_le(npy, f32::to_le_bytes),
        DType::F64 => read_le(npy, f64::to_le_bytes),
        DType::I8 => read_le(npy, i8::to_le_bytes),
        DType::I16 => read_le(npy, i16::to_le_bytes),
        DType::I32 => read_le(npy, i32::to_le_bytes),
        DType::I64 => read_le(npy, i64::to_le_bytes),
        DType::U8 => read_le(npy, u8::to_le_bytes),
        DType::Bool => read_le(npy, |b: bool| [u8::from(b)]),
        DType::F16 => bail!(
            "{}: float16 .npy files are not supported yet",
            path.display()
        ),
    }
    .with_context(|| format!("{}: truncated or corrupt data", path.display()))?;
    Ok(Array {
        dtype,
        shape,
        bytes,
    })
}

/// Writes little-endian `bytes` as elements of type `T`.
fn write_le<T: npyz::AutoSerialize, W: Write, const N: usize>(
    out: W,
    shape: &[u64],
    bytes: &[u8],
    from_le: fn([u8; N]) -> T,
) -> io::Result<()> {
    let mut writer = WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(out)
        .begin_nd()?;
    writer.extend(bytes.chunks_exact(N).map(|c| {
        let mut le = [0u8; N];
        le.copy_from_slice(c);
        from_le(le)
    }))?;
    writer.finish()
}

/// Whether [`write_atomic`] can write tensors of `dtype`.
pub fn can_write(dtype: DType) -> bool {
    dtype != DType::F16
}

/// Writes `t` to `path` through a temporary file in the same directory, renamed into
/// place only once complete.
pub fn write_atomic(path: &Path, t: TensorRef<'_>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let shape: Vec<u64> = t.shape.dims().iter().map(|&d| d as u64).collect();
    let mut out = BufWriter::new(tmp.as_file());
    let b = t.bytes;
    match t.dtype {
        DType::F32 => write_le(&mut out, &shape, b, f32::from_le_bytes),
        DType::F64 => write_le(&mut out, &shape, b, f64::from_le_bytes),
        DType::I8 => write_le(&mut out, &shape, b, i8::from_le_bytes),
        DType::I16 => write_le(&mut out, &shape, b, i16::from_le_bytes),
        DType::I32 => write_le(&mut out, &shape, b, i32::from_le_bytes),
        DType::I64 => write_le(&mut out, &shape, b, i64::from_le_bytes),
        DType::U8 => write_le(&mut out, &shape, b, u8::from_le_bytes),
        DType::Bool => write_le(&mut out, &shape, b, |[v]: [u8; 1]| v != 0),
        DType::F16 => bail!("float16 tensors cannot be written to .npy yet"),
    }
    .and_then(|()| out.flush())
    .with_context(|| format!("cannot write {}", path.display()))?;
    drop(out);
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `DIR/output{k}.npy`: where output `k` of a run goes.
pub fn output_path(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("output{k}.npy"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgetrim_runtime::Shape;

    #[test]
    fn round_trips_every_writable_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(DType, Vec<u8>); 4] = [
            (
                DType::F32,
                [1.5f32, -2.0, 0.25, 8.0, 0.0, -0.5]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            (
                DType::I64,
                [1i64, -2, 3, i64::MAX, 0, -7]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            (DType::U8, vec![0, 1, 2, 3, 254, 255]),
            (DType::Bool, vec![1, 0, 0, 1, 1, 0]),
        ];
        for (dtype, bytes) in cases {
            let path = dir.path().join(format!("{}.npy", dtype.name()));
            let t = TensorRef {
                dtype,
                shape: Shape::new(&[2, 3]).unwrap(),
                bytes: &bytes,
            };
            write_atomic(&path, t).unwrap();
            let back = read(&path).unwrap();
            assert_eq!(
                (back.dtype, back.shape, back.bytes),
                (dtype, vec![2, 3], bytes)
            );
        }
        // Only the final files remain: no temporaries left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn rejects_non_npy_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        std::fs::write(&path, b"not numpy").unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("not a valid .npy file"), "{err}");
    }
}
