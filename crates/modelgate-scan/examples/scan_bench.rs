//! Scanning speed on ~2 GiB artifacts of mostly tensor data: a PyTorch-style zip (stored entries of
//! tensor bytes plus `archive/data.pkl`), a protocol-5 pickle of large `BINBYTES8` payloads, and a
//! joblib-style pickle whose arrays sit between opcodes. Each is written to a temporary directory and
//! scanned from a `File`; the figure is artifact bytes per second (the scanner skips payload by seeking,
//! so `bytes read` is what it actually touched).
//!
//!     cargo run -j1 --release -p modelgate-scan --example scan_bench [-- SIZE_MIB]

// A bench measures durations: the one place `Instant::now` belongs (clippy.toml).
#![allow(clippy::disallowed_methods)]

use modelgate_scan::{Limits, ScanReport, Verdict, scan};
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;
use std::time::Instant;

const MIB: u64 = 1 << 20;

/// Writes an artifact of about the given size.
type Writer = fn(&Path, u64) -> anyhow::Result<()>;

fn write_chunked(out: &mut impl Write, mut count: u64, seed: u8) -> std::io::Result<()> {
    let chunk: Vec<u8> = (0..MIB)
        .map(|index| (index as u8).wrapping_mul(31) ^ seed)
        .collect();
    while count > 0 {
        let take = count.min(MIB);
        out.write_all(&chunk[..take as usize])?;
        count -= take;
    }
    Ok(())
}

/// Like `write_chunked`, but incompressible (a random MiB, repeated beyond deflate's 32 KiB window).
fn write_random(out: &mut impl Write, mut count: u64) -> std::io::Result<()> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let chunk: Vec<u8> = (0..MIB)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    while count > 0 {
        let take = count.min(MIB);
        out.write_all(&chunk[..take as usize])?;
        count -= take;
    }
    Ok(())
}

