//! Checks: CEL expressions over a version's evidence. A check whose evidence does not exist yet fails as
//! `missing` (the right answer for a gate); a misspelt field is caught when the policy is saved, by
//! evaluating every check against a complete sample of the evidence.
//!
//! The evidence a check sees is described in [`crate::evidence`].

use crate::parse::Check;
use cel::common::ast::{Expr, IdedExpr};
use cel::objects::Value;
use cel::{Context, ExecutionError, Program};
use std::sync::Arc;

/// How a check came out for one version.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckStatus {
    Passed,
    /// The evidence exists and the condition is false; the text shows the values involved.
    Failed(String),
    /// The evidence the check reads does not exist yet (no card, no evaluation …).
    Missing(String),
    /// The check could not be evaluated (a type error in the policy).
    Error(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    pub name: String,
    pub expression: String,
    pub description: String,
    pub status: CheckStatus,
}

pub(crate) fn compile_check(
    name: &str,
    expression: &str,
    description: &str,
) -> Result<Check, String> {
    let program =
        Program::compile(expression).map_err(|error| format!("not a CEL expression: {error}"))?;
    Ok(Check {
        name: name.to_owned(),
        expression: expression.to_owned(),
        description: description.to_owned(),
        program: Arc::new(program),
    })
}

/// Evidence with every section present: what a version with a card and evaluations offers. Derived from
/// the typed [`crate::Evidence`], so the sample cannot drift from what versions produce.
pub fn sample_evidence() -> serde_json::Value {
    crate::Evidence::sample().document()
}

fn context_for(evidence: &serde_json::Value) -> Context<'static, 'static> {
    let mut context = Context::default();
    if let Some(sections) = evidence.as_object() {
        for (name, value) in sections {
            if let Ok(converted) = cel::to_value(value) {
                context.add_variable_from_value(name.clone(), converted);
            }
        }
    }
    context
}

/// Whether an error means "this evidence does not exist" rather than "the check is wrong".
fn missing_evidence(error: &ExecutionError) -> Option<String> {
    match error {
        ExecutionError::UndeclaredReference(name) | ExecutionError::NoSuchKey(name) => {
            Some(name.to_string())
        }
        _ => None,
    }
}

/// Checks a freshly compiled check against the complete sample: any error there is a mistake in the
/// policy (a misspelt field, a type error), reported before the policy is accepted.
pub(crate) fn validate_check_on_sample(check: &Check) -> Result<(), String> {
    let context = context_for(&sample_evidence());
    match check.program.execute(&context) {
        Ok(Value::Bool(_)) => Ok(()),
        Ok(other) => Err(format!(
            "must be true or false, but gives {other:?} on sample evidence"
        )),
        Err(error) => match missing_evidence(&error) {
            // `eval.<dataset>` and `claimed.<dataset>` are open maps: the sample cannot know the datasets.
            Some(_) if reads_open_map(&check.expression) => Ok(()),
            Some(name) => {
                let path = missing_path(check.program.expression(), &context).unwrap_or(name);
                Err(format!(
                    "refers to {path}, which the evidence does not have (misspelt?)"
                ))
            }
            None => Err(error.to_string()),
        },
    }
}

fn reads_open_map(expression: &str) -> bool {
    expression.contains("eval.") || expression.contains("claimed.") || expression.contains("eval[")
}

/// Runs a gate's checks on a version's evidence.
pub fn evaluate_checks(checks: &[Check], evidence: &serde_json::Value) -> Vec<CheckOutcome> {
    let context = context_for(evidence);
    checks
        .iter()
        .map(|check| {
            let status = match check.program.execute(&context) {
                Ok(Value::Bool(true)) => CheckStatus::Passed,
                Ok(Value::Bool(false)) => CheckStatus::Failed(explain(&check.program, &context)),
                Ok(other) => CheckStatus::Error(format!("gives {other:?}, not true or false")),
                Err(error) => match missing_evidence(&error) {
                    Some(name) => {
                        let path =
                            missing_path(check.program.expression(), &context).unwrap_or(name);
                        CheckStatus::Missing(format!("no evidence for {path} yet"))
                    }
                    None => CheckStatus::Error(error.to_string()),
                },
            };
            CheckOutcome {
                name: check.name.clone(),
                expression: check.expression.clone(),
                description: check.description.clone(),
                status,
            }
        })
        .collect()
}

/// The shortest field path in the expression that the evidence lacks (`eval.validation`, `card`).
fn missing_path(expression: &IdedExpr, context: &Context) -> Option<String> {
    match &expression.expr {
        Expr::Ident(name) => Value::resolve(expression, context)
            .err()
            .and_then(|error| missing_evidence(&error))
            .map(|_| name.clone()),
        Expr::Select(select) => missing_path(&select.operand, context).or_else(|| {
            Value::resolve(expression, context)
                .err()
                .and_then(|error| missing_evidence(&error))
                .map(|_| render(expression))
        }),
        Expr::Call(call) => call
            .target
            .iter()
            .map(|target| target.as_ref())
            .chain(call.args.iter())
            .find_map(|argument| missing_path(argument, context)),
        _ => None,
    }
}

/// Says why a false check is false: for comparisons, the values on each side (`eval.holdout.roc_auc =
/// 0.81, needs >= 0.85`); for `&&`, the conjuncts that are false; otherwise the expression's text.
fn explain(program: &Program, context: &Context) -> String {
    let mut parts = Vec::new();
    explain_expression(program.expression(), context, &mut parts);
    if parts.is_empty() {
        "the condition is false".to_owned()
    } else {
        parts.join("; ")
    }
}

