//! Interchange: Hugging Face model cards (`README.md` with YAML front matter), Model Card Toolkit JSON
//! (schema v0.0.2), and renderings for reviewers (Markdown and HTML, with the approval signatures).
//! Imports keep what they cannot map (in `additional`) and report where everything went.

use crate::{Dataset, EthicalConsideration, Metric, ModelCard, Owner};
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Where one piece of imported content went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub from: String,
    pub to: String,
}

/// A card read from another format, and where each part went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Imported {
    pub card: ModelCard,
    pub report: Vec<Mapping>,
}

/// An import that cannot be read, with its position when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// A signature shown on a rendered card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    pub printed_name: String,
    pub role: String,
    pub meaning: String,
    pub signed_at: String,
}

/// The SPDX identifier for a licence as Hugging Face writes it (`apache-2.0` → `Apache-2.0`).
fn spdx_from_hf(license: &str) -> String {
    spdx::identifiers::LICENSES
        .iter()
        .find(|entry| entry.name.eq_ignore_ascii_case(license))
        .map_or_else(|| license.to_owned(), |entry| entry.name.to_owned())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Reads a Hugging Face `README.md`: front matter (`license`, `datasets`, `metrics`, `base_model`,
/// `model-index`) and Markdown sections whose headings match ours.
pub fn import_hugging_face(readme: &str) -> Result<Imported, ImportError> {
    let mut card = ModelCard::default();
    let mut report = Vec::new();
    let (front, body) = split_front_matter(readme)?;
    if let Some(front) = front {
        let yaml: yaml_serde::Value =
            yaml_serde::from_str(front.text).map_err(|error| ImportError {
                line: error
                    .location()
                    .map(|location| location.line() + front.first_line),
                column: error.location().map(|location| location.column()),
                message: format!("front matter is not valid YAML: {error}"),
            })?;
        let front_matter: Value = serde_json::to_value(&yaml).map_err(|error| ImportError {
            line: Some(front.first_line),
            column: None,
            message: format!("front matter cannot be read: {error}"),
        })?;
        if let Some(fields) = front_matter.as_object() {
            for (key, value) in fields {
                match key.as_str() {
                    "license" => {
                        card.model_details.license = Some(spdx_from_hf(&text(value)));
                        report.push(Mapping {
                            from: "front matter: license".into(),
                            to: "model_details.license".into(),
                        });
                    }
                    "datasets" => {
                        for name in value.as_array().into_iter().flatten() {
                            card.training_data.push(Dataset {
                                name: text(name),
                                ..Dataset::default()
                            });
                        }
                        report.push(Mapping {
                            from: "front matter: datasets".into(),
                            to: "training_data".into(),
                        });
                    }
                    "model-index" => {
                        for model in value.as_array().into_iter().flatten() {
                            if card.model_details.name.is_none() {
                                card.model_details.name = model.get("name").map(text);
                            }
                            for result in model
                                .get("results")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                            {
                                let dataset = result["dataset"]["name"]
                                    .as_str()
                                    .or(result["dataset"]["type"].as_str())
                                    .unwrap_or("unknown");
                                for metric in result
                                    .get("metrics")
                                    .and_then(Value::as_array)
                                    .into_iter()
                                    .flatten()
                                {
                                    if let Some(value) = metric.get("value").and_then(Value::as_f64)
                                    {
                                        card.metrics.push(Metric {
                                            dataset: dataset.to_owned(),
                                            metric: metric["type"]
                                                .as_str()
                                                .or(metric["name"].as_str())
                                                .unwrap_or("metric")
                                                .to_owned(),
                                            value,
                                            verified: false,
                                            ..Metric::default()
                                        });
                                    }
                                }
                            }
                        }
                        report.push(Mapping {
                            from: "front matter: model-index".into(),
                            to: "metrics (claimed)".into(),
                        });
                    }
                    other => {
                        let stored = format!("front_matter.{other}");
                        card.additional.insert(
                            stored.clone(),
                            match value {
                                Value::String(text) => text.clone(),
                                other => other.to_string(),
                            },
                        );
                        report.push(Mapping {
                            from: format!("front matter: {other}"),
                            to: format!("additional.{stored}"),
                        });
                    }
                }
            }
        }
    }
    for (heading, content) in sections(body) {
        let content = content.trim().to_owned();
        if let Some(name) = heading.strip_prefix("Model Card for ") {
            card.model_details
                .name
                .get_or_insert_with(|| name.trim().to_owned());
        }
        if content.is_empty() {
            continue;
        }
        if heading.is_empty() || heading.starts_with("Model Card for ") {
            card.additional.insert("introduction".to_owned(), content);
            report.push(Mapping {
                from: format!(
                    "section: {}",
                    if heading.is_empty() {
                        "(before the first heading)"
                    } else {
                        heading.as_str()
                    }
                ),
                to: "additional.introduction".to_owned(),
            });
            continue;
        }
        let target = match heading.to_ascii_lowercase().as_str() {
            "model description" | "model details" | "description" => {
                card.model_details.description = Some(content);
                "model_details.description"
            }
            "direct use" | "intended use" | "uses" | "intended uses" => {
                card.intended_use.primary_uses = Some(content);
                "intended_use.primary_uses"
            }
            "out-of-scope use" | "out of scope use" | "out-of-scope uses" => {
                card.intended_use.out_of_scope_uses = Some(content);
                "intended_use.out_of_scope_uses"
            }
            "bias, risks, and limitations" | "limitations" | "risks and limitations" => {
                card.limitations = Some(content);
                "limitations"
            }
            "recommendations" => {
                card.caveats_and_recommendations = Some(content);
                "caveats_and_recommendations"
            }
            "training data" => {
                match card.training_data.first_mut() {
                    Some(dataset) => dataset.composition = Some(content),
                    None => card.training_data.push(Dataset {
                        name: "training data".into(),
                        composition: Some(content),
                        ..Dataset::default()
                    }),
                }
                "training_data[0].composition"
            }
            "testing data" | "evaluation data" => {
                card.evaluation_data.push(Dataset {
                    name: "evaluation data".into(),
                    composition: Some(content),
                    ..Dataset::default()
                });
                "evaluation_data[0].composition"
            }
            "citation" => {
                card.model_details.citation = Some(content);
                "model_details.citation"
            }
            _ => {
                let key = if heading.is_empty() {
                    "introduction".to_owned()
                } else {
                    heading.clone()
                };
                card.additional.insert(key.clone(), content);
                report.push(Mapping {
                    from: format!("section: {heading}"),
                    to: format!("additional.{key}"),
                });
                continue;
            }
        };
        report.push(Mapping {
            from: format!("section: {heading}"),
            to: target.to_owned(),
        });
    }
    Ok(Imported { card, report })
}

struct FrontMatter<'a> {
    text: &'a str,
    /// The line number (1-based) of the front matter's first line in the file, minus one.
    first_line: usize,
}

fn split_front_matter(readme: &str) -> Result<(Option<FrontMatter<'_>>, &str), ImportError> {
    let Some(rest) = readme
        .strip_prefix("---\n")
        .or_else(|| readme.strip_prefix("---\r\n"))
    else {
        return Ok((None, readme));
    };
    let end = rest.find("\n---").ok_or(ImportError {
        line: Some(1),
        column: Some(1),
        message: "the front matter opened with --- is never closed".to_owned(),
    })?;
    let body = rest[end + 4..].trim_start_matches(['\r', '\n']);
    Ok((
        Some(FrontMatter {
            text: &rest[..end + 1],
            first_line: 1,
        }),
        body,
    ))
}

/// Markdown sections by heading (any level), in order; text before the first heading has an empty heading.
fn sections(body: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = vec![(String::new(), String::new())];
    for line in body.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            let heading = trimmed.trim_start_matches('#').trim().to_owned();
            found.push((heading, String::new()));
        } else if let Some((_, content)) = found.last_mut() {
            content.push_str(line);
            content.push('\n');
        }
    }
    found
}

