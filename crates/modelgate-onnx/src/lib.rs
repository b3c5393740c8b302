//! Runs ONNX models — scikit-learn pipelines exported with skl2onnx (scalers, linear models, tree
//! ensembles, with or without ZipMap) and neural networks — through ONNX Runtime via the `ort` crate.
//! The runtime library is loaded at run time (`load-dynamic`): nothing downloads at build time, and a
//! missing library is a clear error, not a panic.

mod zipmap;

use ort::session::Session;
use ort::value::{DynMap, TensorElementType, TensorRef, ValueType};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error(
        "ONNX Runtime is not available: {0}. Fetch it once with `modelgate runtime fetch --data-dir DATA_DIR` \
         (the pinned wheel from PyPI, SHA-256 checked) and restart the server, or point --onnxruntime-library \
         or ORT_DYLIB_PATH at a libonnxruntime.so.1.32.0"
    )]
    RuntimeMissing(String),
    #[error("the ONNX model cannot be loaded: {0}")]
    BadModel(String),
    #[error("running the model failed: {0}")]
    Run(String),
    #[error("the model's outputs are not understood: {0}")]
    Outputs(String),
}

/// The loaded library: its path, the version it reports, and the environment every session shares.
struct Loaded {
    path: PathBuf,
    version: Option<String>,
    environment: ort::environment::Environment,
}

static ENVIRONMENT: OnceLock<Result<Loaded, String>> = OnceLock::new();

/// The `ort` crate this build runs ONNX Runtime through (pinned in the workspace's Cargo.toml; a test
/// holds this to Cargo.lock).
pub const ORT_CRATE_VERSION: &str = "2.0.0-rc.15";

/// Where to look for the library: the configured path, `ORT_DYLIB_PATH`, then next to the executable.
pub fn locate_runtime(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = configured {
        return Some(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(PathBuf::from(path));
    }
    let folder = std::env::current_exe().ok()?.parent()?.to_path_buf();
    std::fs::read_dir(&folder)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("libonnxruntime.so"))
        })
}

/// Loads ONNX Runtime once per process; later calls return the first outcome.
pub fn init(configured: Option<&Path>) -> Result<PathBuf, OnnxError> {
    let outcome = ENVIRONMENT.get_or_init(|| {
        let path = locate_runtime(configured).ok_or_else(|| "no library found".to_owned())?;
        if !path.exists() {
            return Err(format!("{} does not exist", path.display()));
        }
        let builder =
            ort::init_from(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        let environment = builder
            .with_name("modelgate")
            .build()
            .map_err(|error| error.to_string())?;
        let version = library_version(&path);
        Ok(Loaded {
            path,
            version,
            environment,
        })
    });
    match outcome {
        Ok(loaded) => Ok(loaded.path.clone()),
        Err(reason) => Err(OnnxError::RuntimeMissing(reason.clone())),
    }
}

/// What runs models, as an evaluation records it: `onnxruntime 1.32.0 via ort 2.0.0-rc.15`, with the
/// version the loaded library reports; `None` before [`init`] has loaded one.
pub fn runtime_description() -> Option<String> {
    match ENVIRONMENT.get()? {
        Ok(loaded) => Some(format!(
            "onnxruntime {} via ort {ORT_CRATE_VERSION}",
            loaded.version.as_deref().unwrap_or("(version unknown)")
        )),
        Err(_) => None,
    }
}

/// The version string ONNX Runtime reports (`OrtGetApiBase()->GetVersionString()`, e.g. `1.32.0`). `ort`
/// reads it when it loads the library but does not expose it, so it is asked again here.
#[allow(unsafe_code)]
fn library_version(path: &Path) -> Option<String> {
    // SAFETY: `path` is the library `ort` has just loaded and initialised from, so opening it again only
    // takes another reference to the same, already initialised image. `OrtGetApiBase` is the C entry
    // point every ONNX Runtime exports, with this signature (`ort::sys::OrtGetApiBase`); it returns a
    // pointer to a static struct, checked for null; `GetVersionString` returns a pointer to a static,
    // NUL-terminated string that must not be freed, also checked for null, and copied before the library
    // handle is dropped.
    unsafe {
        let library = libloading::Library::new(path).ok()?;
        let get_api_base: libloading::Symbol<
            unsafe extern "C" fn() -> *const ort::sys::OrtApiBase,
        > = library.get(b"OrtGetApiBase").ok()?;
        let base = get_api_base();
        if base.is_null() {
            return None;
        }
        let text = ((*base).GetVersionString)();
        if text.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(text)
            .to_str()
            .ok()
            .map(str::to_owned)
    }
}

/// A loaded model. Runs are serialised per model (a session is used by one run at a time).
pub struct Model {
    session: Mutex<Session>,
    input: String,
}

/// What a classifier said for each row.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub labels: Vec<i64>,
    /// The probability of class 1.
    pub positive_probability: Vec<f64>,
}

