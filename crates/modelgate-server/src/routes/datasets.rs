//! Datasets over HTTP: register one (read from CSV or Parquet within the server's limits, validated
//! against its declared schema, and profiled; a role the policy names in `dataset_registrar_roles` is
//! needed), and read them back (listed without their profiles).

use crate::auth::Caller;
use crate::convert::{Wire, format_time};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use modelgate_api as api;
use modelgate_core::access::may_register_datasets;
use modelgate_core::{Digest, ModelName, Role};
use modelgate_eval::dataset::{
    DatasetError, DatasetSchema, Table, Task, profile, read_table_within, validate,
};
use modelgate_store::DatasetRecord;
use serde_json::json;

pub(crate) fn dataset_error(field: &str, error: DatasetError) -> ApiError {
    let code = if error.too_large {
        ErrorCode::PayloadTooLarge
    } else {
        ErrorCode::InvalidArgument
    };
    let mut details =
        json!({ "field": field, "line": error.line, "row": error.row, "column": error.column });
    if let Some(flag) = error.limit {
        details["limit"] = json!(flag);
    }
    ApiError::new(code, format!("{field}: {error}")).with_details(details)
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
    let limits = *state.dataset_limits();
    tokio::task::spawn_blocking(move || {
        let wanted: Option<Vec<&str>> = wanted
            .as_ref()
            .map(|columns| columns.iter().map(String::as_str).collect());
        read_table_within(bytes::Bytes::from(bytes), wanted.as_deref(), &limits)
            .map_err(|error| dataset_error(&field_name, error))
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
}

fn columns_wire(schema: &DatasetSchema) -> api::DatasetColumns {
    api::DatasetColumns {
        task: Some(schema.task.to_wire()),
        label: schema.label.clone(),
        features: schema.features.clone(),
        sensitive: schema.sensitive.clone(),
        weight: schema.weight.clone(),
        positive_label: schema.positive_label.clone(),
        classes: schema.classes.clone(),
    }
}

fn dataset_summary_wire(record: &DatasetRecord) -> Result<api::DatasetSummary, ApiError> {
    let schema: DatasetSchema =
        serde_json::from_str(&record.schema_json).map_err(|error| ApiError::internal(&error))?;
    Ok(api::DatasetSummary {
        name: record.name.clone(),
        digest: record.digest.clone(),
        format: crate::convert::stored_dataset_format(&record.format)?,
        schema: columns_wire(&schema),
        rows: record.row_count,
        created_by: record.created_by.clone(),
        created_at: format_time(record.created_at),
    })
}

fn dataset_wire(record: &DatasetRecord) -> Result<api::Dataset, ApiError> {
    let summary = dataset_summary_wire(record)?;
    let profile = match &record.profile_json {
        Some(text) => serde_json::from_str(text).map_err(|error| ApiError::internal(&error))?,
        None => serde_json::Value::Null,
    };
    Ok(api::Dataset {
        name: summary.name,
        digest: summary.digest,
        format: summary.format,
        schema: summary.schema,
        rows: summary.rows,
        profile,
        created_by: summary.created_by,
        created_at: summary.created_at,
    })
}

#[utoipa::path(post, path = "/api/v1/datasets", tag = "evaluation", request_body = api::RegisterDataset,
    responses((status = 201, body = api::Dataset), (status = 400, body = api::ErrorBody, description = "Names the column and the line"),
              (status = 403, body = api::ErrorBody, description = "The caller holds none of the policy's dataset_registrar_roles"),
              (status = 409, body = api::ErrorBody),
              (status = 413, body = api::ErrorBody, description = "Past a limit of the server (file size, columns, cell size, rows, profile size); details.limit names the flag that raises it")))]
/// Register an evaluation dataset
///
/// Reads an uploaded CSV or Parquet file (by digest) within the server's limits, checks it against the
/// declared schema (problems name the column and the line or row) and keeps a profile. Only the roles the
/// policy names may register datasets.
pub async fn register_dataset(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<api::RegisterDataset>,
) -> Result<(StatusCode, Json<api::Dataset>), ApiError> {
    let name = ModelName::parse(&request.name).map_err(|mut invalid| {
        invalid.field = "name";
        invalid
    })?;
    // Before the file is read: reading, checking and profiling it is what costs.
    let in_force = crate::promotion::policy_in_force(&state).await?;
    let registrars: Vec<Role> = in_force
        .policy
        .dataset_registrar_roles
        .iter()
        .cloned()
        .collect();
    state
        .authorize(
            &caller,
            "dataset.register",
            &format!("dataset/{name}"),
            may_register_datasets(caller.user(), &registrars),
        )
        .await?;
    let digest = Digest::parse(&request.digest)?;
    let task = request.schema.task.map_or(Task::Binary, Task::from_wire);
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
    let format = table.format();
    if let Some(declared) = request.format
        && declared != format.to_wire()
    {
        return Err(ApiError::invalid(
            "format",
            format!(
                "format: the file is {}, not {declared}; leave format out to detect it",
                format.as_str()
            ),
        ));
    }
    validate(&table, &schema).map_err(|error| dataset_error("dataset", error))?;
    let profile = profile(&table);
    let profile_json =
        serde_json::to_string(&profile).map_err(|error| ApiError::internal(&error))?;
    state
        .dataset_limits()
        .check_profile(profile_json.len())
        .map_err(|error| dataset_error("dataset", error))?;
    let record = state
        .store()
        .create_dataset(
            &caller.attribution(state.now()),
            name.as_str(),
            &digest,
            format.as_str(),
            &serde_json::to_string(&schema).map_err(|error| ApiError::internal(&error))?,
            &profile_json,
            i64::try_from(profile.rows).unwrap_or(i64::MAX),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(dataset_wire(&record)?)))
}

#[utoipa::path(get, path = "/api/v1/datasets/{name}", tag = "evaluation",
    params(("name" = String, Path, description = "Dataset name")),
    responses((status = 200, body = api::Dataset), (status = 404, body = api::ErrorBody)))]
/// A dataset with its profile
///
/// The dataset's schema, row count and full column profile.
pub async fn get_dataset(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<api::Dataset>, ApiError> {
    Ok(Json(dataset_wire(
        &state.store().get_dataset(&name).await?,
    )?))
}

#[utoipa::path(get, path = "/api/v1/datasets", tag = "evaluation",
    responses((status = 200, body = api::DatasetList, description = "Every dataset without its profile (GET /api/v1/datasets/{name} has it)")))]
/// List datasets
///
/// Every registered dataset as a summary, without profiles.
pub async fn list_datasets(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<api::DatasetList>, ApiError> {
    let datasets = state.store().list_datasets().await?;
    Ok(Json(api::DatasetList {
        datasets: datasets
            .iter()
            .map(dataset_summary_wire)
            .collect::<Result<_, _>>()?,
    }))
}