/// A Hugging Face `README.md`; `verified: true` only for metrics the server computed.
pub fn export_hugging_face(card: &ModelCard) -> String {
    let mut front = serde_json::Map::new();
    if let Some(license) = &card.model_details.license {
        front.insert("license".into(), json!(license.to_ascii_lowercase()));
    }
    if !card.training_data.is_empty() {
        front.insert(
            "datasets".into(),
            json!(
                card.training_data
                    .iter()
                    .map(|d| d.name.clone())
                    .collect::<Vec<_>>()
            ),
        );
    }
    if !card.metrics.is_empty() {
        let mut results: Vec<Value> = Vec::new();
        let mut datasets: Vec<&str> = card.metrics.iter().map(|m| m.dataset.as_str()).collect();
        datasets.dedup();
        for dataset in datasets {
            let metrics: Vec<Value> = card
                .metrics
                .iter()
                .filter(|metric| metric.dataset == dataset)
                .map(|metric| {
                    let mut entry = json!({ "type": metric.metric, "value": metric.value, "verified": metric.verified });
                    if let Some(method) = &metric.method {
                        entry["method"] = json!(method);
                    }
                    entry
                })
                .collect();
            results.push(json!({ "task": { "type": "tabular-classification" }, "dataset": { "name": dataset, "type": dataset }, "metrics": metrics }));
        }
        front.insert(
            "model-index".into(),
            json!([{ "name": card.model_details.name.clone().unwrap_or_else(|| "model".into()), "results": results }]),
        );
    }
    let mut out = String::from("---\n");
    if !front.is_empty() {
        out.push_str(&yaml_serde::to_string(&Value::Object(front)).unwrap_or_default());
    }
    out.push_str("---\n\n");
    let name = card
        .model_details
        .name
        .clone()
        .unwrap_or_else(|| "this model".into());
    let _ = writeln!(out, "# Model Card for {name}\n");
    if let Some(introduction) = card.additional.get("introduction") {
        let _ = writeln!(out, "{}\n", introduction.trim());
    }
    let mut section = |heading: &str, content: &Option<String>| {
        if let Some(content) = content.as_deref().filter(|c| !c.trim().is_empty()) {
            let _ = writeln!(out, "## {heading}\n\n{}\n", content.trim());
        }
    };
    section("Model Description", &card.model_details.description);
    section("Direct Use", &card.intended_use.primary_uses);
    section("Out-of-Scope Use", &card.intended_use.out_of_scope_uses);
    section("Bias, Risks, and Limitations", &card.limitations);
    section("Recommendations", &card.caveats_and_recommendations);
    section(
        "Training Data",
        &card
            .training_data
            .first()
            .and_then(|d| d.composition.clone()),
    );
    section(
        "Testing Data",
        &card
            .evaluation_data
            .first()
            .and_then(|d| d.composition.clone()),
    );
    section("Citation", &card.model_details.citation);
    for (heading, content) in &card.additional {
        if !heading.starts_with("front_matter.") && heading != "introduction" {
            section(heading, &Some(content.clone()));
        }
    }
    out
}

