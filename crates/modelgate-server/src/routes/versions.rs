//! `/api/v1/models/{name}/versions`: register versions bound to uploaded artifacts, read, list, describe,
//! tag, archive, and download their artifacts.

use super::artifacts::serve_artifact;
use super::models::maintained_model;
use crate::auth::Caller;
use crate::convert::{self, Wire, decode_cursor, encode_cursor, parse_tag_filter, parse_tags};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::text;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use modelgate_api as api;
use modelgate_core::{
    Digest, InvalidInput, Lineage, ModelName, NewVersion, PageRequest, Stage, TagKey,
    VersionFilter, VersionNumber,
};

fn parse_model_and_version(
    name: &str,
    number: &str,
) -> Result<(ModelName, VersionNumber), ApiError> {
    Ok((ModelName::parse(name)?, VersionNumber::parse(number)?))
}

fn bounded_text(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value {
        Some(text) if text.chars().count() > max => {
            Err(InvalidInput::new(field, format!("must be at most {max} characters")).into())
        }
        other => Ok(other),
    }
}

fn lineage(wire: api::Lineage) -> Result<Lineage, ApiError> {
    let training_data_digest = wire
        .training_data_digest
        .as_deref()
        .map(|text| {
            Digest::parse(text).map_err(|mut invalid| {
                invalid.field = "lineage.training_data_digest";
                invalid
            })
        })
        .transpose()?;
    Ok(Lineage {
        code_repository: bounded_text("lineage.code_repository", wire.code_repository, 2048)?,
        code_commit: bounded_text("lineage.code_commit", wire.code_commit, 256)?,
        training_data_uri: bounded_text("lineage.training_data_uri", wire.training_data_uri, 2048)?,
        training_data_digest,
        parameters: {
            text::check_tags("lineage.parameters", &wire.parameters)?;
            wire.parameters
        },
        metadata_json: {
            let metadata = serde_json::Value::Object(wire.metadata).to_string();
            text::check_length("lineage.metadata (as JSON)", &metadata, text::METADATA)?;
            metadata
        },
    })
}

#[utoipa::path(post, path = "/api/v1/models/{name}/versions", tag = "versions",
    params(("name" = String, Path, description = "Model name")),
    request_body = api::CreateVersionRequest,
    responses((status = 201, body = api::Version), (status = 404, body = api::ErrorBody),
              (status = 409, body = api::ErrorBody, description = "`failed_precondition`: the artifact was not uploaded, or the model is archived")))]
/// Register a version
///
/// Binds the model's next version number to an uploaded artifact's digest, with lineage; versions are
/// immutable.
pub async fn create_version(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<api::CreateVersionRequest>,
) -> Result<(StatusCode, Json<api::Version>), ApiError> {
    let name = ModelName::parse(&name)?;
    maintained_model(&state, &caller, &name, "version.create").await?;
    let digest = Digest::parse(&request.digest)?;
    text::check_length("description", &request.description, text::DESCRIPTION)?;
    let new_version = NewVersion {
        digest,
        format: bounded_text("format", request.format, 64)?.unwrap_or_else(|| "binary".to_owned()),
        media_type: media_type(bounded_text("media_type", request.media_type, 255)?)?,
        lineage: lineage(request.lineage)?,
        description: request.description,
        tags: parse_tags(&request.tags)?,
    };
    let version = state
        .store()
        .create_version(&caller.attribution(state.now()), &name, &new_version)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(convert::version(
            &version,
            crate::promotion::approval_context(&state).await?,
        )),
    ))
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, body = api::Version), (status = 404, body = api::ErrorBody)))]
/// A version
///
/// Its digest, lineage, stage, approval (status, expiry, review flags) and suspension.
pub async fn get_version(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> Result<Json<api::Version>, ApiError> {
    let (name, number) = parse_model_and_version(&name, &number)?;
    let version = state.store().get_version(&name, number).await?;
    let model = state.store().get_model(&name).await?;
    let mut wire = convert::version(&version, crate::promotion::approval_context(&state).await?);
    wire.monitoring = super::monitoring::version_monitoring(
        &state,
        &name,
        number,
        version.stage,
        model.risk_tier,
    )
    .await?;
    Ok(Json(wire))
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions", tag = "versions",
    params(("name" = String, Path, description = "Model name"), api::ListVersionsQuery),
    responses((status = 200, body = api::VersionList), (status = 404, body = api::ErrorBody)))]
