//! The OpenAPI document as served: the one derived from the handlers' annotations, plus what every
//! operation shares and the derive cannot say — the value rules of the domain's names and digests (the
//! same rules `modelgate_core` parses with), the closed sets that are still text on the wire (card
//! formats, and the stages a gate leads into), required request bodies, and the error responses
//! every authenticated operation can give. Written once here, by parameter and property name, so that a
//! client generated from the document (or schemathesis in CI) knows every reason a request can be refused
//! for its shape. Stages, tiers, states, decisions, modes and statuses are enums of `modelgate_api`, so the
//! derive describes them (as `#/components/schemas/Stage` …).

use serde_json::{Value, json};

const MODEL_NAME: &str = "^[a-z0-9][a-z0-9._-]{0,127}$";
const USERNAME: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";
const ROLE: &str = "^[a-z][a-z0-9_]{0,63}$";
const TAG_KEY: &str = "^[A-Za-z0-9._/:-]{1,128}$";
const TAG_FILTER: &str = "^[A-Za-z0-9._/:-]{1,128}(=.*)?$";
const DIGEST: &str = "^sha256:[0-9a-f]{64}$";
const TOKEN_ID: &str = "^tok_[0-9a-f]{16}$";
/// A card diff's other side: a version number or a stage.
/// What `card diff` compares with: a version number, or the version in production (the only stage the
/// handler resolves; version numbers are u32, so at most nine digits here).
const AGAINST: &str = "^([1-9][0-9]{0,8}|production)$";
const MEDIA_TYPE: &str = "^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(;[ -~]*)?$";
const SINCE: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,3})?Z)?$";
/// Text that must say something: at least one character that is not white space.
const SOMETHING: &str = "\\S";
/// A token name: 1–128 characters, no control characters, not only spaces.
const TOKEN_NAME: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";
/// A printed name: no control, bidirectional or zero-width characters, not only spaces.
const PRINTED_NAME: &str = "^[^\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2069\\ufeff]*[^\\x00-\\x20\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2069\\ufeff][^\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2069\\ufeff]*$";

const CARD_EXPORTS: [&str; 4] = ["hf", "mct", "markdown", "html"];
const CARD_IMPORTS: [&str; 2] = ["hf", "mct"];

/// Operations that answer without a token.
const ANONYMOUS: [&str; 3] = ["/healthz", "/readyz", "/api/v1/auth/login"];

fn pattern(regex: &str) -> Value {
    json!({ "type": "string", "pattern": regex })
}

