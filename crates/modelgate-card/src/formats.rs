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
    let mut title_seen = false;
    for (level, heading, content) in sections(body) {
        let content = strip_placeholders(&content);
        // The document's title: `# Model Card for NAME` (the hub's template) or `# NAME` as the first
        // heading (the cards `transformers`' Trainer writes); the text under it is the introduction.
        let title = heading.starts_with("Model Card for ")
            || (level == 1 && !title_seen && hugging_face_target(&heading).is_none());
        if !heading.is_empty() {
            title_seen = true;
        }
        if title {
            let name = heading.strip_prefix("Model Card for ").unwrap_or(&heading);
            card.model_details
                .name
                .get_or_insert_with(|| name.trim().to_owned());
        }
        if content.is_empty() {
            continue;
        }
        if heading.is_empty() || title {
            append(
                card.additional
                    .entry("introduction".to_owned())
                    .or_default(),
                &content,
            );
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
        let Some(target) = hugging_face_target(&heading) else {
            card.additional.insert(heading.clone(), content);
            report.push(Mapping {
                from: format!("section: {heading}"),
                to: format!("additional.{heading}"),
            });
            continue;
        };
        // A later section into a field that has text already keeps it, under its own heading.
        let labelled = |existing: &Option<String>| match existing {
            Some(text) if !text.trim().is_empty() => format!("{heading}:\n{content}"),
            _ => content.clone(),
        };
        let path = match target {
            Target::Description => {
                let text = labelled(&card.model_details.description);
                append(
                    card.model_details.description.get_or_insert_default(),
                    &text,
                );
                "model_details.description"
            }
            Target::References => {
                card.model_details.references.extend(list_items(&content));
                "model_details.references"
            }
            Target::Citation => {
                let text = labelled(&card.model_details.citation);
                append(card.model_details.citation.get_or_insert_default(), &text);
                "model_details.citation"
            }
            Target::PrimaryUses => {
                let text = labelled(&card.intended_use.primary_uses);
                append(
                    card.intended_use.primary_uses.get_or_insert_default(),
                    &text,
                );
                "intended_use.primary_uses"
            }
            Target::PrimaryUsers => {
                let text = labelled(&card.intended_use.primary_users);
                append(
                    card.intended_use.primary_users.get_or_insert_default(),
                    &text,
                );
                "intended_use.primary_users"
            }
            Target::OutOfScopeUses => {
                let text = labelled(&card.intended_use.out_of_scope_uses);
                append(
                    card.intended_use.out_of_scope_uses.get_or_insert_default(),
                    &text,
                );
                "intended_use.out_of_scope_uses"
            }
            Target::Limitations => {
                let text = labelled(&card.limitations);
                append(card.limitations.get_or_insert_default(), &text);
                "limitations"
            }
            Target::Recommendations => {
                let text = labelled(&card.caveats_and_recommendations);
                append(
                    card.caveats_and_recommendations.get_or_insert_default(),
                    &text,
                );
                "caveats_and_recommendations"
            }
            Target::Tradeoffs => {
                let text = labelled(&card.tradeoffs);
                append(card.tradeoffs.get_or_insert_default(), &text);
                "tradeoffs"
            }
            Target::Fairness => {
                let text = labelled(&card.fairness_considerations);
                append(card.fairness_considerations.get_or_insert_default(), &text);
                "fairness_considerations"
            }
            Target::Ethical => {
                card.ethical_considerations.extend(ethical_items(&content));
                "ethical_considerations"
            }
            Target::TrainingData => {
                let dataset = first_dataset(&mut card.training_data, "training data");
                let text = labelled(&dataset.composition);
                append(dataset.composition.get_or_insert_default(), &text);
                "training_data[0].composition"
            }
            Target::TrainingPreprocessing => {
                let dataset = first_dataset(&mut card.training_data, "training data");
                let text = labelled(&dataset.preprocessing);
                append(dataset.preprocessing.get_or_insert_default(), &text);
                "training_data[0].preprocessing"
            }
            Target::EvaluationData => {
                let dataset = first_dataset(&mut card.evaluation_data, "evaluation data");
                let text = labelled(&dataset.composition);
                append(dataset.composition.get_or_insert_default(), &text);
                "evaluation_data[0].composition"
            }
        };
        report.push(Mapping {
            from: format!("section: {heading}"),
            to: path.to_owned(),
        });
    }
    Ok(Imported { card, report })
}