/// Predicted labels as the model gives them.
enum Labels {
    Numbers(Vec<i64>),
    Text(Vec<String>),
}

/// A float output, row-major with `columns` per row.
struct Scores {
    values: Vec<f64>,
    columns: usize,
}

#[derive(Default)]
struct RawOutputs {
    labels: Option<Labels>,
    scores: Option<Scores>,
}

/// What a classifier of any number of classes said for each row.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassPredictions {
    /// The predicted class, as text (`2`, `setosa`).
    pub labels: Vec<String>,
    /// Row-major probabilities and the number of columns (classes), in the model's class order.
    pub probabilities: Option<(Vec<f64>, usize)>,
}

impl Model {
    pub fn load(bytes: &[u8]) -> Result<Self, OnnxError> {
        init(None)?;
        let environment = match ENVIRONMENT.get() {
            Some(Ok(loaded)) => &loaded.environment,
            _ => return Err(OnnxError::RuntimeMissing("not initialised".to_owned())),
        };
        let bad = |error: String| OnnxError::BadModel(error);
        // One thread each: the default spinning pool was 1.8x slower on this 2-core machine.
        let mut builder = Session::builder(environment)
            .map_err(|error| bad(error.to_string()))?
            .with_intra_threads(1)
            .map_err(|error| bad(error.to_string()))?
            .with_inter_threads(1)
            .map_err(|error| bad(error.to_string()))?;
        // Probabilities as the tensor that feeds ZipMap, not as one map per row (see `zipmap`).
        let edited = zipmap::without_zipmap(bytes);
        let session = builder
            .commit_from_memory(edited.as_deref().unwrap_or(bytes))
            .map_err(|error| bad(error.to_string()))?;
        let input = session
            .inputs()
            .first()
            .map(|outlet| outlet.name().to_owned())
            .ok_or_else(|| OnnxError::BadModel("the model has no input".to_owned()))?;
        Ok(Self {
            session: Mutex::new(session),
            input,
        })
    }

