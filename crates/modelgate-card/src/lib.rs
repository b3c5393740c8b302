//! Model cards: the canonical, versioned schema of a version's documentation (published as JSON Schema),
//! validation that reports every problem as `{path, message}`, completeness against the fields a policy
//! requires, canonical digests of revisions, and field-level diffs. Pure: no I/O.

pub mod formats;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// The schema's version, recorded in every card.
pub const SCHEMA_VERSION: &str = "modelgate.model-card/v1";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    #[serde(default)]
    pub model_details: ModelDetails,
    #[serde(default)]
    pub intended_use: IntendedUse,
    /// The data the model was trained on.
    #[serde(default)]
    pub training_data: Vec<Dataset>,
    /// The data it was evaluated on.
    #[serde(default)]
    pub evaluation_data: Vec<Dataset>,
    /// Metrics typed in by people are claimed; the server adds verified ones from its evaluations.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness_considerations: Option<String>,
    #[serde(default)]
    pub ethical_considerations: Vec<EthicalConsideration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitations: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tradeoffs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caveats_and_recommendations: Option<String>,
    #[serde(default)]
    pub regulatory: Regulatory,
    /// Free-form sections, for content that maps nowhere else (kept, never dropped, on import).
    #[serde(default)]
    pub additional: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub owners: Vec<Owner>,
    /// An SPDX licence identifier or expression (`Apache-2.0`, `MIT OR Apache-2.0`, `LicenseRef-internal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntendedUse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_uses: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_users: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_scope_uses: Option<String>,
}

/// A dataset with the questions of "Datasheets for Datasets".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// `sha256:<hex>` of the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motivation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub dataset: String,
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<String>,
    pub value: f64,
    /// A confidence interval `[low, high]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_size: Option<u64>,
    /// True only for metrics the server computed; typed-in metrics are claimed.
    #[serde(default)]
    pub verified: bool,
    /// How a verified number was obtained: `model` (the server ran the version's own artifact) or
    /// `predictions` (the server computed it from scores a client supplied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EthicalConsideration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation: Option<String>,
}

/// What EU AI Act Article 11 / Annex IV and Article 13 ask a provider to state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Regulatory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_purpose: Option<String>,
    /// The Annex III high-risk category, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eu_ai_act_high_risk_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human_oversight: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_market_monitoring_plan: Option<String>,
}

/// One problem in a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardProblem {
    /// A dotted path: `model_details.license`, `training_data[0].name`.
    pub path: String,
    pub message: String,
}

/// The field paths a policy may require (the leaves and lists of the schema).
pub const KNOWN_PATHS: &[&str] = &[
    "model_details.name",
    "model_details.description",
    "model_details.owners",
    "model_details.license",
    "model_details.references",
    "model_details.citation",
    "intended_use.primary_uses",
    "intended_use.primary_users",
    "intended_use.out_of_scope_uses",
    "training_data",
    "evaluation_data",
    "metrics",
    "fairness_considerations",
    "ethical_considerations",
    "limitations",
    "tradeoffs",
    "caveats_and_recommendations",
    "regulatory.intended_purpose",
    "regulatory.eu_ai_act_high_risk_category",
    "regulatory.human_oversight",
    "regulatory.post_market_monitoring_plan",
];

/// The JSON Schema (2020-12) of a card.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(ModelCard)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "$id".to_owned(),
            serde_json::json!("/api/v1/schemas/model-card.json"),
        );
        object.insert("title".to_owned(), serde_json::json!(SCHEMA_VERSION));
    }
    schema
}

/// Parses and validates a card given as JSON; every problem comes back with its path.
pub fn parse(json: &str) -> Result<ModelCard, Vec<CardProblem>> {
    let deserializer = &mut serde_json::Deserializer::from_str(json);
    let card: ModelCard = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        vec![CardProblem {
            path: if path == "." || path == "?" {
                String::new()
            } else {
                path
            },
            message: error.inner().to_string(),
        }]
    })?;
    let problems = validate(&card);
    if problems.is_empty() {
        Ok(card)
    } else {
        Err(problems)
    }
}

/// Checks what types alone cannot: SPDX licences, digests, metric values.
pub fn validate(card: &ModelCard) -> Vec<CardProblem> {
    let mut problems = Vec::new();
    if let Some(license) = &card.model_details.license
        && let Err(error) = spdx::Expression::parse(license)
    {
        problems.push(CardProblem {
            path: "model_details.license".to_owned(),
            message: format!("{license:?} is not an SPDX licence identifier or expression ({error}); use e.g. Apache-2.0, MIT, or LicenseRef-<name>"),
        });
    }
    for (section, datasets) in [
        ("training_data", &card.training_data),
        ("evaluation_data", &card.evaluation_data),
    ] {
        for (index, dataset) in datasets.iter().enumerate() {
            if dataset.name.trim().is_empty() {
                problems.push(CardProblem {
                    path: format!("{section}[{index}].name"),
                    message: "a dataset needs a name".to_owned(),
                });
            }
            if let Some(digest) = &dataset.digest {
                let valid = digest.strip_prefix("sha256:").is_some_and(|hex| {
                    hex.len() == 64
                        && hex
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                });
                if !valid {
                    problems.push(CardProblem {
                        path: format!("{section}[{index}].digest"),
                        message: "must be sha256: followed by 64 lowercase hex digits".to_owned(),
                    });
                }
            }
        }
    }
    for (index, metric) in card.metrics.iter().enumerate() {
        if !metric.value.is_finite() {
            problems.push(CardProblem {
                path: format!("metrics[{index}].value"),
                message: "must be a finite number".to_owned(),
            });
        }
        if metric.verified {
            problems.push(CardProblem {
                path: format!("metrics[{index}].verified"),
                message: "only the server marks metrics verified; typed-in metrics are claimed"
                    .to_owned(),
            });
        }
    }
    problems
}