fn one_of(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

/// The rule of a path or query parameter, by the operation's path and the parameter's name.
fn parameter_rule(path: &str, location: &str, name: &str) -> Option<Value> {
    let rule = match (location, name) {
        ("path", "name") | ("query", "model") => pattern(MODEL_NAME),
        ("path", "username") | ("query", "owner") => pattern(USERNAME),
        ("path", "digest") | ("query", "digest") | ("query", "expected_digest") => pattern(DIGEST),
        ("path", "key") => pattern(TAG_KEY),
        ("query", "tag") => pattern(TAG_FILTER),
        ("path", "version") => json!({ "type": "integer", "format": "int32", "minimum": 1 }),
        ("path", "id") if path.starts_with("/api/v1/tokens") => pattern(TOKEN_ID),
        ("path", "id") => json!({ "type": "integer", "format": "int64", "minimum": 1 }),
        // Gates lead into staging and production only (a policy may not gate `development`).
        ("query", "stage") if path.ends_with("/explain") || path.ends_with("/attestation") => {
            one_of(&["staging", "production"])
        }
        ("query", "against") => pattern(AGAINST),
        ("query", "since") => pattern(SINCE),
        ("query", "limit") if path.contains("evaluation-jobs") => {
            json!({ "type": "integer", "format": "int32", "minimum": 1, "maximum": 500 })
        }
        ("query", "limit") => json!({ "type": "integer", "format": "int32", "minimum": 1 }),
        ("query", "format") if path.ends_with("/import") => one_of(&CARD_IMPORTS),
        ("query", "format") => one_of(&CARD_EXPORTS),
        _ => return None,
    };
    Some(rule)
}

/// The rule of a request body's property, by the body's schema name and the property's name.
fn property_rule(schema: &str, property: &str) -> Option<Value> {
    let rule = match (schema, property) {
        ("CreateModelRequest", "name")
        | ("OpenRequest" | "RunEvaluation", "model")
        | ("RegisterDataset", "name")
        | ("RunEvaluation", "dataset") => pattern(MODEL_NAME),
        ("CreateModelRequest" | "UpdateModelRequest", "owner")
        | ("CreateUserRequest" | "CreateTokenRequest" | "LoginRequest", "username") => {
            pattern(USERNAME)
        }
        ("CreateVersionRequest" | "RegisterDataset", "digest")
        | ("RunEvaluation", "predictions_digest")
        | ("SubmitReview", "evidence_digest") => pattern(DIGEST),
        ("OpenRequest" | "RunEvaluation", "version") => {
            json!({ "type": "integer", "format": "int32", "minimum": 1 })
        }
        ("OpenRequest", "justification")
        | ("SuspendVersion", "reason")
        | ("SubmitComment", "body")
        | ("MarkEvaluation", "reason") => pattern(SOMETHING),
        ("CreateUserRequest" | "UpdateUserRequest", "printed_name") => {
            json!({ "type": "string", "pattern": PRINTED_NAME, "maxLength": 200 })
        }
        ("CreateTokenRequest", "name") => {
            json!({ "type": "string", "pattern": TOKEN_NAME, "maxLength": 128 })
        }
        ("CreateModelRequest" | "CreateVersionRequest", "tags") => json!({
            "type": "object",
            "propertyNames": { "pattern": TAG_KEY },
            "additionalProperties": { "type": "string" },
        }),
        ("SubmitReview", "role") => pattern(ROLE),
        ("CreateUserRequest" | "UpdateUserRequest", "roles") => {
            json!({ "type": "array", "items": pattern(ROLE) })
        }
        ("CreateUserRequest" | "UpdateUserRequest" | "LoginRequest", "password") => {
            json!({ "type": "string", "minLength": 12 })
        }
        // The default `--max-token-days`; a server started with another says so in its refusal.
        ("CreateTokenRequest", "expires_in_days") => {
            json!({ "type": "integer", "format": "int32", "minimum": 1, "maximum": 365 })
        }
        ("Lineage", "training_data_digest") => pattern(DIGEST),
        // Responses: what the server sends is as closed as what it takes.
        ("Model", "name") => pattern(MODEL_NAME),
        ("Version" | "Artifact", "digest") => pattern(DIGEST),
        ("CreateVersionRequest", "media_type") => pattern(MEDIA_TYPE),
        _ => return None,
    };
    Some(rule)
}

/// Keeps a property's description and nullability while replacing its value rule.
fn constrain(slot: &mut Value, rule: Value) {
    let nullable = slot["type"]
        .as_array()
        .is_some_and(|types| types.iter().any(|kind| kind == "null"))
        || slot.get("oneOf").is_some();
    let description = slot.get("description").cloned();
    let mut rule = rule;
    if nullable {
        if let Some(kind) = rule.get("type").cloned() {
            rule["type"] = json!([kind, "null"]);
        }
        if let Some(values) = rule.get_mut("enum").and_then(Value::as_array_mut) {
            values.push(Value::Null);
        }
    }
    if let Some(description) = description {
        rule["description"] = description;
    }
    *slot = rule;
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
    })
}

/// The document `/api/v1/openapi.json` serves, as JSON: the derived one with the shared rules added.
/// (utoipa's `OpenApi` does not read back from JSON, so the edited document is served as a value.)
pub fn document() -> Value {
    let derived = <crate::routes::ApiDoc as utoipa::OpenApi>::openapi();
    let mut value = serde_json::to_value(&derived).unwrap_or(Value::Null);
    constrain_document(&mut value);
    value
}