fn explain_expression(expression: &IdedExpr, context: &Context, parts: &mut Vec<String>) {
    let Expr::Call(call) = &expression.expr else {
        parts.push(format!("{} is false", render(expression)));
        return;
    };
    let operator = match call.func_name.as_str() {
        "_&&_" => {
            for argument in &call.args {
                if !matches!(Value::resolve(argument, context), Ok(Value::Bool(true))) {
                    explain_expression(argument, context, parts);
                }
            }
            return;
        }
        "_>=_" => ">=",
        "_>_" => ">",
        "_<=_" => "<=",
        "_<_" => "<",
        "_==_" => "==",
        "_!=_" => "!=",
        _ => {
            parts.push(format!("{} is false", render(expression)));
            return;
        }
    };
    if let [left, right] = call.args.as_slice() {
        let value = |side: &IdedExpr| match Value::resolve(side, context) {
            Ok(value) => show(&value),
            Err(error) => error.to_string(),
        };
        parts.push(format!(
            "{} = {}, needs {operator} {}",
            render(left),
            value(left),
            value(right)
        ));
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Int(number) => number.to_string(),
        Value::UInt(number) => number.to_string(),
        Value::Float(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::String(text) => format!("{text:?}"),
        Value::Null => "null".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The source form of simple expressions: identifiers, field selections, literals.
fn render(expression: &IdedExpr) -> String {
    match &expression.expr {
        Expr::Ident(name) => name.clone(),
        Expr::Select(select) => format!("{}.{}", render(&select.operand), select.field),
        // A literal needs no variables: its value, shown as CEL writes it (`"holdout-2026q3"`, `0.8`).
        Expr::Literal(_) => Value::resolve(expression, &Context::default())
            .map(|value| show(&value))
            .unwrap_or_else(|_| "the literal".to_owned()),
        Expr::Call(call) if call.func_name == "_[_]" && call.args.len() == 2 => {
            format!("{}[{}]", render(&call.args[0]), render(&call.args[1]))
        }
        _ => "the expression".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Dataset names may hold `-`, which CEL reads as minus: index the map instead, and explanations name
    /// the dataset as written.
    #[test]
    fn dataset_names_with_dashes_are_indexed_and_explained_plainly() {
        let check = check(r#"eval["holdout-2026q3"].roc_auc >= 0.8"#);
        assert_eq!(validate_check_on_sample(&check), Ok(()));
        let evidence = json!({ "eval": { "holdout-2026q3": { "roc_auc": 0.75 } } });
        let outcome = evaluate_checks(std::slice::from_ref(&check), &evidence);
        match &outcome[0].status {
            CheckStatus::Failed(why) => assert_eq!(
                why,
                r#"eval["holdout-2026q3"].roc_auc = 0.75, needs >= 0.8"#
            ),
            other => panic!("{other:?}"),
        }
    }

    fn check(expression: &str) -> Check {
        compile_check("test", expression, "").unwrap()
    }

    #[test]
    fn checks_pass_fail_and_miss_on_evidence() {
        let evidence = json!({
            "eval": { "holdout": {
                "roc_auc": 0.81, "accuracy": 0.9,
                "fairness": { "sex & region": { "demographic_parity_ratio": 0.85 } },
            } },
            "evaluations": { "verified_count": 2 },
            "version": { "tags": { "approved": "yes" } },
        });
        let cases = [
            ("eval.holdout.roc_auc >= 0.8", CheckStatus::Passed),
            (
                "eval.holdout.roc_auc >= 0.85",
                CheckStatus::Failed("eval.holdout.roc_auc = 0.81, needs >= 0.85".to_owned()),
            ),
            (
                "evaluations.verified_count >= 1 && eval.holdout.accuracy > 0.95",
                CheckStatus::Failed("eval.holdout.accuracy = 0.9, needs > 0.95".to_owned()),
            ),
            (
                "card.complete",
                CheckStatus::Missing("no evidence for card yet".to_owned()),
            ),
            (
                "eval.validation.roc_auc >= 0.8",
                CheckStatus::Missing("no evidence for eval.validation yet".to_owned()),
            ),
            ("version.tags.approved == 'yes'", CheckStatus::Passed),
            (
                "eval.holdout.fairness['sex & region'].demographic_parity_ratio >= 0.8",
                CheckStatus::Passed,
            ),
        ];
        for (expression, expected) in cases {
            let outcome = evaluate_checks(&[check(expression)], &evidence).remove(0);
            assert_eq!(outcome.status, expected, "{expression}");
        }
    }

    #[test]
    fn misspelt_fields_are_caught_on_the_sample() {
        assert!(validate_check_on_sample(&check("card.complete")).is_ok());
        assert!(validate_check_on_sample(&check("evaluations.verified_count >= 1")).is_ok());
        assert!(validate_check_on_sample(&check("eval.holdout.roc_auc >= 0.8")).is_ok());
        let error = validate_check_on_sample(&check("card.compete")).unwrap_err();
        assert!(error.contains("compete"), "{error}");
        assert!(
            validate_check_on_sample(&check("evaluations.verified_count")).is_err(),
            "not a boolean"
        );
        assert!(compile_check("x", "card.complete &&", "").is_err());
    }
}
