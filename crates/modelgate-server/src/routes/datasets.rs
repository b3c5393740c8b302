//! Datasets over HTTP: register one (read from CSV or Parquet, validated against its declared schema, and
//! profiled), and read them back.

use crate::auth::Caller;
use crate::convert::format_time;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use modelgate_api as api;
use modelgate_core::{Digest, ModelName};
use modelgate_eval::dataset::{
    DatasetError, DatasetSchema, Table, Task, profile, read_table_within, validate,
};
use modelgate_store::DatasetRecord;
use serde_json::json;

/// How much larger than the file limit a Parquet file's columns may be once decoded.
const PARQUET_EXPANSION: u64 = 4;

pub(crate) fn dataset_error(field: &str, error: DatasetError) -> ApiError {
    let code = if error.too_large {
        ErrorCode::PayloadTooLarge
    } else {
        ErrorCode::InvalidArgument
    };
    ApiError::new(code, format!("{field}: {error}")).with_details(
        json!({ "field": field, "line": error.line, "row": error.row, "column": error.column }),
    )
}

/// Reads an uploaded dataset or predictions file (CSV or Parquet), only the `wanted` columns when given.
pub(crate) async fn load_table(
    state: &AppState,
    digest: &Digest,
    field: &str,
    wanted: Option<&[&str]>,
) -> Result<Table, ApiError> {
    state.store().get_artifact_record(digest).await.map_err(|_| {
        ApiError::invalid(field, format!("{field}: {digest} has not been uploaded; upload the file first (POST /api/v1/artifacts)"))
    })?;
    let bytes = state
        .artifacts()
        .read_to_vec(digest, state.max_dataset_bytes())
        .await
        .map_err(|error| ApiError::internal(&error))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "{field}: the file is larger than the server's limit of {} bytes for datasets and predictions; split it or start the server with a larger --max-dataset-bytes",
                    state.max_dataset_bytes()
                ),
            )
            .with_details(json!({ "field": field, "limit_bytes": state.max_dataset_bytes() }))
        })?;
    let wanted: Option<Vec<String>> =
        wanted.map(|columns| columns.iter().map(|column| (*column).to_owned()).collect());
    let field_name = field.to_owned();
    let max_bytes = state.max_dataset_bytes();
    tokio::task::spawn_blocking(move || {
        let wanted: Option<Vec<&str>> = wanted
            .as_ref()
            .map(|columns| columns.iter().map(String::as_str).collect());
        read_table_within(
            bytes::Bytes::from(bytes),
            wanted.as_deref(),
            max_bytes.saturating_mul(PARQUET_EXPANSION),
        )
        .map_err(|error| dataset_error(&field_name, error))
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
}

fn columns_wire(schema: &DatasetSchema) -> api::DatasetColumns {
    api::DatasetColumns {
        task: Some(schema.task.as_str().to_owned()),
        label: schema.label.clone(),
        features: schema.features.clone(),
        sensitive: schema.sensitive.clone(),
        weight: schema.weight.clone(),
        positive_label: schema.positive_label.clone(),
        classes: schema.classes.clone(),
    }
}

fn dataset_wire(record: &DatasetRecord) -> Result<api::Dataset, ApiError> {
    let schema: DatasetSchema =
        serde_json::from_str(&record.schema_json).map_err(|error| ApiError::internal(&error))?;
    Ok(api::Dataset {
        name: record.name.clone(),
        digest: record.digest.clone(),
        format: record.format.clone(),
        schema: columns_wire(&schema),
        rows: record.row_count,
        profile: serde_json::from_str(&record.profile_json)
            .map_err(|error| ApiError::internal(&error))?,
        created_by: record.created_by.clone(),
        created_at: format_time(record.created_at),
    })
}

#[utoipa::path(post, path = "/api/v1/datasets", tag = "evaluation", request_body = api::RegisterDataset,
    responses((status = 201, body = api::Dataset), (status = 400, body = api::ErrorBody, description = "Names the column and the line"), (status = 409, body = api::ErrorBody)))]
pub async fn register_dataset(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::RegisterDataset>,
) -> Result<(StatusCode, Json<api::Dataset>), ApiError> {
    let name = ModelName::parse(&request.name).map_err(|mut invalid| {
        invalid.field = "name";
        invalid
    })?;
    let digest = Digest::parse(&request.digest)?;
    if let Some(format) = &request.format
        && format != "csv"
        && format != "parquet"
    {
        return Err(ApiError::invalid(
            "format",
            format!("format: csv or parquet (got {format:?}); or leave it out to detect it"),
        ));
    }
    let task = match request.schema.task.as_deref() {
        None => Task::Binary,
        Some(text) => Task::parse(text).ok_or_else(|| {
            ApiError::invalid(
                "schema.task",
                format!("schema.task: binary, multiclass or regression (got {text:?})"),
            )
        })?,
    };
    if task == Task::Binary && request.schema.positive_label.trim().is_empty() {
        return Err(ApiError::invalid(
            "schema.positive_label",
            "schema.positive_label: a binary label needs the value that counts as positive (--positive-label)",
        ));
    }
    let schema = DatasetSchema {
        task,
        label: request.schema.label,
        features: request.schema.features,
        sensitive: request.schema.sensitive,
        weight: request.schema.weight,
        positive_label: request.schema.positive_label,
        classes: request.schema.classes,
    };
    let table = load_table(&state, &digest, "dataset", None).await?;
    let format = table.format().as_str().to_owned();
    if let Some(declared) = &request.format
        && declared != &format
    {
        return Err(ApiError::invalid(
            "format",
            format!("format: the file is {format}, not {declared}; leave format out to detect it"),
        ));
    }
    validate(&table, &schema).map_err(|error| dataset_error("dataset", error))?;
    let profile = profile(&table);
    let record = state
        .store()
        .create_dataset(
            &caller.attribution(state.now()),
            name.as_str(),
            &digest,
            &format,
            &serde_json::to_string(&schema).map_err(|error| ApiError::internal(&error))?,
            &serde_json::to_string(&profile).map_err(|error| ApiError::internal(&error))?,
            i64::try_from(profile.rows).unwrap_or(i64::MAX),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(dataset_wire(&record)?)))
}

#[utoipa::path(get, path = "/api/v1/datasets/{name}", tag = "evaluation",
    params(("name" = String, Path, description = "Dataset name")),
    responses((status = 200, body = api::Dataset), (status = 404, body = api::ErrorBody)))]
pub async fn get_dataset(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<api::Dataset>, ApiError> {
    Ok(Json(dataset_wire(
        &state.store().get_dataset(&name).await?,
    )?))
}

#[utoipa::path(get, path = "/api/v1/datasets", tag = "evaluation", responses((status = 200, body = api::DatasetList)))]
pub async fn list_datasets(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<api::DatasetList>, ApiError> {
    let datasets = state.store().list_datasets().await?;
    Ok(Json(api::DatasetList {
        datasets: datasets
            .iter()
            .map(dataset_wire)
            .collect::<Result<_, _>>()?,
    }))
}