/// The canonical bytes of a card (RFC 8785) and their digest, which a sign-off is bound to.
pub fn digest(card: &ModelCard) -> String {
    let bytes = serde_json_canonicalizer::to_vec(card).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Whether the value at a dotted path is filled in (a non-blank string, a non-empty list or map).
fn present(card: &serde_json::Value, path: &str) -> bool {
    let mut value = card;
    for part in path.split('.') {
        match value.get(part) {
            Some(next) => value = next,
            None => return false,
        }
    }
    match value {
        serde_json::Value::Null => false,
        serde_json::Value::String(text) => !text.trim().is_empty(),
        serde_json::Value::Array(items) => !items.is_empty(),
        serde_json::Value::Object(fields) => !fields.is_empty(),
        _ => true,
    }
}

/// The required paths the card leaves empty.
pub fn missing(card: &ModelCard, required: &[String]) -> Vec<String> {
    let value = serde_json::to_value(card).unwrap_or_default();
    required
        .iter()
        .filter(|path| !present(&value, path))
        .cloned()
        .collect()
}

/// One changed field between two cards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, field) in fields {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, field, out);
            }
        }
        serde_json::Value::Array(items) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{index}]"), item, out);
            }
        }
        serde_json::Value::Array(_) | serde_json::Value::Null => {}
        leaf => {
            out.insert(prefix.to_owned(), leaf.clone());
        }
    }
}

/// Every field of a card that has a value, by path (`training.data`), for rendering field by field.
pub fn fields(card: &ModelCard) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    flatten(
        "",
        &serde_json::to_value(card).unwrap_or_default(),
        &mut out,
    );
    out
}

/// Field-level differences from `before` to `after`, in path order.
pub fn diff(before: &ModelCard, after: &ModelCard) -> Vec<FieldChange> {
    let mut old = BTreeMap::new();
    let mut new = BTreeMap::new();
    flatten(
        "",
        &serde_json::to_value(before).unwrap_or_default(),
        &mut old,
    );
    flatten(
        "",
        &serde_json::to_value(after).unwrap_or_default(),
        &mut new,
    );
    let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let (a, b) = (old.get(path), new.get(path));
            (a != b).then(|| FieldChange {
                path: path.clone(),
                before: a.cloned(),
                after: b.cloned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_parse_and_problems_name_their_path() {
        let card = parse(r#"{"model_details": {"name": "credit", "license": "Apache-2.0"}, "limitations": "retail only"}"#).unwrap();
        assert_eq!(card.model_details.name.as_deref(), Some("credit"));
        let cases = [
            (r#"{"model_details": {"name": 3}}"#, "model_details.name"),
            (
                r#"{"model_details": {"licence": "MIT"}}"#,
                "model_details.licence",
            ),
            (
                r#"{"training_data": [{"source": "x"}]}"#,
                "training_data[0]",
            ),
            (
                r#"{"model_details": {"license": "Apache-2"}}"#,
                "model_details.license",
            ),
            (
                r#"{"training_data": [{"name": "t", "digest": "md5:1"}]}"#,
                "training_data[0].digest",
            ),
            (
                r#"{"metrics": [{"dataset": "d", "metric": "auc", "value": 0.9, "verified": true}]}"#,
                "metrics[0].verified",
            ),
            ("{", ""),
        ];
        for (json, path) in cases {
            let problems = parse(json).unwrap_err();
            assert!(
                problems.iter().any(|problem| problem.path == path),
                "{json}: {problems:?}"
            );
        }
        assert!(parse(r#"{"model_details": {"license": "MIT OR Apache-2.0"}}"#).is_ok());
    }

    #[test]
    fn completeness_and_diffs() {
        let mut card =
            parse(r#"{"model_details": {"name": "credit", "owners": []}, "limitations": "  "}"#)
                .unwrap();
        let required: Vec<String> = [
            "model_details.name",
            "model_details.owners",
            "limitations",
            "regulatory.human_oversight",
        ]
        .iter()
        .map(|path| path.to_string())
        .collect();
        assert_eq!(
            missing(&card, &required),
            [
                "model_details.owners",
                "limitations",
                "regulatory.human_oversight"
            ]
        );
        let before = card.clone();
        card.limitations = Some("retail lending only".to_owned());
        card.model_details.owners.push(Owner {
            name: "Risk Team".to_owned(),
            contact: None,
        });
        let changes = diff(&before, &card);
        let paths: Vec<&str> = changes.iter().map(|change| change.path.as_str()).collect();
        assert_eq!(paths, ["limitations", "model_details.owners[0].name"]);
        assert_ne!(digest(&before), digest(&card));
        assert!(KNOWN_PATHS.iter().all(|path| !path.is_empty()));
        let schema = json_schema();
        assert!(
            schema["properties"]["model_details"].is_object(),
            "{schema}"
        );
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }
}