/// A Model Card Toolkit JSON document (schema v0.0.2).
pub fn export_model_card_toolkit(card: &ModelCard) -> Value {
    let describe = |items: Vec<String>| {
        items
            .into_iter()
            .map(|d| json!({ "description": d }))
            .collect::<Vec<_>>()
    };
    json!({
        "schema_version": "0.0.2",
        "model_details": {
            "name": card.model_details.name,
            "overview": card.model_details.description,
            "owners": card.model_details.owners.iter().map(|o| json!({ "name": o.name, "contact": o.contact })).collect::<Vec<_>>(),
            "licenses": card.model_details.license.iter().map(|l| json!({ "identifier": l })).collect::<Vec<_>>(),
            "references": card.model_details.references.iter().map(|r| json!({ "reference": r })).collect::<Vec<_>>(),
            "citations": card.model_details.citation.iter().map(|c| json!({ "citation": c })).collect::<Vec<_>>(),
        },
        "model_parameters": {
            "data": card.training_data.iter().chain(&card.evaluation_data).map(|d| json!({ "name": d.name, "link": d.link, "sensitive": Value::Null })).collect::<Vec<_>>(),
        },
        "quantitative_analysis": {
            "performance_metrics": card.metrics.iter().map(|m| {
                let mut metric = json!({ "type": m.metric, "value": m.value, "slice": m.slice.clone().unwrap_or_else(|| m.dataset.clone()) });
                if let Some([lower, upper]) = m.interval {
                    metric["confidence_interval"] = json!({ "lower_bound": lower, "upper_bound": upper });
                }
                metric
            }).collect::<Vec<_>>(),
        },
        "considerations": {
            "users": describe(card.intended_use.primary_users.iter().cloned().collect()),
            "use_cases": describe(card.intended_use.primary_uses.iter().cloned().collect()),
            "limitations": describe(card.limitations.iter().cloned().collect()),
            "tradeoffs": describe(card.tradeoffs.iter().cloned().collect()),
            "ethical_considerations": card.ethical_considerations.iter().map(|e| json!({ "name": e.name, "mitigation_strategy": e.mitigation })).collect::<Vec<_>>(),
        },
    })
}