/// `archive/data.pkl` for `tensors` storages, torch.save's protocol-2 layout.
fn data_pkl(tensors: usize, elements: u64) -> Vec<u8> {
    let mut out = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(".to_vec();
    for index in 0..tensors {
        let key = format!("layer{index}.weight");
        out.push(b'X');
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        let storage_key = index.to_string();
        out.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX");
        out.extend_from_slice(&(storage_key.len() as u32).to_le_bytes());
        out.extend_from_slice(storage_key.as_bytes());
        out.extend_from_slice(b"X\x03\x00\x00\x00cpu");
        out.push(b'J');
        out.extend_from_slice(&(elements as u32).to_le_bytes());
        out.extend_from_slice(b"tQK\x00J");
        out.extend_from_slice(&(elements as u32).to_le_bytes());
        out.extend_from_slice(b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR");
    }
    out.extend_from_slice(b"u.");
    out
}

fn write_torch_zip(path: &Path, total: u64) -> anyhow::Result<()> {
    let tensor_bytes = 32 * MIB;
    let tensors = (total / tensor_bytes).max(1) as usize;
    let mut writer = zip::ZipWriter::new(BufWriter::with_capacity(4 << 20, File::create(path)?));
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    writer.start_file("archive/data.pkl", stored)?;
    writer.write_all(&data_pkl(tensors, tensor_bytes / 4))?;
    writer.start_file("archive/byteorder", stored)?;
    writer.write_all(b"little")?;
    for index in 0..tensors {
        writer.start_file(format!("archive/data/{index}"), stored)?;
        write_chunked(&mut writer, tensor_bytes, index as u8)?;
    }
    writer.start_file("archive/version", stored)?;
    writer.write_all(b"3\n")?;
    writer.finish()?.flush()?;
    Ok(())
}

fn write_binbytes_pickle(path: &Path, total: u64) -> anyhow::Result<()> {
    let payload = 64 * MIB;
    let mut out = BufWriter::with_capacity(4 << 20, File::create(path)?);
    out.write_all(b"\x80\x05}(")?;
    for index in 0..(total / payload).max(1) {
        let key = format!("tensor{index}");
        out.write_all(&[0x8c, key.len() as u8])?;
        out.write_all(key.as_bytes())?;
        out.write_all(&[0x8e])?;
        out.write_all(&payload.to_le_bytes())?;
        write_chunked(&mut out, payload, index as u8)?;
    }
    out.write_all(b"u.")?;
    out.flush()?;
    Ok(())
}

/// joblib's layout: each array a NumpyArrayWrapper whose BUILD is followed by padding and raw bytes.
fn write_joblib(path: &Path, total: u64) -> anyhow::Result<()> {
    let array = 64 * MIB;
    let mut out = BufWriter::with_capacity(4 << 20, File::create(path)?);
    let put = |out: &mut BufWriter<File>, bytes: &[u8]| out.write_all(bytes);
    put(&mut out, b"\x80\x04]\x94(")?;
    for _ in 0..(total / array).max(1) {
        put(
            &mut out,
            b"\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper\x93)\x81}(\x8c\x05shape",
        )?;
        let mut shape = vec![b'J'];
        shape.extend_from_slice(&((array / 8) as u32).to_le_bytes());
        shape.push(0x85);
        put(&mut out, &shape)?;
        put(
            &mut out,
            b"\x8c\x05dtype\x8c\x05numpy\x8c\x05dtype\x93\x8c\x02f8\x89\x88\x87R(K\x03\x8c\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x8c\x1bnumpy_array_alignment_bytesK\x10ub",
        )?;
        let padding = 16 - ((out.stream_position()? + 1) % 16);
        let mut pad = vec![padding as u8];
        pad.extend(std::iter::repeat_n(0xff, padding as usize));
        put(&mut out, &pad)?;
        write_chunked(&mut out, array, 7)?;
    }
    put(&mut out, b"e.")?;
    out.flush()?;
    Ok(())
}

/// The worst case for speed: a deflated zip of incompressible tensors, whose pickle must be inflated
/// to be walked (no seeking inside a deflate stream).
fn write_deflated_zip(path: &Path, total: u64) -> anyhow::Result<()> {
    let mut writer = zip::ZipWriter::new(BufWriter::with_capacity(4 << 20, File::create(path)?));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    writer.start_file("model/tensors.pkl", deflated)?;
    let payload = 64 * MIB;
    writer.write_all(b"\x80\x05}(")?;
    for index in 0..(total / 4 / payload).max(1) {
        let key = format!("tensor{index}");
        writer.write_all(&[0x8c, key.len() as u8])?;
        writer.write_all(key.as_bytes())?;
        writer.write_all(&[0x8e])?;
        writer.write_all(&payload.to_le_bytes())?;
        write_random(&mut writer, payload)?;
    }
    writer.write_all(b"u.")?;
    writer.finish()?.flush()?;
    Ok(())
}

fn measure(path: &Path, name: &str, content: u64) -> anyhow::Result<ScanReport> {
    let size = std::fs::metadata(path)?.len();
    let content = if content == 0 { size } else { content };
    let mut best = f64::MAX;
    let mut report = None;
    for _ in 0..3 {
        let started = Instant::now();
        let scanned = scan(File::open(path)?, name, &Limits::default());
        best = best.min(started.elapsed().as_secs_f64());
        report = Some(scanned);
    }
    let report = report.ok_or_else(|| anyhow::anyhow!("no run"))?;
    println!(
        "{name:24} {:>5} MiB on disk, {:>5} MiB of content  {:>9.3} ms  {:>10.0} MB/s of content  verdict {}  bytes read {} ({:.4}%)",
        size / MIB,
        content / MIB,
        best * 1e3,
        content as f64 / best / 1e6,
        report.verdict,
        report.bytes_read,
        report.bytes_read as f64 * 100.0 / size as f64
    );
    Ok(report)
}

fn main() -> anyhow::Result<()> {
    let size_mib: u64 = std::env::args()
        .nth(1)
        .map(|text| text.parse())
        .transpose()?
        .unwrap_or(2048);
    let total = size_mib * MIB;
    let directory = tempfile::tempdir()?;
    let cases: [(&str, Writer); 4] = [
        ("pytorch_state_dict.pt", write_torch_zip),
        ("tensors_p5.pkl", write_binbytes_pickle),
        ("arrays.joblib", write_joblib),
        ("deflated_tensors.zip", write_deflated_zip),
    ];
    for (name, write) in cases {
        let path = directory.path().join(name);
        let started = Instant::now();
        write(&path, total)?;
        println!("wrote {name} in {:.1} s", started.elapsed().as_secs_f64());
        // The deflated zip holds a quarter of the total, uncompressed.
        let content = if name.starts_with("deflated") {
            total / 4
        } else {
            0
        };
        let report = measure(&path, name, content)?;
        if report.verdict != Verdict::Clean {
            println!("{}", serde_json::to_string_pretty(&report.findings)?);
        }
        std::fs::remove_file(&path)?;
    }
    Ok(())
}