/// List a model's versions
///
/// Filtered by stage and tag, paged by `cursor`.
pub async fn list_versions(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<api::ListVersionsQuery>,
) -> Result<Json<api::VersionList>, ApiError> {
    let name = ModelName::parse(&name)?;
    let filter = VersionFilter {
        stage: query.stage.map(Stage::from_wire),
        tag: query.tag.as_deref().map(parse_tag_filter).transpose()?,
    };
    let mut page = PageRequest::first(
        query
            .limit
            .unwrap_or(PageRequest::<VersionNumber>::DEFAULT_LIMIT),
    );
    if let Some(cursor) = &query.cursor {
        page.after = Some(VersionNumber::parse(&decode_cursor(cursor)?).map_err(|_| {
            ApiError::invalid("cursor", "cursor: not a cursor this server returned")
        })?);
    }
    let result = state.store().list_versions(&name, &filter, &page).await?;
    Ok(Json(api::VersionList {
        versions: {
            let context = crate::promotion::approval_context(&state).await?;
            result
                .items
                .iter()
                .map(|version| convert::version(version, context))
                .collect()
        },
        next_cursor: result
            .next_after
            .map(|number| encode_cursor(&number.to_string())),
    }))
}

#[utoipa::path(patch, path = "/api/v1/models/{name}/versions/{version}", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = api::UpdateVersionRequest,
    responses((status = 200, body = api::Version), (status = 404, body = api::ErrorBody)))]
/// Change a version's description
///
/// Only the description; digest, lineage and format never change.
pub async fn update_version(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<api::UpdateVersionRequest>,
) -> Result<Json<api::Version>, ApiError> {
    let (name, number) = parse_model_and_version(&name, &number)?;
    maintained_model(&state, &caller, &name, "version.update").await?;
    let attribution = caller.attribution(state.now());
    text::check_optional_length(
        "description",
        request.description.as_deref(),
        text::DESCRIPTION,
    )?;
    let version = match request.description {
        Some(description) => {
            state
                .store()
                .update_version_description(&attribution, &name, number, &description)
                .await?
        }
        None => state.store().get_version(&name, number).await?,
    };
    Ok(Json(convert::version(
        &version,
        crate::promotion::approval_context(&state).await?,
    )))
}

#[utoipa::path(put, path = "/api/v1/models/{name}/versions/{version}/tags/{key}", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"),
           ("key" = String, Path, description = "Tag key")),
    request_body = api::SetTagRequest,
    responses((status = 200, body = api::Version), (status = 404, body = api::ErrorBody)))]
/// Set a version tag
///
/// Sets or replaces the value of one tag.
pub async fn set_version_tag(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, number, key)): ApiPath<(String, String, String)>,
    ApiJson(request): ApiJson<api::SetTagRequest>,
) -> Result<Json<api::Version>, ApiError> {
    let (name, number) = parse_model_and_version(&name, &number)?;
    let key = TagKey::parse(&key)?;
    text::check_length("value", &request.value, text::SHORT)?;
    maintained_model(&state, &caller, &name, "version.tag.set").await?;
    let version = state
        .store()
        .set_version_tag(
            &caller.attribution(state.now()),
            &name,
            number,
            &key,
            &request.value,
        )
        .await?;
    Ok(Json(convert::version(
        &version,
        crate::promotion::approval_context(&state).await?,
    )))
}

#[utoipa::path(delete, path = "/api/v1/models/{name}/versions/{version}/tags/{key}", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"),
           ("key" = String, Path, description = "Tag key")),
    responses((status = 200, body = api::Version), (status = 404, body = api::ErrorBody)))]