/// Reads a Model Card Toolkit JSON document (schema v0.0.2).
pub fn import_model_card_toolkit(json_text: &str) -> Result<Imported, ImportError> {
    let document: Value = serde_json::from_str(json_text).map_err(|error| ImportError {
        line: Some(error.line()),
        column: Some(error.column()),
        message: format!("not JSON: {error}"),
    })?;
    let mut card = ModelCard::default();
    let mut report = Vec::new();
    let mut note = |from: &str, to: &str| {
        report.push(Mapping {
            from: from.into(),
            to: to.into(),
        })
    };
    let details = &document["model_details"];
    let first_text = |values: &Value, field: &str| -> Vec<String> {
        values
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v[field].as_str().map(str::to_owned))
            .collect()
    };
    card.model_details.name = details["name"].as_str().map(str::to_owned);
    card.model_details.description = details["overview"].as_str().map(str::to_owned);
    card.model_details.owners = details["owners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| Owner {
            name: text(&o["name"]),
            contact: o["contact"].as_str().map(str::to_owned),
        })
        .collect();
    card.model_details.license = first_text(&details["licenses"], "identifier")
        .into_iter()
        .next();
    card.model_details.references = first_text(&details["references"], "reference");
    card.model_details.citation = first_text(&details["citations"], "citation")
        .into_iter()
        .next();
    note("model_details", "model_details");
    for data in document["model_parameters"]["data"]
        .as_array()
        .into_iter()
        .flatten()
    {
        card.training_data.push(Dataset {
            name: data["name"].as_str().unwrap_or("dataset").to_owned(),
            link: data["link"].as_str().map(str::to_owned),
            ..Dataset::default()
        });
    }
    note("model_parameters.data", "training_data");
    for metric in document["quantitative_analysis"]["performance_metrics"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(value) = metric["value"]
            .as_f64()
            .or_else(|| metric["value"].as_str().and_then(|v| v.parse().ok()))
        {
            card.metrics.push(Metric {
                dataset: metric["slice"].as_str().unwrap_or("overall").to_owned(),
                metric: text(&metric["type"]),
                value,
                interval: metric["confidence_interval"]["lower_bound"]
                    .as_f64()
                    .zip(metric["confidence_interval"]["upper_bound"].as_f64())
                    .map(|(lower, upper)| [lower, upper]),
                verified: false,
                ..Metric::default()
            });
        }
    }
    note(
        "quantitative_analysis.performance_metrics",
        "metrics (claimed)",
    );
    let considerations = &document["considerations"];
    let joined = |field: &str| {
        let items = first_text(&considerations[field], "description");
        (!items.is_empty()).then(|| items.join("\n"))
    };
    card.intended_use.primary_users = joined("users");
    card.intended_use.primary_uses = joined("use_cases");
    card.limitations = joined("limitations");
    card.tradeoffs = joined("tradeoffs");
    card.ethical_considerations = considerations["ethical_considerations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| EthicalConsideration {
            name: text(&e["name"]),
            mitigation: e["mitigation_strategy"].as_str().map(str::to_owned),
        })
        .collect();
    note(
        "considerations",
        "intended_use, limitations, tradeoffs, ethical_considerations",
    );
    for (key, value) in document.as_object().into_iter().flatten() {
        if ![
            "schema_version",
            "model_details",
            "model_parameters",
            "quantitative_analysis",
            "considerations",
        ]
        .contains(&key.as_str())
        {
            card.additional
                .insert(format!("mct.{key}"), value.to_string());
            note(key, &format!("additional.mct.{key}"));
        }
    }
    Ok(Imported { card, report })
}