/// The canonical field a Hugging Face section belongs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Description,
    References,
    Citation,
    PrimaryUses,
    PrimaryUsers,
    OutOfScopeUses,
    Limitations,
    Recommendations,
    Tradeoffs,
    Fairness,
    Ethical,
    TrainingData,
    TrainingPreprocessing,
    EvaluationData,
}

/// Where the headings of the `huggingface_hub` model-card template
/// (`src/huggingface_hub/templates/modelcard_template.md`) and of the cards `transformers`' Trainer writes
/// (`modelcard.py`) belong. Headings compare without case, `[optional]`, a trailing colon, and with `&` as
/// `and`. The template itself says the model description may hold "general information about training
/// procedures, parameters", so the training procedure, its hyperparameters and results and the technical
/// specifications go there. Environmental impact, glossary, contacts and "how to get started" have no
/// field of their own and stay under `additional`.
fn hugging_face_target(heading: &str) -> Option<Target> {
    let normalized = heading
        .to_ascii_lowercase()
        .replace("[optional]", "")
        .replace('&', " and ")
        .replace(['*', '_', '`'], "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let normalized = normalized.trim_end_matches(':').trim();
    Some(match normalized {
        "model details"
        | "model description"
        | "description"
        | "training procedure"
        | "training hyperparameters"
        | "speeds, sizes, times"
        | "training results"
        | "framework versions"
        | "technical specifications"
        | "model architecture and objective"
        | "model architecture"
        | "compute infrastructure"
        | "hardware"
        | "software" => Target::Description,
        "model sources" | "references" => Target::References,
        "citation" | "bibtex entry and citation info" | "citation information" | "bibtex" => {
            Target::Citation
        }
        "uses"
        | "direct use"
        | "downstream use"
        | "intended use"
        | "intended uses"
        | "intended uses and limitations"
        | "primary intended uses" => Target::PrimaryUses,
        "intended users" | "primary intended users" | "users" => Target::PrimaryUsers,
        "out-of-scope use"
        | "out of scope use"
        | "out-of-scope uses"
        | "out of scope uses"
        | "misuse and out-of-scope use"
        | "misuse, malicious use, and out-of-scope use" => Target::OutOfScopeUses,
        "bias, risks, and limitations"
        | "bias, risks and limitations"
        | "limitations"
        | "risks and limitations"
        | "limitations and bias"
        | "limitations and biases"
        | "bias and limitations" => Target::Limitations,
        "recommendations" | "caveats and recommendations" => Target::Recommendations,
        "tradeoffs" | "trade-offs" => Target::Tradeoffs,
        "fairness considerations" | "fairness" | "factors" => Target::Fairness,
        "ethical considerations" | "ethical considerations and risks" | "ethics" => Target::Ethical,
        "training data" | "training details" | "training and evaluation data" => {
            Target::TrainingData
        }
        "preprocessing" => Target::TrainingPreprocessing,
        "evaluation"
        | "testing data, factors and metrics"
        | "testing data"
        | "evaluation data"
        | "metrics"
        | "results"
        | "summary"
        | "evaluation results" => Target::EvaluationData,
        _ => return None,
    })
}

/// Adds `text` to a field as a new paragraph.
fn append(field: &mut String, text: &str) {
    if !field.trim().is_empty() {
        field.push_str("\n\n");
    }
    field.push_str(text);
}

/// The first dataset of a list, made with `name` when there is none.
fn first_dataset<'a>(datasets: &'a mut Vec<Dataset>, name: &str) -> &'a mut Dataset {
    if datasets.is_empty() {
        datasets.push(Dataset {
            name: name.to_owned(),
            ..Dataset::default()
        });
    }
    &mut datasets[0]
}

/// A section's text without HTML comments (the template's guidance) and without the placeholders the
/// template and the Trainer write for what nobody filled in (`[More Information Needed]`, `More
/// information needed`), trimmed.
fn strip_placeholders(content: &str) -> String {
    let mut text = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(start) = rest.find("<!--") {
        text.push_str(&rest[..start]);
        rest = rest[start..]
            .find("-->")
            .map_or("", |end| &rest[start + end + 3..]);
    }
    text.push_str(rest);
    let placeholder = |line: &str| {
        let line = line.trim().trim_end_matches('.').to_ascii_lowercase();
        line.ends_with("[more information needed]") || line == "more information needed"
    };
    let kept: Vec<&str> = text.lines().filter(|line| !placeholder(line)).collect();
    // A label line (`**BibTeX:**`) whose content was a placeholder labels nothing any more.
    let label = |line: &str| {
        let line = line.trim();
        line.starts_with("**") && line.ends_with(":**") && line.len() > 5
    };
    let mut lines: Vec<&str> = Vec::with_capacity(kept.len());
    for (position, line) in kept.iter().enumerate() {
        let next = kept[position + 1..].iter().find(|l| !l.trim().is_empty());
        if label(line) && next.is_none_or(|next| label(next)) {
            continue;
        }
        if line.trim().is_empty() && lines.last().is_some_and(|last| last.trim().is_empty()) {
            continue;
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_owned()
}

/// The items of a Markdown list (`- x`, `* x`), or the whole text as one item when it is not a list.
fn list_items(content: &str) -> Vec<String> {
    let items: Vec<String> = content
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            line.strip_prefix("- ")
                .or_else(|| line.strip_prefix("* "))
                .map(|item| item.trim().to_owned())
        })
        .filter(|item| !item.is_empty())
        .collect();
    if items.is_empty() {
        vec![content.to_owned()]
    } else {
        items
    }
}

