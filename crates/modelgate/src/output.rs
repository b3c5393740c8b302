//! Printing results: the API's JSON for scripts, aligned tables for people.

use crate::cli::OutputFormat;
use modelgate_api as api;
use serde::Serialize;

pub struct Printer {
    pub format: OutputFormat,
}

impl Printer {
    /// Prints `value` as JSON, or as the table/fields that `human` renders.
    pub fn print<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(value)?),
            OutputFormat::Table => {
                let text = human(value);
                if !text.is_empty() {
                    println!("{}", text.trim_end());
                }
            }
        }
        Ok(())
    }
}

/// Left-aligned columns separated by two spaces.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (index, cell) in row.iter().enumerate() {
            widths[index] = widths[index].max(cell.chars().count());
        }
    }
    let render = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(index, cell)| format!("{cell:<width$}", width = widths[index]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut lines = vec![render(headers.iter().map(|h| (*h).to_owned()).collect())];
    lines.extend(rows.into_iter().map(render));
    lines.join("\n")
}

/// `key: value` lines.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(key, _)| key.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(key, value)| format!("{:<width$} {value}", format!("{key}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tags(tags: &std::collections::BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn model(model: &api::Model) -> String {
    fields(&[
        ("name", model.name.clone()),
        ("owner", model.owner.clone()),
        ("risk tier", model.risk_tier.to_string()),
        ("description", model.description.clone()),
        ("intended use", model.intended_use.clone()),
        ("tags", tags(&model.tags)),
        ("versions", model.version_count.to_string()),
        (
            "created",
            format!("{} by {}", model.created_at, model.created_by),
        ),
        (
            "archived",
            model.archived_at.clone().unwrap_or_else(|| "no".to_owned()),
        ),
    ])
}

pub fn models(models: &[api::Model]) -> String {
    table(
        &["NAME", "OWNER", "RISK TIER", "VERSIONS", "TAGS", "UPDATED"],
        models
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    m.owner.clone(),
                    m.risk_tier.to_string(),
                    m.version_count.to_string(),
                    tags(&m.tags),
                    m.updated_at.clone(),
                ]
            })
            .collect(),
    )
}

/// What a version's approval says now: `suspended`, or its status and expiry (`active until …`,
/// `review_due until …`, `expired since …`); `-` without an approval.
pub fn approval_status(version: &api::Version) -> String {
    if version.suspension.is_some() {
        return "suspended".to_owned();
    }
    match &version.approval {
        None => "-".to_owned(),
        Some(approval)
            if approval.suspension.is_some()
                || approval.status == api::ApprovalStatus::Suspended =>
        {
            "suspended".to_owned()
        }
        Some(approval) if approval.status == api::ApprovalStatus::Expired => {
            format!("expired since {}", approval.not_after)
        }
        Some(approval) => format!("{} until {}", approval.status, approval.not_after),
    }
}

pub fn version(version: &api::Version) -> String {
    let lineage = &version.lineage;
    let optional = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    let parameters = lineage
        .parameters
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(", ");
    let approval = match &version.approval {
        None => "none".to_owned(),
        Some(approval) => format!(
            "{} for {} (request {}, approved {})",
            approval_status(version),
            approval.stage,
            approval.request,
            approval.approved_at
        ),
    };
    let mut pairs = vec![
        ("model", version.model.clone()),
        ("version", version.version.to_string()),
        ("stage", version.stage.to_string()),
        ("approval", approval),
    ];
    if let Some(reason) = version
        .suspension
        .as_ref()
        .or_else(|| version.approval.as_ref()?.suspension.as_ref())
    {
        pairs.push(("suspended", reason.clone()));
    }
    if let Some(change) = version
        .approval
        .as_ref()
        .and_then(|approval| approval.evidence_changed_after_approval.as_ref())
    {
        pairs.push(("evidence changed", change.clone()));
    }
    pairs.extend([
        ("digest", version.digest.clone()),
        (
            "size",
            format!(
                "{} ({} bytes)",
                human_size(version.size_bytes),
                version.size_bytes
            ),
        ),
        (
            "format",
            format!("{} ({})", version.format, version.media_type),
        ),
        (
            "code",
            format!(
                "{} @ {}",
                optional(&lineage.code_repository),
                optional(&lineage.code_commit)
            ),
        ),
        (
            "training data",
            format!(
                "{} {}",
                optional(&lineage.training_data_uri),
                optional(&lineage.training_data_digest)
            ),
        ),
        ("parameters", parameters),
        ("description", version.description.clone()),
        ("tags", tags(&version.tags)),
        (
            "created",
            format!("{} by {}", version.created_at, version.created_by),
        ),
    ]);
    if let Some(monitoring) = &version.monitoring {
        pairs.extend(version_monitoring(monitoring));
    }
    fields(&pairs)
}

