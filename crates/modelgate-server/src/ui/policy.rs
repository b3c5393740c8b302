//! `/policy`: the policy in force as a tier × stage table (checks, sign-offs, validity), the model-card
//! fields each tier requires, the applied revisions, and the line diff between two of them.

use super::errors::{UiError, rendered};
use super::extract::PageQuery;
use super::format::{self, Nav};
use super::session::Viewer;
use crate::promotion::policy_in_force;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use modelgate_core::{RiskTier, Stage};

pub struct GateCell {
    pub checks: Vec<String>,
    pub signoffs: String,
    pub validity: String,
    pub defined: bool,
}

pub struct TierRow {
    pub tier: String,
    pub cells: Vec<GateCell>,
    pub card_fields: String,
}

/// One tier's watch after deployment, in words.
pub struct MonitoringRow {
    pub tier: String,
    pub drift: String,
    pub on_drift: String,
    pub kpis: String,
    pub schedule: String,
}

pub struct RevisionRow {
    pub revision: i64,
    pub digest: String,
    pub applied_by: String,
    pub at: String,
}

pub struct DiffLine {
    /// `+`, `-` or ` `.
    pub sign: &'static str,
    pub text: String,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    nav: Nav,
    revision: i64,
    digest: String,
    origin: String,
    stages: Vec<String>,
    tiers: Vec<TierRow>,
    monitoring: Vec<MonitoringRow>,
    rules: Vec<(String, String)>,
    revisions: Vec<RevisionRow>,
    diff_title: Option<String>,
    diff: Vec<DiffLine>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct PolicyQuery {
    from: Option<i64>,
    to: Option<i64>,
}

/// A line diff by longest common subsequence. Policies are a few hundred lines; beyond 2,000 lines a
/// side the diff lists the texts as removed and added rather than spend quadratic memory.
fn line_diff(before: &str, after: &str) -> Vec<DiffLine> {
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    if old.len() > 2_000 || new.len() > 2_000 {
        return old
            .iter()
            .map(|line| DiffLine {
                sign: "-",
                text: (*line).to_owned(),
            })
            .chain(new.iter().map(|line| DiffLine {
                sign: "+",
                text: (*line).to_owned(),
            }))
            .collect();
    }
    let mut common = vec![vec![0u32; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut lines = Vec::new();
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            lines.push(DiffLine {
                sign: " ",
                text: old[i].to_owned(),
            });
            i += 1;
            j += 1;
        } else if j < new.len() && (i == old.len() || common[i][j + 1] >= common[i + 1][j]) {
            lines.push(DiffLine {
                sign: "+",
                text: new[j].to_owned(),
            });
            j += 1;
        } else {
            lines.push(DiffLine {
                sign: "-",
                text: old[i].to_owned(),
            });
            i += 1;
        }
    }
    lines
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(query): PageQuery<PolicyQuery>,
) -> Result<Response, UiError> {
    let in_force = policy_in_force(&state).await?;
    let policy = &in_force.policy;
    let stages: Vec<Stage> = policy
        .stages
        .iter()
        .copied()
        .filter(|stage| *stage != Stage::Development)
        .collect();
    let tiers = RiskTier::ALL
        .iter()
        .map(|tier| TierRow {
            tier: tier.to_string(),
            cells: stages
                .iter()
                .map(|stage| match policy.gate(*tier, *stage) {
                    None => GateCell {
                        checks: Vec::new(),
                        signoffs: String::new(),
                        validity: String::new(),
                        defined: false,
                    },
                    Some(gate) => GateCell {
                        checks: gate
                            .checks
                            .iter()
                            .map(|check| format!("{}: {}", check.name, check.expression))
                            .collect(),
                        signoffs: if gate.signoffs.is_empty() {
                            "none (checks alone)".to_owned()
                        } else {
                            gate.signoffs
                                .iter()
                                .map(|quota| format!("{} × {}", quota.count, quota.role))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        validity: format!("{} days", gate.valid_for_days),
                        defined: true,
                    },
                })
                .collect(),
            card_fields: policy
                .card_requirements
                .get(tier)
                .map(|fields| fields.join(", "))
                .filter(|fields| !fields.is_empty())
                .unwrap_or_else(|| "none".to_owned()),
        })
        .collect();
    let monitoring = RiskTier::ALL
        .iter()
        .filter_map(|tier| {
            let watch = policy.monitoring.get(tier)?;
            let drift = &watch.drift;
            let name = |value: serde_json::Value| value.as_str().unwrap_or_default().to_owned();
            let numeric = name(serde_json::to_value(drift.numeric_method).unwrap_or_default());
            let categorical = name(serde_json::to_value(drift.categorical_method).unwrap_or_default());
            let kpis = watch
                .kpis
                .iter()
                .map(|kpi| {
                    let bound = |bound: Option<f64>| bound.map_or_else(|| "…".to_owned(), |b| b.to_string());
                    format!("{} in [{}, {}] → {}", kpi.name, bound(kpi.min), bound(kpi.max), kpi.action.as_str())
                })
                .collect::<Vec<_>>();
            let days = |label: &str, days: Option<u32>| days.map(|days| format!("{label} {days} days"));
            let schedule = [
                days("re-validate every", watch.revalidate_every_days),
                days("re-approval opens", watch.reapproval_lead_days).map(|text| format!("{text} before expiry")),
                days("stale after", watch.stale_after_days),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
            Some(MonitoringRow {
                tier: tier.to_string(),
                drift: format!(
                    "numbers: {numeric} {} {}; categories: {categorical} {} {}; dataset drift at a share of {}; batches of at least {} rows",
                    if numeric == "ks_pvalue" { "<" } else { "≥" },
                    drift.numeric_threshold,
                    if categorical == "chi2_pvalue" { "<" } else { "≥" },
                    drift.categorical_threshold,
                    drift.drift_share,
                    watch.min_batch_rows
                ),
                on_drift: watch.on_drift.as_str().to_owned(),
                kpis: if kpis.is_empty() { "none".to_owned() } else { kpis.join("; ") },
                schedule: if schedule.is_empty() { "none".to_owned() } else { schedule.join("; ") },
            })
        })
        .collect();
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    let rules = vec![
        (
            "stages, in order".to_owned(),
            list(policy.stages.iter().map(ToString::to_string).collect()),
        ),
        (
            "one version at a time in".to_owned(),
            list(
                policy
                    .single_occupancy
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
        ),
        (
            "evidence frozen once approved for".to_owned(),
            list(
                policy
                    .frozen_evidence_stages
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
        ),
        (
            "roles".to_owned(),
            list(policy.roles.iter().map(ToString::to_string).collect()),
        ),
        (
            "may suspend".to_owned(),
            list(
                policy
                    .risk_officer_roles
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
        ),
        (
            "model owners may approve".to_owned(),
            policy.owner_may_approve.to_string(),
        ),
        (
            "admins may approve".to_owned(),
            policy.admins_may_approve.to_string(),
        ),
        (
            "review due before expiry".to_owned(),
            format!("{} days", policy.review_due_days),
        ),
        (
            "approvals a new policy would not grant".to_owned(),
            policy.approvals_not_regranted.as_str().to_owned(),
        ),
    ];
    let stored = state.store().policy_revisions().await?;
    let revisions = stored
        .iter()
        .map(|revision| RevisionRow {
            revision: revision.revision,
            digest: revision.digest.clone(),
            applied_by: revision.applied_by.clone(),
            at: format::time(revision.applied_at),
        })
        .collect();
    let text_of = |wanted: i64| -> Option<String> {
        if wanted == 0 {
            return Some(state.default_policy().text.clone());
        }
        stored
            .iter()
            .find(|revision| revision.revision == wanted)
            .map(|revision| revision.text.clone())
    };
    let (diff_title, diff) = match (query.from, query.to) {
        (Some(from), Some(to)) => match (text_of(from), text_of(to)) {
            (Some(before), Some(after)) => (
                Some(format!("Revision {from} → {to}")),
                line_diff(&before, &after),
            ),
            _ => (
                Some(format!(
                    "There are no revisions {from} and {to} to compare."
                )),
                Vec::new(),
            ),
        },
        _ => (None, Vec::new()),
    };
    let page = PolicyPage {
        nav: Nav::for_viewer(&viewer, "policy", None),
        revision: in_force.revision,
        digest: policy.digest.clone(),
        origin: match (&in_force.applied_by, in_force.applied_at) {
            (Some(by), Some(at)) => format!("applied by {by} at {}", format::time(at)),
            _ => "the built-in default".to_owned(),
        },
        stages: stages.iter().map(ToString::to_string).collect(),
        tiers,
        monitoring,
        rules,
        revisions,
        diff_title,
        diff,
    };
    Ok(rendered(&page).into_response())
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn a_line_diff_keeps_common_lines() {
        let diff = line_diff("a\nb\nc\n", "a\nc\nd\n");
        let signs: String = diff.iter().map(|line| line.sign).collect();
        let texts: Vec<&str> = diff.iter().map(|line| line.text.as_str()).collect();
        assert_eq!(signs, " - +");
        assert_eq!(texts, ["a", "b", "c", "d"]);
    }
}