/// A Markdown document for reviewers, with the approval signatures (name, role, time, meaning).
pub fn render_markdown(card: &ModelCard, signatures: &[Signature]) -> String {
    let escape = |text: &str| text.replace('<', "&lt;").replace('>', "&gt;");
    let mut out = String::new();
    let name = card
        .model_details
        .name
        .clone()
        .unwrap_or_else(|| "Model".into());
    let _ = writeln!(out, "# {}\n", escape(&name));
    let mut section = |heading: &str, content: Option<String>| {
        if let Some(content) = content.filter(|c| !c.trim().is_empty()) {
            let _ = writeln!(out, "## {heading}\n\n{}\n", escape(content.trim()));
        }
    };
    section("Description", card.model_details.description.clone());
    section(
        "Owners",
        (!card.model_details.owners.is_empty()).then(|| {
            card.model_details
                .owners
                .iter()
                .map(|o| format!("- {}", o.name))
                .collect::<Vec<_>>()
                .join("\n")
        }),
    );
    section("Licence", card.model_details.license.clone());
    section("Intended use", card.intended_use.primary_uses.clone());
    section(
        "Out-of-scope uses",
        card.intended_use.out_of_scope_uses.clone(),
    );
    section(
        "Training data",
        (!card.training_data.is_empty()).then(|| {
            card.training_data
                .iter()
                .map(|d| format!("- {}", d.name))
                .collect::<Vec<_>>()
                .join("\n")
        }),
    );
    section(
        "Evaluation data",
        (!card.evaluation_data.is_empty()).then(|| {
            card.evaluation_data
                .iter()
                .map(|d| format!("- {}", d.name))
                .collect::<Vec<_>>()
                .join("\n")
        }),
    );
    section(
        "Metrics",
        (!card.metrics.is_empty()).then(|| {
            card.metrics
                .iter()
                .map(|m| {
                    format!(
                        "- {} on {}: {} ({})",
                        m.metric,
                        m.dataset,
                        m.value,
                        match (m.verified, m.method.as_deref()) {
                            (true, Some(method)) => format!("verified, {method} mode"),
                            (true, None) => "verified".to_owned(),
                            (false, _) => "claimed".to_owned(),
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }),
    );
    section(
        "Fairness considerations",
        card.fairness_considerations.clone(),
    );
    section(
        "Ethical considerations",
        (!card.ethical_considerations.is_empty()).then(|| {
            card.ethical_considerations
                .iter()
                .map(|e| format!("- {}: {}", e.name, e.mitigation.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("\n")
        }),
    );
    section("Limitations", card.limitations.clone());
    section("Trade-offs", card.tradeoffs.clone());
    section(
        "Caveats and recommendations",
        card.caveats_and_recommendations.clone(),
    );
    section("Human oversight", card.regulatory.human_oversight.clone());
    if !signatures.is_empty() {
        let _ = writeln!(out, "## Approval signatures\n");
        for signature in signatures {
            let _ = writeln!(
                out,
                "- {} — {} — {} — \"{}\"",
                escape(&signature.printed_name),
                escape(&signature.role),
                escape(&signature.signed_at),
                escape(&signature.meaning)
            );
        }
    }
    out
}

/// A self-contained HTML page for reviewers; every text is escaped.
pub fn render_html(card: &ModelCard, signatures: &[Signature]) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    let markdown = render_markdown(card, signatures);
    let mut body = String::new();
    let mut in_list = false;
    for line in markdown.lines() {
        // render_markdown already escaped < and >; undo that so each text is escaped exactly once here.
        let line = line.replace("&lt;", "<").replace("&gt;", ">");
        if let Some(heading) = line.strip_prefix("## ") {
            if in_list {
                body.push_str("</ul>\n");
                in_list = false;
            }
            let _ = writeln!(body, "<h2>{}</h2>", escape(heading));
        } else if let Some(heading) = line.strip_prefix("# ") {
            let _ = writeln!(body, "<h1>{}</h1>", escape(heading));
        } else if let Some(item) = line.strip_prefix("- ") {
            if !in_list {
                body.push_str("<ul>\n");
                in_list = true;
            }
            let _ = writeln!(body, "<li>{}</li>", escape(item));
        } else if !line.trim().is_empty() {
            if in_list {
                body.push_str("</ul>\n");
                in_list = false;
            }
            let _ = writeln!(body, "<p>{}</p>", escape(&line));
        }
    }
    if in_list {
        body.push_str("</ul>\n");
    }
    let title = escape(card.model_details.name.as_deref().unwrap_or("Model card"));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n{body}</body>\n</html>\n"
    )
}
