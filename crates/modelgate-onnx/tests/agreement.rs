//! The models in `fixtures/` (by `fixtures/make_models.py`: scikit-learn pipelines exported with skl2onnx —
//! logistic regression, gradient boosting, a random forest with ZipMap, an MLP — and a neural network written
//! as ONNX layers with a single sigmoid output) give the same labels as ONNX Runtime in Python and
//! probabilities within 1e-5. Needs the runtime
//! library: `scripts/test` fetches it and sets ORT_DYLIB_PATH; without it this test fails and says how to
//! get it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelgate_onnx::{Model, init};
use std::path::Path;

#[test]
fn models_agree_with_onnx_runtime_in_python() {
    init(None).unwrap_or_else(|error| panic!("{error}"));
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("expected.json")).unwrap()).unwrap();
    let rows = fixture_rows(&expected);
    let models = expected["models"].as_object().unwrap();
    assert_eq!(models.len(), 5);
    for (name, model) in models {
        let bytes = std::fs::read(folder.join(model["file"].as_str().unwrap())).unwrap();
        let loaded = Model::load(&bytes).unwrap();
        let predictions = loaded.classify(&rows, 4).unwrap();
        let labels: Vec<i64> = model["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(predictions.labels, labels, "{name}: labels");
        for (row, (actual, wanted)) in predictions
            .positive_probability
            .iter()
            .zip(model["positive_probability"].as_array().unwrap())
            .enumerate()
        {
            let wanted = wanted.as_f64().unwrap();
            assert!(
                (actual - wanted).abs() <= 1e-5,
                "{name} row {row}: {actual} vs {wanted}"
            );
        }
    }
    assert!(matches!(
        Model::load(b"not a model"),
        Err(modelgate_onnx::OnnxError::BadModel(_))
    ));
}

fn fixture_rows(expected: &serde_json::Value) -> Vec<f32> {
    expected["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn multiclass_classifiers_and_regressors_agree_with_onnx_runtime_in_python() {
    init(None).unwrap_or_else(|error| panic!("{error}"));
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("expected.json")).unwrap()).unwrap();
    let rows = fixture_rows(&expected);
    let classifiers = expected["multiclass_models"].as_object().unwrap();
    assert_eq!(classifiers.len(), 2);
    for (name, model) in classifiers {
        let bytes = std::fs::read(folder.join(model["file"].as_str().unwrap())).unwrap();
        let predictions = Model::load(&bytes)
            .unwrap()
            .classify_classes(&rows, 4)
            .unwrap();
        let labels: Vec<String> = model["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap().to_string())
            .collect();
        assert_eq!(predictions.labels, labels, "{name}: labels");
        let (probabilities, columns) = predictions.probabilities.expect("probabilities");
        assert_eq!(columns, 3, "{name}");
        let wanted: Vec<f64> = model["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect();
        assert_eq!(probabilities.len(), wanted.len());
        for (index, (actual, wanted)) in probabilities.iter().zip(&wanted).enumerate() {
            assert!(
                (actual - wanted).abs() <= 1e-5,
                "{name} value {index}: {actual} vs {wanted}"
            );
        }
    }
    let regressors = expected["regression_models"].as_object().unwrap();
    assert_eq!(regressors.len(), 1);
    for (name, model) in regressors {
        let bytes = std::fs::read(folder.join(model["file"].as_str().unwrap())).unwrap();
        let loaded = Model::load(&bytes).unwrap();
        let values = loaded.regress(&rows, 4).unwrap();
        for (row, (actual, wanted)) in values
            .iter()
            .zip(model["values"].as_array().unwrap())
            .enumerate()
        {
            let wanted = wanted.as_f64().unwrap();
            assert!(
                (actual - wanted).abs() <= 1e-5 * wanted.abs().max(1.0),
                "{name} row {row}: {actual} vs {wanted}"
            );
        }
        // A regressor is not a classifier: asking it for classes is a clear error.
        let error = loaded.classify_classes(&rows, 4).unwrap_err();
        assert!(error.to_string().contains("no label output"), "{error}");
    }
}

#[test]
fn an_operator_the_runtime_cannot_run_is_named_in_the_error() {
    init(None).unwrap_or_else(|error| panic!("{error}"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/unknown_operator.onnx");
    let bytes = std::fs::read(path).unwrap();
    let error = match Model::load(&bytes) {
        Ok(_) => panic!("a model with an unknown operator loaded"),
        Err(error) => error,
    };
    assert!(
        matches!(error, modelgate_onnx::OnnxError::BadModel(_)),
        "{error}"
    );
    assert!(error.to_string().contains("FrobnicateRows"), "{error}");
}

#[test]
fn the_runtime_is_described_with_the_version_the_loaded_library_reports() {
    let path = init(None).unwrap_or_else(|error| panic!("{error}"));
    let description = modelgate_onnx::runtime_description().unwrap();
    // The library's file name carries its version (libonnxruntime.so.1.32.0); the library says the same.
    let name = path.file_name().unwrap().to_str().unwrap();
    let version = name
        .rsplit_once(".so.")
        .map(|(_, version)| version)
        .unwrap_or_else(|| panic!("{name} does not end in .so.VERSION"));
    assert_eq!(
        description,
        format!(
            "onnxruntime {version} via ort {}",
            modelgate_onnx::ORT_CRATE_VERSION
        )
    );
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"))
            .unwrap();
    assert!(
        lock.contains(&format!(
            "name = \"ort\"\nversion = \"{}\"",
            modelgate_onnx::ORT_CRATE_VERSION
        )),
        "ORT_CRATE_VERSION must match the ort in Cargo.lock"
    );
}
