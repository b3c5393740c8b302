//! Golden files for every format: Hugging Face README and Model Card Toolkit JSON imported, exported and
//! round-tripped; Markdown and HTML renderings with signatures, escaping HTML. Set `UPDATE_GOLDEN=1` to
//! rewrite the expected files after a deliberate change (then read the diff before committing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelgate_card::formats::*;
use modelgate_card::{ModelCard, validate};
use std::path::PathBuf;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check_golden(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

fn pretty(card: &ModelCard) -> String {
    serde_json::to_string_pretty(card).unwrap() + "\n"
}

#[test]
fn hugging_face_import_export_and_round_trip() {
    let readme = std::fs::read_to_string(golden("hf_readme.md")).unwrap();
    let imported = import_hugging_face(&readme).unwrap();
    assert!(
        validate(&imported.card).is_empty(),
        "{:?}",
        validate(&imported.card)
    );
    assert_eq!(
        imported.card.model_details.license.as_deref(),
        Some("Apache-2.0")
    );
    assert_eq!(imported.card.metrics.len(), 2);
    assert!(
        imported.card.metrics.iter().all(|metric| !metric.verified),
        "imported metrics are claimed"
    );
    assert_eq!(
        imported
            .card
            .additional
            .get("Environmental Impact")
            .map(String::as_str),
        Some("About 3 kWh to train.")
    );
    assert!(
        imported
            .card
            .additional
            .contains_key("front_matter.base_model"),
        "unmapped content is kept"
    );
    assert!(
        imported
            .report
            .iter()
            .any(|mapping| mapping.from == "section: Environmental Impact")
    );
    check_golden("hf_imported.json", &pretty(&imported.card));
    let exported = export_hugging_face(&imported.card);
    check_golden("hf_exported.md", &exported);
    let again = import_hugging_face(&exported).unwrap();
    assert_eq!(
        again.card.model_details.description,
        imported.card.model_details.description
    );
    assert_eq!(again.card.intended_use, imported.card.intended_use);
    assert_eq!(again.card.limitations, imported.card.limitations);
    assert_eq!(again.card.metrics, imported.card.metrics);
    assert_eq!(
        again.card.model_details.license,
        imported.card.model_details.license
    );
}

#[test]
fn model_card_toolkit_import_export_and_round_trip() {
    let document = std::fs::read_to_string(golden("mct.json")).unwrap();
    let imported = import_model_card_toolkit(&document).unwrap();
    assert!(validate(&imported.card).is_empty());
    assert_eq!(imported.card.metrics[0].interval, Some([0.89, 0.93]));
    assert!(
        imported.card.additional.contains_key("mct.graphics"),
        "unmapped content is kept"
    );
    check_golden("mct_imported.json", &pretty(&imported.card));
    let exported =
        serde_json::to_string_pretty(&export_model_card_toolkit(&imported.card)).unwrap() + "\n";
    check_golden("mct_exported.json", &exported);
    let again = import_model_card_toolkit(&exported).unwrap();
    let mut without_additional = imported.card.clone();
    without_additional.additional.clear();
    assert_eq!(again.card, without_additional);
}

#[test]
fn renderings_show_signatures_and_escape_html() {
    let readme = std::fs::read_to_string(golden("hf_readme.md")).unwrap();
    let mut card = import_hugging_face(&readme).unwrap().card;
    card.caveats_and_recommendations = Some("<script>alert('x')</script> & more".to_owned());
    let signatures = [Signature {
        printed_name: "Vera Validator".to_owned(),
        role: "validator".to_owned(),
        meaning: "approved for production as validator".to_owned(),
        signed_at: "2026-11-27T15:00:00.000Z".to_owned(),
    }];
    let markdown = render_markdown(&card, &signatures, &[]);
    assert!(markdown.contains("Vera Validator — validator — 2026-11-27T15:00:00.000Z"));
    assert!(!markdown.contains("<script>"));
    check_golden("rendered.md", &markdown);
    let html = render_html(&card, &signatures, &[]);
    assert!(
        !html.contains("<script>") && !html.contains("<b>"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"));
    check_golden("rendered.html", &html);
}

#[test]
fn a_broken_front_matter_gives_line_and_column() {
    let error = import_hugging_face("---\nlicense: mit\ndatasets: [a, b\n---\n# x\n").unwrap_err();
    assert!(error.line.is_some_and(|line| line >= 2), "{error:?}");
    assert!(error.column.is_some());
    assert!(error.message.contains("YAML"));
    let unclosed = import_hugging_face("---\nlicense: mit\n# x\n").unwrap_err();
    assert!(unclosed.message.contains("never closed"));
}

/// The headings of the `huggingface_hub` template and of the cards `transformers`' Trainer writes land in
/// the card fields they mean; the placeholders nobody filled in and the template's comments are dropped;
/// only what has no field stays under `additional`.
#[test]
fn hugging_face_template_and_trainer_headings_map_to_card_fields() {
    /// (fixture, golden import, (field, text it must contain), the `additional` keys left)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "hf_hub_template.md",
            "hf_hub_template_imported.json",
            &[
                ("model_details.name", "churn-risk"),
                (
                    "model_details.description",
                    "gradient-boosted tree ensemble",
                ),
                (
                    "model_details.description",
                    "Training Hyperparameters:\n- **Training regime:** 500 rounds",
                ),
                (
                    "model_details.description",
                    "Binary cross-entropy objective",
                ),
                (
                    "model_details.references",
                    "https://git.example.org/acme/churn-risk",
                ),
                (
                    "model_details.citation",
                    "Acme Data Science (2026). churn-risk.",
                ),
                (
                    "intended_use.primary_uses",
                    "Ranking subscribers for retention offers",
                ),
                ("intended_use.out_of_scope_uses", "Pricing decisions"),
                ("limitations", "tenure under three months"),
                (
                    "caveats_and_recommendations",
                    "Review offers for new subscribers by hand.",
                ),
                ("fairness_considerations", "by age band and region"),
                (
                    "ethical_considerations",
                    "offers reviewed monthly by age band",
                ),
                (
                    "training_data[0].composition",
                    "1.2 million consumer accounts",
                ),
                ("training_data[0].preprocessing", "target-encoded"),
                (
                    "evaluation_data[0].composition",
                    "A holdout of 200,000 accounts",
                ),
                (
                    "evaluation_data[0].composition",
                    "Results:\nROC AUC 0.84 overall",
                ),
            ],
            &[
                "Environmental Impact",
                "How to Get Started with the Model",
                "Model Card Contact",
                "front_matter.language",
                "front_matter.library_name",
                "front_matter.tags",
                "introduction",
            ],
        ),
        (
            "hf_trainer.md",
            "hf_trainer_imported.json",
            &[
                ("model_details.name", "distilbert-imdb-sentiment"),
                (
                    "model_details.description",
                    "DistilBERT with a classification head",
                ),
                (
                    "model_details.description",
                    "Training hyperparameters:\nThe following hyperparameters",
                ),
                (
                    "model_details.description",
                    "Framework versions:\n- Transformers 4.44.2",
                ),
                ("intended_use.primary_uses", "Sorting English film reviews"),
                ("limitations", "sarcasm are often misread"),
                (
                    "training_data[0].composition",
                    "The 25,000 training reviews of IMDb",
                ),
                ("metrics", "0.9316"),
                ("additional.introduction", "fine-tuned version of"),
            ],
            &[
                "front_matter.base_model",
                "front_matter.metrics",
                "front_matter.tags",
                "introduction",
            ],
        ),
    ];
    for (fixture, expected, fields, additional) in cases {
        let readme = std::fs::read_to_string(golden(fixture)).unwrap();
        let imported = import_hugging_face(&readme).unwrap();
        assert!(
            validate(&imported.card).is_empty(),
            "{fixture}: {:?}",
            validate(&imported.card)
        );
        let card = serde_json::to_value(&imported.card).unwrap();
        for (field, text) in *fields {
            let mut value = &card;
            for part in field.split('.') {
                value = match part.split_once('[') {
                    Some((name, index)) => {
                        &value[name][index.trim_end_matches(']').parse::<usize>().unwrap()]
                    }
                    None => &value[part],
                };
            }
            let shown = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            assert!(
                shown.contains(text),
                "{fixture}: {field} should contain {text:?}, is {shown:?}"
            );
        }
        let left: Vec<&str> = imported
            .card
            .additional
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(&left, additional, "{fixture}: what stays under additional");
        let text = serde_json::to_string(&card).unwrap();
        assert!(
            !text.contains("More Information Needed") && !text.contains("<!--"),
            "{fixture}: placeholders and the template's comments are dropped: {text}"
        );
        check_golden(expected, &pretty(&imported.card));
        // Exported and read back, the mapped fields survive.
        let again = import_hugging_face(&export_hugging_face(&imported.card))
            .unwrap()
            .card;
        assert_eq!(again.intended_use, imported.card.intended_use, "{fixture}");
        assert_eq!(again.limitations, imported.card.limitations, "{fixture}");
        assert_eq!(
            again.ethical_considerations, imported.card.ethical_considerations,
            "{fixture}"
        );
        assert_eq!(
            again.fairness_considerations, imported.card.fairness_considerations,
            "{fixture}"
        );
        assert_eq!(
            again.training_data[0].preprocessing, imported.card.training_data[0].preprocessing,
            "{fixture}"
        );
    }
}
