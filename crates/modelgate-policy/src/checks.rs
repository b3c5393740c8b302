//! Checks: CEL expressions over a version's evidence. A check whose evidence does not exist yet fails as
//! `missing` (the right answer for a gate); a misspelt field is caught when the policy is saved, by
//! evaluating every check against a complete sample of the evidence.
//!
//! The evidence a check sees is described in [`crate::evidence`].
//!
//! A check runs on every explain, request and gate decision, so it must be cheap: a policy is refused when
//! a check is longer than [`MAX_CHECK_CHARS`], nests comprehensions (`all`, `exists`, `map`, `filter`)
//! deeper than [`MAX_COMPREHENSION_DEPTH`], or its estimated cost ([`estimated_cost`]) passes
//! [`MAX_CHECK_COST`].

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

/// The longest check, in characters.
pub const MAX_CHECK_CHARS: usize = 2_048;

/// How deeply comprehensions may nest (a comprehension inside another's range or body is one deeper).
pub const MAX_COMPREHENSION_DEPTH: usize = 2;

/// The most a check may cost, in [`estimated_cost`] steps: well under a second of evaluation even at the
/// estimate's worst, where real checks cost tens.
pub const MAX_CHECK_COST: u64 = 1_000_000;

/// How many elements a list or map read from the evidence (tags, `card.missing`, the datasets under
/// `eval`) or computed by a function is assumed to hold: evidence collections are short.
const ASSUMED_COLLECTION_SIZE: u64 = 64;

/// An upper estimate of what evaluating a check costs, in steps (one per node visited; a comprehension
/// visits its condition and step once per element of its range, and rebuilding its accumulator costs the
/// range's size each time), and of the number of elements its value may have.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    cost: u64,
    size: u64,
}

/// The estimated cost of a compiled check, or why it is refused outright (too deep).
pub fn estimated_cost(expression: &IdedExpr) -> Result<u64, String> {
    estimate(expression, 0).map(|estimate| estimate.cost)
}

fn estimate(expression: &IdedExpr, depth: usize) -> Result<Estimate, String> {
    let all = |parts: &mut dyn Iterator<Item = &IdedExpr>| -> Result<Vec<Estimate>, String> {
        parts.map(|part| estimate(part, depth)).collect()
    };
    let sum = |parts: &[Estimate]| {
        parts
            .iter()
            .fold(1u64, |total, part| total.saturating_add(part.cost))
    };
    Ok(match &expression.expr {
        Expr::Unspecified | Expr::Literal(_) => Estimate { cost: 1, size: 1 },
        Expr::Ident(_) => Estimate {
            cost: 1,
            size: ASSUMED_COLLECTION_SIZE,
        },
        Expr::Select(select) => {
            let operand = estimate(&select.operand, depth)?;
            Estimate {
                cost: operand.cost.saturating_add(1),
                size: ASSUMED_COLLECTION_SIZE,
            }
        }
        Expr::List(list) => {
            let elements = all(&mut list.elements.iter())?;
            Estimate {
                cost: sum(&elements),
                size: list.elements.len() as u64,
            }
        }
        Expr::Map(map) => {
            let mut parts = Vec::new();
            for entry in &map.entries {
                match &entry.expr {
                    cel::common::ast::EntryExpr::MapEntry(pair) => {
                        parts.push(estimate(&pair.key, depth)?);
                        parts.push(estimate(&pair.value, depth)?);
                    }
                    cel::common::ast::EntryExpr::StructField(field) => {
                        parts.push(estimate(&field.value, depth)?);
                    }
                }
            }
            Estimate {
                cost: sum(&parts),
                size: map.entries.len() as u64,
            }
        }
        Expr::Struct(structure) => {
            let mut parts = Vec::new();
            for entry in &structure.entries {
                if let cel::common::ast::EntryExpr::StructField(field) = &entry.expr {
                    parts.push(estimate(&field.value, depth)?);
                }
            }
            Estimate {
                cost: sum(&parts),
                size: 1,
            }
        }
        Expr::Call(call) => {
            let parts = all(&mut call
                .target
                .iter()
                .map(|target| target.as_ref())
                .chain(&call.args))?;
            let largest = parts.iter().map(|part| part.size).max().unwrap_or(1);
            // These walk their arguments (membership, list equality, concatenation copies, string search).
            let walks = matches!(
                call.func_name.as_str(),
                "@in" | "_==_" | "_!=_" | "_+_" | "contains" | "startsWith" | "endsWith" | "string"
            );
            let cost = sum(&parts).saturating_add(if walks { largest } else { 0 });
            let size = if call.func_name == "_+_" {
                parts
                    .iter()
                    .fold(0u64, |total, part| total.saturating_add(part.size))
            } else {
                largest.max(ASSUMED_COLLECTION_SIZE)
            };
            Estimate { cost, size }
        }
        Expr::Comprehension(comprehension) => {
            let depth = depth + 1;
            if depth > MAX_COMPREHENSION_DEPTH {
                return Err(format!(
                    "nests comprehensions (all, exists, map, filter) {depth} deep; at most \
                     {MAX_COMPREHENSION_DEPTH} are allowed, so that a check stays cheap"
                ));
            }
            let range = estimate(&comprehension.iter_range, depth)?;
            let init = estimate(&comprehension.accu_init, depth)?;
            let condition = estimate(&comprehension.loop_cond, depth)?;
            let step = estimate(&comprehension.loop_step, depth)?;
            let result = estimate(&comprehension.result, depth)?;
            // `map` and `filter` build a list, copied on each step; `all` and `exists` keep a boolean.
            let rebuilds = matches!(comprehension.accu_init.expr, Expr::List(_));
            let per_element = condition
                .cost
                .saturating_add(step.cost)
                .saturating_add(if rebuilds { range.size } else { 0 });
            Estimate {
                cost: range
                    .cost
                    .saturating_add(init.cost)
                    .saturating_add(range.size.saturating_mul(per_element))
                    .saturating_add(result.cost),
                size: range.size,
            }
        }
    })
}