    /// Runs the model on `rows` (row-major, `features` per row) and collects its outputs: the first
    /// integer or string tensor as labels, the first float tensor (or ZipMap's maps, by key) as scores.
    fn run(&self, rows: &[f32], features: usize) -> Result<RawOutputs, OnnxError> {
        let count = rows.len() / features.max(1);
        // A view of the rows, not a copy: the runtime reads them where they are.
        let tensor = TensorRef::from_array_view(([count, features], rows))
            .map_err(|error| OnnxError::Run(error.to_string()))?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| OnnxError::Run("the session lock is poisoned".to_owned()))?;
        let outputs = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(|error| OnnxError::Run(error.to_string()))?;
        let unreadable = |error: ort::Error| OnnxError::Outputs(error.to_string());
        let mut raw = RawOutputs::default();
        for (_, value) in outputs.iter() {
            match value.dtype() {
                ValueType::Tensor { ty, .. }
                    if *ty == TensorElementType::Int64 && raw.labels.is_none() =>
                {
                    let (_, data) = value.try_extract_tensor::<i64>().map_err(unreadable)?;
                    raw.labels = Some(Labels::Numbers(data.to_vec()));
                }
                ValueType::Tensor { ty, .. }
                    if *ty == TensorElementType::String && raw.labels.is_none() =>
                {
                    let (_, data) = value.try_extract_strings().map_err(unreadable)?;
                    raw.labels = Some(Labels::Text(data));
                }
                ValueType::Tensor { ty, .. }
                    if *ty == TensorElementType::Float32 && raw.scores.is_none() =>
                {
                    let (shape, data) = value.try_extract_tensor::<f32>().map_err(unreadable)?;
                    let columns = if shape.len() < 2 {
                        1
                    } else {
                        usize::try_from(shape[shape.len() - 1]).unwrap_or(1).max(1)
                    };
                    raw.scores = Some(Scores {
                        values: data.iter().map(|value| f64::from(*value)).collect(),
                        columns,
                    });
                }
                ValueType::Sequence(_) if raw.scores.is_none() => {
                    // ZipMap kept (the edit did not apply): one map from class to probability per row.
                    let maps = value
                        .try_extract_sequence::<ort::value::DynMapValueType>()
                        .map_err(unreadable)?;
                    let mut values = Vec::new();
                    let mut columns = 0;
                    for map in maps.iter() {
                        let map: &DynMap = map;
                        let mut entries: Vec<(i64, f32)> = map
                            .try_extract_map::<i64, f32>()
                            .map_err(unreadable)?
                            .into_iter()
                            .collect();
                        entries.sort_by_key(|(class, _)| *class);
                        columns = entries.len();
                        values.extend(entries.into_iter().map(|(_, p)| f64::from(p)));
                    }
                    raw.scores = Some(Scores {
                        values,
                        columns: columns.max(1),
                    });
                }
                _ => {}
            }
        }
        Ok(raw)
    }

    /// Runs a binary classifier on `rows` (row-major, `features` per row).
    pub fn classify(&self, rows: &[f32], features: usize) -> Result<Predictions, OnnxError> {
        let raw = self.run(rows, features)?;
        let scores = raw
            .scores
            .ok_or_else(|| OnnxError::Outputs("no probability output".to_owned()))?;
        // The last column is the probability of the positive class (class 1 of two; a single column is it).
        let positive_probability: Vec<f64> = scores
            .values
            .chunks(scores.columns)
            .map(|row| row.last().copied().unwrap_or(0.0))
            .collect();
        let labels = match raw.labels {
            Some(Labels::Numbers(labels)) => labels,
            _ => positive_probability
                .iter()
                .map(|p| i64::from(*p >= 0.5))
                .collect(),
        };
        Ok(Predictions {
            labels,
            positive_probability,
        })
    }

    /// Runs a classifier of any number of classes: the predicted class of each row as text, and the
    /// probabilities (one column per class, in the model's class order) when the model gives them.
    pub fn classify_classes(
        &self,
        rows: &[f32],
        features: usize,
    ) -> Result<ClassPredictions, OnnxError> {
        let raw = self.run(rows, features)?;
        let labels = match raw.labels {
            Some(Labels::Numbers(labels)) => labels.iter().map(i64::to_string).collect(),
            Some(Labels::Text(labels)) => labels,
            None => {
                return Err(OnnxError::Outputs(
                    "no label output: a classifier must give the predicted class of each row"
                        .to_owned(),
                ));
            }
        };
        Ok(ClassPredictions {
            labels,
            probabilities: raw.scores.map(|scores| (scores.values, scores.columns)),
        })
    }

    /// Runs a regressor: one number per row.
    pub fn regress(&self, rows: &[f32], features: usize) -> Result<Vec<f64>, OnnxError> {
        let raw = self.run(rows, features)?;
        let scores = raw.scores.ok_or_else(|| {
            OnnxError::Outputs("no float output: a regressor gives one number per row".to_owned())
        })?;
        if scores.columns != 1 {
            return Err(OnnxError::Outputs(format!(
                "the model gives {} numbers per row; a regressor gives one",
                scores.columns
            )));
        }
        Ok(scores.values)
    }
}
