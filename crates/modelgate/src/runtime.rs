//! Finding, and when absent fetching, the ONNX Runtime library that model-mode evaluations run on.
//!
//! There is no Debian package of ONNX Runtime; its Python wheel on PyPI carries the shared library. So
//! the places searched are: `--onnxruntime-library`, `ORT_DYLIB_PATH`, next to the modelgate binary, the
//! data directory (where a fetch puts it), and an installed `onnxruntime` Python package. When none has
//! it, the pinned wheel is fetched from PyPI once into the data directory, its SHA-256 checked before
//! anything is unpacked (`modelgate runtime fetch`, and `serve` on start unless `--offline`).

use anyhow::{Context, bail};
use futures::StreamExt;
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The ONNX Runtime release this build is tested with.
pub const VERSION: &str = "1.32.0";
const LIBRARY_FILE: &str = "libonnxruntime.so.1.32.0";
const WHEEL_MEMBER: &str = "onnxruntime/capi/libonnxruntime.so.1.32.0";
/// The wheel (CPython 3.11, manylinux 2.28, x86-64; the shared library inside is the same for every
/// Python version) and its SHA-256 as PyPI publishes it.
const WHEEL_URL: &str = "https://files.pythonhosted.org/packages/1d/46/e6f356c9539d2eed44126de3421a81e217da2ad91b22dc11b379cb1e384f/onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl";
const WHEEL_SHA256: &str = "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d";
/// A wheel larger than this is not the one pinned.
const WHEEL_MAX_BYTES: u64 = 200 * 1024 * 1024;

/// Where the library was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub source: &'static str,
}

/// The folder a fetch writes to.
pub fn fetch_folder(data_dir: &Path) -> PathBuf {
    data_dir.join("onnxruntime")
}

/// Searches every place the library may be, in order.
pub fn find(configured: Option<&Path>, data_dir: &Path) -> Option<Found> {
    if let Some(path) = configured {
        return Some(Found {
            path: path.to_path_buf(),
            source: "--onnxruntime-library",
        });
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(Found {
            path: PathBuf::from(path),
            source: "ORT_DYLIB_PATH",
        });
    }
    if let Some(path) = modelgate_onnx::locate_runtime(None) {
        return Some(Found {
            path,
            source: "next to the modelgate binary",
        });
    }
    let fetched = fetch_folder(data_dir).join(LIBRARY_FILE);
    if fetched.is_file() {
        return Some(Found {
            path: fetched,
            source: "the data directory",
        });
    }
    python_package().map(|path| Found {
        path,
        source: "the installed onnxruntime Python package",
    })
}

/// The library inside an installed `onnxruntime` Python package of the pinned version, if there is one.
fn python_package() -> Option<PathBuf> {
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi'))",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let folder = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    let library = folder.join(LIBRARY_FILE);
    library.is_file().then_some(library)
}

/// Fetches the pinned wheel from PyPI into `DATA_DIR/onnxruntime`, checks its SHA-256, and unpacks the
/// library; returns its path. A wheel whose digest differs is discarded and nothing is unpacked. Progress
/// goes to standard error.
pub async fn fetch(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let folder = fetch_folder(data_dir);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let library = folder.join(LIBRARY_FILE);
    eprintln!(
        "fetching ONNX Runtime {VERSION} (the onnxruntime wheel from PyPI, ~35 MB) into {}",
        folder.display()
    );
    let response = reqwest::Client::new()
        .get(WHEEL_URL)
        .send()
        .await
        .with_context(|| format!("cannot reach PyPI ({WHEEL_URL})"))?
        .error_for_status()
        .context("PyPI refused the download")?;
    let mut wheel = tempfile::NamedTempFile::new_in(&folder)
        .with_context(|| format!("cannot write in {}", folder.display()))?;
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("the download was interrupted")?;
        received += chunk.len() as u64;
        if received > WHEEL_MAX_BYTES {
            bail!("the download is larger than the pinned wheel; it was discarded");
        }
        hasher.update(&chunk);
        wheel
            .write_all(&chunk)
            .context("cannot write the download")?;
    }
    let digest = hex::encode(hasher.finalize());
    if digest != WHEEL_SHA256 {
        bail!(
            "the downloaded wheel has SHA-256 {digest}, not the pinned {WHEEL_SHA256}; it was discarded"
        );
    }
    let wheel_path = wheel.path().to_path_buf();
    let folder_for_unpack = folder.clone();
    let unpacked = tokio::task::spawn_blocking(move || unpack(&wheel_path, &folder_for_unpack))
        .await
        .context("the unpacking task failed")??;
    unpacked
        .persist(&library)
        .with_context(|| format!("cannot move the library to {}", library.display()))?;
    eprintln!("ONNX Runtime {VERSION} is at {}", library.display());
    Ok(library)
}

/// Copies the library out of the wheel into a temporary file beside its destination.
fn unpack(wheel: &Path, folder: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let file = std::fs::File::open(wheel).context("cannot reopen the download")?;
    let mut archive = zip::ZipArchive::new(file).context("the wheel is not a zip archive")?;
    let mut member = archive
        .by_name(WHEEL_MEMBER)
        .with_context(|| format!("the wheel has no {WHEEL_MEMBER}"))?;
    let mut out = tempfile::NamedTempFile::new_in(folder)
        .with_context(|| format!("cannot write in {}", folder.display()))?;
    std::io::copy(&mut member, &mut out).context("cannot unpack the library")?;
    out.as_file()
        .sync_all()
        .context("cannot write the library")?;
    Ok(out)
}

/// `serve`'s view: the library to load now, or the reason there is none yet (and whether to fetch).
pub async fn prepare_for_serve(
    configured: Option<&Path>,
    data_dir: &Path,
    offline: bool,
) -> Option<PathBuf> {
    if let Some(found) = find(configured, data_dir) {
        tracing::info!(library = %found.path.display(), source = found.source, "ONNX Runtime found");
        return Some(found.path);
    }
    if offline {
        eprintln!(
            "ONNX Runtime was not found and --offline forbids fetching it: model-mode evaluations are \
             unavailable (run `modelgate runtime fetch --data-dir {}` once, or pass --onnxruntime-library)",
            data_dir.display()
        );
        return None;
    }
    match fetch(data_dir).await {
        Ok(path) => Some(path),
        Err(error) => {
            eprintln!(
                "could not fetch ONNX Runtime ({error:#}); model-mode evaluations are unavailable until it \
                 is found (see `modelgate runtime --help`)"
            );
            None
        }
    }
}