/// `version show`'s lines about monitoring: the last batch and its drifted features, the last outcomes,
/// the KPIs against their bounds, the recent breaches.
pub(crate) fn version_monitoring(
    monitoring: &api::VersionMonitoring,
) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    if !monitoring.monitored {
        pairs.push((
            "monitoring",
            "the policy does not watch this tier".to_owned(),
        ));
    }
    match &monitoring.latest_batch {
        None => pairs.push(("last batch", "none yet".to_owned())),
        Some(batch) => {
            let dataset = &batch.report["dataset"];
            let drifted: Vec<&str> = batch.report["features"]
                .as_object()
                .map(|features| {
                    features
                        .iter()
                        .filter(|(_, drift)| drift["drifted"].as_bool() == Some(true))
                        .map(|(name, _)| name.as_str())
                        .collect()
                })
                .unwrap_or_default();
            pairs.push((
                "last batch",
                format!(
                    "{} at {}: {} rows against {}, drift share {}{}",
                    batch.id,
                    batch.created_at,
                    batch.rows,
                    batch.reference,
                    report_number(&dataset["drift_share"]),
                    if !batch.judged {
                        ", not judged".to_owned()
                    } else if dataset["drifted"].as_bool() == Some(true) {
                        ", dataset drifted".to_owned()
                    } else {
                        ", no dataset drift".to_owned()
                    }
                ),
            ));
            if !drifted.is_empty() {
                pairs.push(("drifted features", drifted.join(", ")));
            }
        }
    }
    if let Some(outcomes) = &monitoring.latest_outcomes {
        pairs.push((
            "last outcomes",
            format!(
                "{} at {}: {} of {} rows joined ({} unknown row ids){}",
                outcomes.id,
                outcomes.created_at,
                outcomes.matched,
                outcomes.rows,
                outcomes.unknown,
                if outcomes.judged { "" } else { ", not judged" }
            ),
        ));
    }
    for kpi in &monitoring.kpis {
        let bound = |bound: Option<f64>| bound.map_or_else(|| "-".to_owned(), |b| b.to_string());
        pairs.push((
            "kpi",
            format!(
                "{} = {} at {} (bounds {} to {}){}",
                kpi.name,
                kpi.value,
                kpi.observed_at,
                bound(kpi.min),
                bound(kpi.max),
                if kpi.breaches.is_empty() {
                    ""
                } else {
                    ", BREACHED"
                }
            ),
        ));
    }
    for sourced in &monitoring.breaches {
        pairs.push((
            "breach",
            format!(
                "{} ({}, {}): {}",
                sourced.source, sourced.breach.action, sourced.at, sourced.breach.reason
            ),
        ));
    }
    pairs
}

pub fn scan_report(report: &api::ScanReport) -> String {
    let mut text = fields(&[
        ("artifact", report.artifact_digest.clone()),
        ("verdict", report.verdict.to_string()),
        ("formats", report.formats.join(", ")),
        (
            "read",
            format!(
                "{} of {} (the rest skipped as payload)",
                human_size(report.bytes_read),
                human_size(report.bytes_scanned)
            ),
        ),
        (
            "engine",
            if report.outdated {
                format!("{} (outdated: the server scans it again)", report.engine)
            } else {
                report.engine.clone()
            },
        ),
        ("scanned", report.scanned_at.clone()),
    ]);
    if report.findings.is_empty() {
        text.push_str("\nno findings\n");
        return text;
    }
    let rows = report
        .findings
        .iter()
        .map(|finding| {
            let import = match (finding.module.as_str(), finding.name.as_str()) {
                ("", "") => "-".to_owned(),
                ("", name) => name.to_owned(),
                (module, name) => format!("{module}.{name}"),
            };
            vec![
                finding.severity.to_string(),
                finding.kind.clone(),
                if finding.path.is_empty() {
                    "-".to_owned()
                } else {
                    finding.path.clone()
                },
                finding.offset.to_string(),
                import,
                finding.detail.clone(),
            ]
        })
        .collect();
    text.push('\n');
    text.push_str(&table(
        &["SEVERITY", "KIND", "PATH", "OFFSET", "WHAT", "DETAIL"],
        rows,
    ));
    text
}