/// Adds the shared rules to a document derived by utoipa.
pub fn constrain_document(document: &mut Value) {
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(operations) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in operations.iter_mut() {
                constrain_operation(path, method, operation);
            }
        }
    }
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (property, slot) in properties.iter_mut() {
                if let Some(rule) = property_rule(name, property) {
                    constrain(slot, rule);
                }
            }
        }
    }
}

fn constrain_operation(path: &str, method: &str, operation: &mut Value) {
    let is_read = method == "get";
    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for parameter in parameters.iter_mut() {
            let location = parameter["in"].as_str().unwrap_or_default().to_owned();
            let name = parameter["name"].as_str().unwrap_or_default().to_owned();
            if let Some(rule) = parameter_rule(path, &location, &name)
                && let Some(schema) = parameter.get_mut("schema")
            {
                constrain(schema, rule);
            }
        }
    }
    let has_body = match operation.get_mut("requestBody") {
        Some(body) => {
            body["required"] = json!(true);
            true
        }
        None => false,
    };
    let has_input = has_body
        || operation
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|parameters| !parameters.is_empty());
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    // Bytes are bytes: an artifact is described as binary, whatever media type it is served with.
    for response in responses.values_mut() {
        if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
            for (media_type, body) in content.iter_mut() {
                if media_type == "*/*" || media_type == "application/octet-stream" {
                    body["schema"] = json!({ "type": "string", "format": "binary" });
                }
            }
        }
    }
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description));
    };
    if has_input {
        add(
            "404",
            "A resource the request names (in its path, query or body) does not exist",
        );
        add(
            "400",
            "The request is malformed: `error.details.field` names the field and the message the fix",
        );
    }
    if has_body {
        add("413", "The body is larger than the server accepts");
    }
    if !is_read {
        add(
            "409",
            "The state does not allow it now (already so, archived, changed meanwhile): the message says what",
        );
    }
    if !ANONYMOUS.contains(&path) {
        add(
            "401",
            "No token, or one that is unknown, revoked or expired (`Authorization: Bearer <token>`)",
        );
        add(
            "403",
            "The caller may not do this; the refusal is in the audit log",
        );
    }
    add("429", "Too many attempts; wait before trying again");
    add(
        "500",
        "An internal error; the server log has the details under the response's `x-request-id`",
    );
    add(
        "503",
        "The server is starting, stopping or its database is busy; retry shortly",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_summary_and_a_description() {
        let document = document();
        let mut lacking = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for field in ["summary", "description"] {
                    if operation[field]
                        .as_str()
                        .is_none_or(|text| text.trim().is_empty())
                    {
                        lacking.push(format!("{method} {path}: {field}"));
                    }
                }
            }
        }
        assert!(lacking.is_empty(), "{lacking:#?}");
    }

    #[test]
    fn the_served_document_states_the_domains_rules() {
        let document = document();
        let model = &document["paths"]["/api/v1/models/{name}"]["get"];
        assert_eq!(model["parameters"][0]["schema"]["pattern"], MODEL_NAME);
        assert!(model["responses"]["401"].is_object());
        let open = &document["components"]["schemas"]["OpenRequest"]["properties"];
        assert_eq!(open["version"]["minimum"], 1);
        let health = &document["paths"]["/healthz"]["get"]["responses"];
        assert!(health.get("401").is_none(), "health checks need no token");
        // Every rule is a valid regular expression in the document's dialect (ECMA 262, which these use
        // no feature of beyond what Rust's `regex` reads the same).
        for regex in [
            MODEL_NAME, USERNAME, ROLE, TAG_KEY, TAG_FILTER, DIGEST, TOKEN_ID, SINCE,
        ] {
            assert!(regex.starts_with('^') && regex.ends_with('$'), "{regex}");
        }
    }
}

#[cfg(test)]
mod enum_tests {
    use super::document;
    use modelgate_core::promotion::{RequestState, ReviewDecision};
    use modelgate_core::{RiskTier, Stage};
    use serde_json::{Value, json};