/// Ethical considerations from a list (`- risk (mitigation: what is done)`), or the text as one.
fn ethical_items(content: &str) -> Vec<EthicalConsideration> {
    list_items(content)
        .into_iter()
        .map(|item| {
            match item
                .strip_suffix(')')
                .and_then(|rest| rest.rsplit_once(" (mitigation: "))
            {
                Some((name, mitigation)) => EthicalConsideration {
                    name: name.trim().to_owned(),
                    mitigation: Some(mitigation.trim().to_owned()),
                },
                None => EthicalConsideration {
                    name: item,
                    mitigation: None,
                },
            }
        })
        .collect()
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

/// Markdown sections by heading (any level, given with it), in order; text before the first heading has
/// an empty heading. Lines in fenced code blocks are never headings.
fn sections(body: &str) -> Vec<(usize, String, String)> {
    let mut found: Vec<(usize, String, String)> = vec![(0, String::new(), String::new())];
    let mut fenced = false;
    for line in body.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && trimmed.starts_with('#') {
            let level = trimmed.chars().take_while(|c| *c == '#').count();
            let heading = trimmed.trim_start_matches('#').trim().to_owned();
            found.push((level, heading, String::new()));
        } else if let Some((_, _, content)) = found.last_mut() {
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
    section("Intended Users", &card.intended_use.primary_users);
    section("Out-of-Scope Use", &card.intended_use.out_of_scope_uses);
    section("Bias, Risks, and Limitations", &card.limitations);
    section("Recommendations", &card.caveats_and_recommendations);
    section("Tradeoffs", &card.tradeoffs);
    section("Fairness Considerations", &card.fairness_considerations);
    let ethical: Vec<String> = card
        .ethical_considerations
        .iter()
        .map(|item| match &item.mitigation {
            Some(mitigation) => format!("- {} (mitigation: {mitigation})", item.name),
            None => format!("- {}", item.name),
        })
        .collect();
    section(
        "Ethical Considerations",
        &(!ethical.is_empty()).then(|| ethical.join("\n")),
    );
    section(
        "Training Data",
        &card
            .training_data
            .first()
            .and_then(|d| d.composition.clone()),
    );
    section(
        "Preprocessing",
        &card
            .training_data
            .first()
            .and_then(|d| d.preprocessing.clone()),
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
/// A section the server adds after the card's own (the version's monitoring after deployment): a
/// heading and its bullet items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraSection {
    pub heading: String,
    pub items: Vec<String>,
}

pub fn render_markdown(
    card: &ModelCard,
    signatures: &[Signature],
    extra: &[ExtraSection],
) -> String {
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
    for section in extra.iter().filter(|section| !section.items.is_empty()) {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        let _ = writeln!(out, "## {}\n", escape(&section.heading));
        for item in &section.items {
            // The items quote uploaded data (group names in reasons): one line each, whatever control
            // characters it holds (a bare CR also breaks a Markdown line), and no links or images.
            let flat: String = item
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let _ = writeln!(
                out,
                "- {}",
                escape(&flat).replace('[', "\\[").replace(']', "\\]")
            );
        }
    }
    out
}

/// A self-contained HTML page for reviewers; every text is escaped.
pub fn render_html(card: &ModelCard, signatures: &[Signature], extra: &[ExtraSection]) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    let markdown = render_markdown(card, signatures, extra);
    let mut body = String::new();
    let mut in_list = false;
    for line in markdown.lines() {
        // render_markdown already escaped < and >; undo that so each text is escaped exactly once here.
        let line = line
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("\\[", "[")
            .replace("\\]", "]");
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