/// Remove a version tag
///
/// Removes one tag; 404 when the version has no such tag.
pub async fn delete_version_tag(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, number, key)): ApiPath<(String, String, String)>,
) -> Result<Json<api::Version>, ApiError> {
    let (name, number) = parse_model_and_version(&name, &number)?;
    let key = TagKey::parse(&key)?;
    maintained_model(&state, &caller, &name, "version.tag.delete").await?;
    let version = state
        .store()
        .delete_version_tag(&caller.attribution(state.now()), &name, number, &key)
        .await?;
    Ok(Json(convert::version(
        &version,
        crate::promotion::approval_context(&state).await?,
    )))
}

#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/archive", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, body = api::Version), (status = 409, body = api::ErrorBody)))]
/// Archive a version
///
/// Nothing is deleted: the version leaves its stage and its open requests are withdrawn.
pub async fn archive_version(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> Result<Json<api::Version>, ApiError> {
    let (name, number) = parse_model_and_version(&name, &number)?;
    maintained_model(&state, &caller, &name, "version.archive").await?;
    let version = state
        .store()
        .archive_version(&caller.attribution(state.now()), &name, number)
        .await?;
    Ok(Json(convert::version(
        &version,
        crate::promotion::approval_context(&state).await?,
    )))
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/artifact", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"),
           ("Range" = Option<String>, Header, description = "`bytes=START-END`, `bytes=START-` or `bytes=-SUFFIX`")),
    responses((status = 200, content_type = "*/*", body = Vec<u8>, description = "The bytes, with the version's media type as `Content-Type`"),
              (status = 206, content_type = "*/*", body = Vec<u8>, description = "A range of the bytes"),
              (status = 404, body = api::ErrorBody), (status = 416, body = api::ErrorBody)))]
/// Download a version's artifact
///
/// The bytes bound to the version, with their digest as ETag and the version's media type as
/// `Content-Type`; `Range` requests give 206.
pub async fn download_version_artifact(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (name, number) = parse_model_and_version(&name, &number)?;
    let version = state.store().get_version(&name, number).await?;
    let record = state.store().get_artifact_record(&version.digest).await?;
    let filename = format!(
        "{}-v{}.{}",
        version.model_name, version.number, version.format
    );
    serve_artifact(&state, &record, &headers, &filename, &version.media_type).await
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/scan", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, body = api::ScanReport),
              (status = 404, body = api::ErrorBody, description = "No such version, or its artifact has not been scanned yet")))]
/// A version's artifact scan
///
/// What the artifact scanner found in the version's artifact, read without executing anything: every
/// pickle import with its module and name, archive entries that escape or inflate without bound, ONNX
/// custom operator domains and external data, malformed streams — each with its severity, entry path and
/// byte offset — and the verdict (`clean`, `unscanned`, `suspicious`, `dangerous`). The report is part of
/// the version's evidence (`artifact.scan.verdict`, `artifact.scan.findings`).
pub async fn get_version_scan(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> Result<Json<api::ScanReport>, ApiError> {
    let (name, number) = parse_model_and_version(&name, &number)?;
    let version = state.store().get_version(&name, number).await?;
    let Some(record) = state.store().scan_of(&version.digest).await? else {
        return Err(ApiError::new(
            crate::error::ErrorCode::NotFound,
            format!(
                "the artifact of {name} version {number} ({}) has not been scanned yet; the server scans \
                 every stored artifact in the background, so ask again shortly",
                version.digest
            ),
        ));
    };
    let report = crate::scanning::parse_stored(&record)?;
    Ok(Json(convert::scan_report(&record, &report)))
}

/// A media type as `Content-Type` will carry it when the artifact is downloaded: `type/subtype`, with
/// optional parameters, in printable ASCII; absent means `application/octet-stream`.
fn media_type(given: Option<String>) -> Result<String, ApiError> {
    let Some(text) = given else {
        return Ok("application/octet-stream".to_owned());
    };
    let token = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    let (essence, parameters) = text.split_once(';').unwrap_or((&text, ""));
    let valid = essence
        .split_once('/')
        .is_some_and(|(kind, subtype)| token(kind) && token(subtype))
        && parameters.chars().all(|c| c == ' ' || c.is_ascii_graphic());
    if valid {
        Ok(text)
    } else {
        Err(ApiError::invalid(
            "media_type",
            format!(
                "media_type: must be a media type such as application/octet-stream or \
                 application/x-onnx (got {text:?})"
            ),
        ))
    }
}