pub(crate) fn compile_check(
    name: &str,
    expression: &str,
    description: &str,
) -> Result<Check, String> {
    let length = expression.chars().count();
    if length > MAX_CHECK_CHARS {
        return Err(format!(
            "is {length} characters long; a check may have at most {MAX_CHECK_CHARS}"
        ));
    }
    let program =
        Program::compile(expression).map_err(|error| format!("not a CEL expression: {error}"))?;
    let cost = estimated_cost(program.expression())?;
    if cost > MAX_CHECK_COST {
        return Err(format!(
            "is too costly to evaluate: about {cost} steps, more than the budget of {MAX_CHECK_COST}; \
             iterate over fewer or shorter lists, or nest fewer comprehensions"
        ));
    }
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

    #[test]
    fn costly_checks_are_refused_when_compiled_and_ordinary_ones_are_cheap() {
        let hundred = format!("[{}]", vec!["1"; 100].join(","));
        let many = format!("[{}]", vec!["1"; 300].join(","));
        let cases: [(String, Option<&str>); 7] = [
            (
                "eval.holdout.roc_auc >= 0.8 && card.complete".to_owned(),
                None,
            ),
            ("version.tags.all(key, key != 'blocked')".to_owned(), None),
            (
                "eval.all(d, eval[d].fairness.all(a, eval[d].fairness[a].demographic_parity_ratio >= 0.8))".to_owned(),
                None,
            ),
            (format!("{hundred}.all(x, x >= 0)"), None),
            (
                format!("{many}.all(a, {many}.all(b, a + b >= 0))"),
                Some("too costly"),
            ),
            (
                "[1].all(a, [1].all(b, [1].all(c, a + b + c > 0)))".to_owned(),
                Some("3 deep"),
            ),
            (
                format!("card.complete || {}", "true || ".repeat(400) + "true"),
                Some("characters long"),
            ),
        ];
        for (expression, refused) in cases {
            let outcome = compile_check("test", &expression, "");
            match refused {
                None => {
                    let program = outcome.unwrap_or_else(|error| panic!("{expression}: {error}"));
                    let cost = estimated_cost(program.program.expression()).unwrap();
                    assert!(cost < MAX_CHECK_COST / 10, "{expression}: {cost}");
                    assert!(validate_check_on_sample(&program).is_ok(), "{expression}");
                }
                Some(reason) => {
                    let error = outcome
                        .err()
                        .unwrap_or_else(|| panic!("{expression} passed"));
                    assert!(error.contains(reason), "{expression}: {error}");
                }
            }
        }
    }
}