pub fn versions(versions: &[api::Version]) -> String {
    table(
        &[
            "VERSION", "STAGE", "APPROVAL", "DIGEST", "SIZE", "FORMAT", "CREATED", "BY",
        ],
        versions
            .iter()
            .map(|v| {
                vec![
                    v.version.to_string(),
                    v.stage.to_string(),
                    approval_status(v),
                    v.digest.chars().take(19).collect::<String>() + "…",
                    human_size(v.size_bytes),
                    v.format.clone(),
                    v.created_at.clone(),
                    v.created_by.clone(),
                ]
            })
            .collect(),
    )
}

pub fn user(user: &api::User) -> String {
    fields(&[
        ("username", user.username.clone()),
        ("printed name", user.printed_name.clone()),
        (
            "email",
            user.email.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        ("roles", user.roles.join(", ")),
        ("active", user.active.to_string()),
        (
            "password",
            if user.has_password { "set" } else { "none" }.to_owned(),
        ),
        ("created", user.created_at.clone()),
    ])
}

pub fn users(users: &[api::User]) -> String {
    table(
        &["USERNAME", "PRINTED NAME", "ROLES", "ACTIVE"],
        users
            .iter()
            .map(|u| {
                vec![
                    u.username.clone(),
                    u.printed_name.clone(),
                    u.roles.join(","),
                    u.active.to_string(),
                ]
            })
            .collect(),
    )
}

pub fn tokens(tokens: &[api::Token]) -> String {
    let optional = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    table(
        &[
            "ID",
            "NAME",
            "USER",
            "CREATED",
            "EXPIRES",
            "LAST USED",
            "REVOKED",
        ],
        tokens
            .iter()
            .map(|t| {
                vec![
                    t.id.clone(),
                    t.name.clone(),
                    t.username.clone(),
                    t.created_at.clone(),
                    optional(&t.expires_at),
                    optional(&t.last_used_at),
                    optional(&t.revoked_at),
                ]
            })
            .collect(),
    )
}

/// A number of a report (`{"value": …}`), or `-` when undefined.
fn report_number(value: &serde_json::Value) -> String {
    value["value"]
        .as_f64()
        .map_or_else(|| "-".to_owned(), |number| format!("{number:.4}"))
}

pub fn monitoring_batch(batch: &api::MonitoringBatch) -> String {
    let dataset = &batch.report["dataset"];
    let mut text = format!(
        "batch {} of {} version {}: {} rows against {} ({}){}\n",
        batch.id,
        batch.model,
        batch.version,
        batch.rows,
        batch.reference,
        batch.reference_digest,
        if batch.judged {
            ""
        } else {
            " — not judged (below min_batch_rows)"
        }
    );
    text.push_str(&format!(
        "dataset drift: {} ({} of {} features drifted, share {})\n",
        if dataset["drifted"].as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        },
        dataset["drifted_features"],
        dataset["features"],
        report_number(&dataset["drift_share"]),
    ));
    let rows: Vec<Vec<String>> = batch.report["features"]
        .as_object()
        .map(|features| {
            features
                .iter()
                .map(|(name, drift)| {
                    let test = if drift["kind"] == "categorical" {
                        report_number(&drift["chi2_pvalue"])
                    } else {
                        report_number(&drift["ks_pvalue"])
                    };
                    vec![
                        name.clone(),
                        drift["kind"].as_str().unwrap_or("-").to_owned(),
                        report_number(&drift["psi"]),
                        report_number(&drift["jensen_shannon"]),
                        report_number(&drift["wasserstein_normed"]),
                        test,
                        if drift["drifted"].as_bool() == Some(true) {
                            "DRIFTED"
                        } else {
                            ""
                        }
                        .to_owned(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    text.push_str(&table(
        &["FEATURE", "KIND", "PSI", "JS", "WASSERSTEIN", "P-VALUE", ""],
        rows,
    ));
    if batch.report.get("performance").is_some() {
        text.push('\n');
        text.push_str(&performance(&batch.report["performance"]));
    }
    for breach in &batch.breaches {
        text.push_str(&format!("\nbreach ({}): {}", breach.action, breach.reason));
    }
    text
}

/// Labelled rows' metrics beside the approving evaluation's (a report's `performance` section).
fn performance(section: &serde_json::Value) -> String {
    let mut text = String::new();
    if let Some(evaluation) = section["evaluation"].as_i64() {
        text.push_str(&format!(
            "performance on the labelled rows, against evaluation {evaluation}:\n"
        ));
    }
    let overall = &section["report"]["overall"];
    let rows: Vec<Vec<String>> = section["baseline"]
        .as_object()
        .map(|baseline| {
            baseline
                .iter()
                .map(|(metric, approved)| {
                    let now = &overall[metric];
                    let now = now.as_f64().or_else(|| now["value"].as_f64());
                    let number = |value: Option<f64>| {
                        value.map_or_else(|| "-".to_owned(), |value| format!("{value:.4}"))
                    };
                    vec![metric.clone(), number(approved.as_f64()), number(now)]
                })
                .collect()
        })
        .unwrap_or_default();
    if !rows.is_empty() {
        text.push_str(&table(&["METRIC", "APPROVED", "NOW"], rows));
    }
    if let Some(note) = section["note"].as_str() {
        text.push_str(&format!("{note}\n"));
    }
    text
}

pub fn monitoring_outcomes(outcomes: &api::MonitoringOutcomes) -> String {
    let mut text = format!(
        "outcomes {} of {} version {}: {} rows, {} joined, {} unknown row ids, {} repeated{}\n",
        outcomes.id,
        outcomes.model,
        outcomes.version,
        outcomes.rows,
        outcomes.matched,
        outcomes.unknown,
        outcomes.duplicate,
        if outcomes.judged {
            ""
        } else {
            " — not judged"
        }
    );
    if let Some(ids) = outcomes.report["unknown_row_ids"].as_array()
        && !ids.is_empty()
    {
        let named: Vec<String> = ids
            .iter()
            .map(|id| match id.as_str() {
                Some("") => "(empty)".to_owned(),
                Some(id) => id.to_owned(),
                None => id.to_string(),
            })
            .collect();
        text.push_str(&format!("unknown row ids: {}\n", named.join(", ")));
    }
    text.push_str(&performance(&outcomes.report));
    for breach in &outcomes.breaches {
        text.push_str(&format!("\nbreach ({}): {}", breach.action, breach.reason));
    }
    text
}

pub fn monitoring_state(state: &api::MonitoringState) -> String {
    let mut text = match (&state.on_drift, state.min_batch_rows) {
        (Some(action), Some(rows)) => format!(
            "{} ({} tier): monitored; dataset drift → {action}; batches of at least {rows} rows are judged\n",
            state.model, state.risk_tier
        ),
        _ => format!(
            "{} ({} tier): the policy has no monitoring for this tier\n",
            state.model, state.risk_tier
        ),
    };
    if state.batches.is_empty() {
        text.push_str("no batches yet\n");
    } else {
        text.push_str(&table(
            &[
                "BATCH",
                "VERSION",
                "ROWS",
                "REFERENCE",
                "DRIFT SHARE",
                "DRIFTED",
                "BREACHES",
                "AT",
            ],
            state
                .batches
                .iter()
                .map(|batch| {
                    let dataset = &batch.report["dataset"];
                    vec![
                        batch.id.to_string(),
                        batch.version.to_string(),
                        batch.rows.to_string(),
                        batch.reference.clone(),
                        report_number(&dataset["drift_share"]),
                        if !batch.judged {
                            "not judged".to_owned()
                        } else if dataset["drifted"].as_bool() == Some(true) {
                            "yes".to_owned()
                        } else {
                            "no".to_owned()
                        },
                        batch
                            .breaches
                            .iter()
                            .map(|breach| format!("{}: {}", breach.action, breach.reason))
                            .collect::<Vec<_>>()
                            .join("; "),
                        batch.created_at.clone(),
                    ]
                })
                .collect(),
        ));
    }
    if !state.outcomes.is_empty() {
        text.push('\n');
        text.push_str(&table(
            &[
                "OUTCOMES", "VERSION", "ROWS", "JOINED", "UNKNOWN", "BREACHES", "AT",
            ],
            state
                .outcomes
                .iter()
                .map(|outcomes| {
                    vec![
                        outcomes.id.to_string(),
                        outcomes.version.to_string(),
                        outcomes.rows.to_string(),
                        outcomes.matched.to_string(),
                        outcomes.unknown.to_string(),
                        outcomes
                            .breaches
                            .iter()
                            .map(|breach| format!("{}: {}", breach.action, breach.reason))
                            .collect::<Vec<_>>()
                            .join("; "),
                        outcomes.created_at.clone(),
                    ]
                })
                .collect(),
        ));
    }
    if !state.kpis.is_empty() {
        text.push('\n');
        text.push_str(&table(
            &["KPI", "VALUE", "MIN", "MAX", "AT", "BREACH"],
            state
                .kpis
                .iter()
                .map(|kpi| {
                    let bound = |bound: Option<f64>| {
                        bound.map_or_else(|| "-".to_owned(), |b| b.to_string())
                    };
                    vec![
                        kpi.name.clone(),
                        kpi.value.to_string(),
                        bound(kpi.min),
                        bound(kpi.max),
                        kpi.observed_at.clone(),
                        kpi.breaches
                            .iter()
                            .map(|breach| breach.action.clone())
                            .collect::<Vec<_>>()
                            .join(","),
                    ]
                })
                .collect(),
        ));
    }
    text
}

pub fn webhooks(webhooks: &[api::Webhook]) -> String {
    table(
        &["ID", "URL", "EVENTS", "MODEL", "CREATED", "DISABLED"],
        webhooks
            .iter()
            .map(|webhook| {
                vec![
                    webhook.id.to_string(),
                    webhook.url.clone(),
                    webhook.events.join(","),
                    webhook.model.clone().unwrap_or_else(|| "-".to_owned()),
                    webhook.created_at.clone(),
                    match (&webhook.disabled_at, &webhook.disabled_reason) {
                        (Some(at), Some(reason)) => format!("{at} ({reason})"),
                        (Some(at), None) => at.clone(),
                        _ => "-".to_owned(),
                    },
                ]
            })
            .collect(),
    )
}

pub fn webhook_deliveries(deliveries: &[api::WebhookDelivery]) -> String {
    table(
        &[
            "EVENT", "TYPE", "SUBJECT", "STATE", "ATTEMPTS", "LAST", "LATENCY", "NEXT",
        ],
        deliveries
            .iter()
            .map(|delivery| {
                let last = delivery.attempts.last();
                vec![
                    delivery.event_id.clone(),
                    delivery.event_type.clone(),
                    delivery.subject.clone(),
                    delivery.state.to_string(),
                    delivery.attempts.len().to_string(),
                    last.map(|attempt| match (&attempt.status, &attempt.error) {
                        (Some(status), _) => status.to_string(),
                        (None, Some(error)) => error.clone(),
                        (None, None) => "-".to_owned(),
                    })
                    .unwrap_or_else(|| "-".to_owned()),
                    last.map(|attempt| format!("{} ms", attempt.latency_ms))
                        .unwrap_or_else(|| "-".to_owned()),
                    delivery
                        .next_attempt_at
                        .clone()
                        .unwrap_or_else(|| "-".to_owned()),
                ]
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let text = table(&["A", "LONG"], vec![vec!["xyz".into(), "1".into()]]);
        assert_eq!(text, "A    LONG\nxyz  1");
    }

    #[test]
    fn sizes_are_readable() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