    /// The values a property or parameter schema allows, through a `$ref` and an optional's `oneOf`
    /// (whose `null` is left out).
    fn allowed(document: &Value, schema: &Value) -> Vec<String> {
        if let Some(reference) = schema["$ref"].as_str() {
            let target = reference.trim_start_matches('#');
            return allowed(document, document.pointer(target).unwrap_or(&Value::Null));
        }
        if let Some(options) = schema["oneOf"].as_array() {
            return options
                .iter()
                .flat_map(|option| allowed(document, option))
                .collect();
        }
        schema["enum"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|value| value.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn property(document: &Value, schema: &str, name: &str) -> Vec<String> {
        let slot = &document["components"]["schemas"][schema]["properties"][name];
        assert!(slot.is_object(), "{schema}.{name} is in the document");
        allowed(document, slot)
    }

    fn parameter(document: &Value, path: &str, name: &str) -> Vec<String> {
        let parameters = document["paths"][path]["get"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let found = parameters
            .iter()
            .find(|parameter| parameter["name"] == name)
            .unwrap_or_else(|| panic!("{path} takes {name}"));
        allowed(document, &found["schema"])
    }

    fn spelled<T: Copy>(values: &[T], as_str: fn(T) -> &'static str) -> Vec<String> {
        values
            .iter()
            .map(|value| as_str(*value).to_owned())
            .collect()
    }

    #[test]
    fn closed_sets_are_enums_with_exactly_the_cores_values() {
        let document = document();
        let stages = spelled(&Stage::ALL, Stage::as_str);
        let tiers = spelled(&RiskTier::ALL, RiskTier::as_str);
        let states = spelled(
            &[
                RequestState::Open,
                RequestState::Approved,
                RequestState::Rejected,
                RequestState::Withdrawn,
            ],
            RequestState::as_str,
        );
        let decisions = spelled(
            &[
                ReviewDecision::Approve,
                ReviewDecision::Reject,
                ReviewDecision::RequestChanges,
            ],
            ReviewDecision::as_str,
        );
        assert_eq!(property(&document, "PromotionRequest", "state"), states);
        assert_eq!(
            property(&document, "PromotionRequest", "from_stage"),
            stages
        );
        assert_eq!(property(&document, "Explanation", "target_stage"), stages);
        assert_eq!(property(&document, "Explanation", "current_stage"), stages);
        assert_eq!(property(&document, "SubmitReview", "decision"), decisions);
        assert_eq!(property(&document, "ReviewRecord", "decision"), decisions);
        assert_eq!(property(&document, "Model", "risk_tier"), tiers);
        assert_eq!(
            property(&document, "CreateModelRequest", "risk_tier"),
            tiers
        );
        assert_eq!(
            property(&document, "UpdateModelRequest", "risk_tier"),
            tiers
        );
        assert_eq!(property(&document, "OpenRequest", "stage"), stages);
        assert_eq!(
            property(&document, "VersionApproval", "status"),
            ["active", "review_due", "expired", "suspended"]
        );
        assert_eq!(
            property(&document, "EvaluationJob", "state"),
            ["queued", "running", "succeeded", "failed", "cancelled"]
        );
        assert_eq!(
            property(&document, "DatasetColumns", "task"),
            ["binary", "multiclass", "regression"]
        );
        assert_eq!(
            property(&document, "RegisterDataset", "format"),
            ["csv", "parquet"]
        );
        assert_eq!(property(&document, "Dataset", "format"), ["csv", "parquet"]);
        assert_eq!(parameter(&document, "/api/v1/requests", "state"), states);
        assert_eq!(parameter(&document, "/api/v1/models", "risk_tier"), tiers);
        assert_eq!(parameter(&document, "/api/v1/models", "stage"), stages);
        assert_eq!(parameter(&document, "/api/v1/gate", "stage"), stages);
        // A gate leads into staging and production only: explain says so, narrower than the type.
        assert_eq!(
            parameter(
                &document,
                "/api/v1/models/{name}/versions/{version}/explain",
                "stage"
            ),
            ["staging", "production"]
        );
        let stage = &document["components"]["schemas"]["Stage"];
        assert_eq!(stage["type"], json!("string"), "{stage}");
    }
}
