//! The `filter` of MLflow's registry searches: clauses joined by `AND`, each `key comparator value`.
//! Keys: `name`, `tags.<key>` (the key may be quoted with backticks or double quotes), and for model
//! versions `run_id`, `source_path` and `version_number`. Comparators: `=`, `!=`, `LIKE`, `ILIKE` for
//! text (`%` any run of characters, `_` one), and `=`, `!=`, `<`, `<=`, `>`, `>=` for `version_number`.
//! Values are quoted with single or double quotes; `version_number` takes a bare number. Written by hand:
//! the grammar is MLflow's own and small, and an error must name the position in the client's text.

use super::error::MlflowError;

/// What a clause is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Name,
    Tag(String),
    RunId,
    SourcePath,
    VersionNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Equal,
    NotEqual,
    Like,
    ILike,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub key: Key,
    pub comparator: Comparator,
    /// The value compared with (empty for `IN` and `NOT IN`).
    pub value: String,
    /// The values of `IN (…)` and `NOT IN (…)`.
    pub list: Vec<String>,
}

/// Which search the filter is for: registered models know only `name` and tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Searched {
    RegisteredModels,
    ModelVersions,
}

fn error_at(position: usize, what: impl std::fmt::Display) -> MlflowError {
    MlflowError::invalid(format!("Invalid filter at position {position}: {what}"))
}

struct Scanner<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Scanner<'a> {
    fn skip_space(&mut self) {
        while let Some(c) = self.text[self.position..].chars().next()
            && c.is_whitespace()
        {
            self.position += c.len_utf8();
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_space();
        self.position >= self.text.len()
    }

    fn rest(&self) -> &'a str {
        &self.text[self.position..]
    }

    /// A quoted text (`'…'`, `"…"` or `` `…` ``), without its quotes.
    fn quoted(&mut self) -> Option<Result<String, MlflowError>> {
        let quote = self
            .rest()
            .chars()
            .next()
            .filter(|c| matches!(c, '\'' | '"' | '`'))?;
        let start = self.position;
        let body = &self.rest()[1..];
        Some(match body.find(quote) {
            Some(end) => {
                let value = body[..end].to_owned();
                self.position += end + 2;
                Ok(value)
            }
            None => Err(error_at(
                start,
                format!("the quote {quote} is never closed"),
            )),
        })
    }

    /// A run of letters, digits, `_` and `.`.
    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let length = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .map_or(rest.len(), |(index, _)| index);
        self.position += length;
        &rest[..length]
    }

    fn key(&mut self, searched: Searched) -> Result<Key, MlflowError> {
        self.skip_space();
        let start = self.position;
        if let Some(quoted) = self.quoted() {
            let quoted = quoted?;
            return self.named_key(&quoted, start, searched);
        }
        let word = self.word();
        if word.is_empty() {
            return Err(error_at(start, "expected a key such as name or tags.<key>"));
        }
        if word.eq_ignore_ascii_case("tags.") || word.eq_ignore_ascii_case("tag.") {
            // tags.`key with spaces` or tags."key"
            let quoted_start = self.position;
            return match self.quoted() {
                Some(key) => Ok(Key::Tag(key?)),
                None => Err(error_at(quoted_start, "expected a tag key after tags.")),
            };
        }
        self.named_key(word, start, searched)
    }

    fn named_key(&self, word: &str, start: usize, searched: Searched) -> Result<Key, MlflowError> {
        let lower = word.to_ascii_lowercase();
        if let Some(tag) = lower
            .strip_prefix("tags.")
            .or_else(|| lower.strip_prefix("tag."))
        {
            let offset = word.len() - tag.len();
            return Ok(Key::Tag(word[offset..].to_owned()));
        }
        let key = match lower.as_str() {
            "name" => Key::Name,
            "run_id" if searched == Searched::ModelVersions => Key::RunId,
            "source_path" if searched == Searched::ModelVersions => Key::SourcePath,
            "version_number" if searched == Searched::ModelVersions => Key::VersionNumber,
            _ => {
                let allowed = match searched {
                    Searched::RegisteredModels => "name, tags.<key>",
                    Searched::ModelVersions => {
                        "name, run_id, source_path, version_number, tags.<key>"
                    }
                };
                return Err(error_at(
                    start,
                    format!("invalid attribute key '{word}'; valid keys are {allowed}"),
                ));
            }
        };
        Ok(key)
    }

    fn comparator(&mut self) -> Result<Comparator, MlflowError> {
        self.skip_space();
        let start = self.position;
        let rest = self.rest();
        for (symbol, comparator) in [
            ("!=", Comparator::NotEqual),
            ("<=", Comparator::LessOrEqual),
            (">=", Comparator::GreaterOrEqual),
            ("=", Comparator::Equal),
            ("<", Comparator::Less),
            (">", Comparator::Greater),
        ] {
            if rest.starts_with(symbol) {
                self.position += symbol.len();
                return Ok(comparator);
            }
        }
        let word = self.word();
        match word.to_ascii_uppercase().as_str() {
            "LIKE" => Ok(Comparator::Like),
            "ILIKE" => Ok(Comparator::ILike),
            "IN" => Ok(Comparator::In),
            "NOT" => {
                self.skip_space();
                if self.word().eq_ignore_ascii_case("IN") {
                    Ok(Comparator::NotIn)
                } else {
                    Err(error_at(start, "expected NOT IN"))
                }
            }
            _ => Err(error_at(
                start,
                "expected a comparator (=, !=, LIKE, ILIKE, IN, NOT IN, <, <=, >, >=)",
            )),
        }
    }

    /// `('a', "b")`: a parenthesised, non-empty list of quoted values.
    fn list(&mut self) -> Result<Vec<String>, MlflowError> {
        self.skip_space();
        let start = self.position;
        if !self.rest().starts_with('(') {
            return Err(error_at(
                start,
                "expected a list in parentheses, such as ('a', 'b')",
            ));
        }
        self.position += 1;
        let mut values = Vec::new();
        loop {
            self.skip_space();
            let at = self.position;
            match self.quoted() {
                Some(value) => values.push(value?),
                None => return Err(error_at(at, "expected a quoted value in the list")),
            }
            self.skip_space();
            match self.rest().chars().next() {
                Some(',') => self.position += 1,
                Some(')') => {
                    self.position += 1;
                    return Ok(values);
                }
                _ => return Err(error_at(self.position, "expected , or ) in the list")),
            }
        }
    }

    fn value(&mut self, key: &Key) -> Result<String, MlflowError> {
        self.skip_space();
        let start = self.position;
        if let Some(quoted) = self.quoted() {
            return quoted;
        }
        let word = self.word();
        if *key == Key::VersionNumber && !word.is_empty() && word.parse::<u64>().is_ok() {
            return Ok(word.to_owned());
        }
        Err(error_at(
            start,
            "expected a value in single or double quotes",
        ))
    }
}

/// Parses a filter; an empty one matches everything.
pub fn parse(text: &str, searched: Searched) -> Result<Vec<Clause>, MlflowError> {
    let mut scanner = Scanner { text, position: 0 };
    let mut clauses = Vec::new();
    if scanner.at_end() {
        return Ok(clauses);
    }
    loop {
        let key = scanner.key(searched)?;
        scanner.skip_space();
        let at = scanner.position;
        let comparator = scanner.comparator()?;
        let text_comparator = matches!(
            comparator,
            Comparator::Equal | Comparator::NotEqual | Comparator::Like | Comparator::ILike
        );
        let listed = matches!(comparator, Comparator::In | Comparator::NotIn);
        let fits = match key {
            Key::VersionNumber => {
                !matches!(comparator, Comparator::Like | Comparator::ILike) && !listed
            }
            Key::Name | Key::RunId => text_comparator || listed,
            _ => text_comparator,
        };
        if !fits {
            return Err(error_at(
                at,
                "this comparator does not apply to the key (text keys take =, !=, LIKE, ILIKE; name and run_id also IN and NOT IN; version_number takes =, !=, <, <=, >, >=)",
            ));
        }
        if listed {
            let list = scanner.list()?;
            clauses.push(Clause {
                key,
                comparator,
                value: String::new(),
                list,
            });
        } else {
            let value = scanner.value(&key)?;
            if key == Key::VersionNumber && value.parse::<u64>().is_err() {
                return Err(error_at(at, "version_number is compared with a number"));
            }
            clauses.push(Clause {
                key,
                comparator,
                value,
                list: Vec::new(),
            });
        }
        if scanner.at_end() {
            return Ok(clauses);
        }
        let start = scanner.position;
        let word = scanner.word();
        if !word.eq_ignore_ascii_case("AND") {
            return Err(error_at(
                start,
                "expected AND between clauses (OR is not supported)",
            ));
        }
        if scanner.at_end() {
            return Err(error_at(scanner.position, "expected a clause after AND"));
        }
    }
}

/// SQL `LIKE`: `%` matches any run of characters, `_` one character; `insensitive` folds case (ILIKE).
pub fn like(text: &str, pattern: &str, insensitive: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if insensitive {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (text, pattern) = (fold(text), fold(pattern));
    // Greedy matching with backtracking to the last `%`: linear for the patterns people write.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '_' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '%')
}

/// Whether a text matches a clause.
pub fn text_matches(text: &str, clause: &Clause) -> bool {
    let value = clause.value.as_str();
    match clause.comparator {
        Comparator::Equal => text == value,
        Comparator::NotEqual => text != value,
        Comparator::Like => like(text, value, false),
        Comparator::ILike => like(text, value, true),
        Comparator::In => clause.list.iter().any(|item| item == text),
        Comparator::NotIn => clause.list.iter().all(|item| item != text),
        _ => false,
    }
}

/// The tag MLflow's prompt registry marks prompts with; its client adds
/// `` tag.`mlflow.prompt.is_prompt` != 'true' `` to every registered-model search.
pub const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// Whether a tag clause matches an entity whose tag `key` has `value` (`None`: it has no such tag). A
/// missing tag matches nothing, except for the prompt tag, where it reads as `false` (as the real
/// server does: a model is not a prompt unless marked).
pub fn tag_matches(key: &str, value: Option<&str>, clause: &Clause) -> bool {
    match value {
        Some(value) => text_matches(value, clause),
        None if key == PROMPT_TAG => text_matches("false", clause),
        None => false,
    }
}

/// Whether a number matches a clause's comparator and value (`version_number`).
pub fn number_matches(number: u64, comparator: Comparator, value: &str) -> bool {
    let Ok(value) = value.parse::<u64>() else {
        return false;
    };
    match comparator {
        Comparator::Equal => number == value,
        Comparator::NotEqual => number != value,
        Comparator::Less => number < value,
        Comparator::LessOrEqual => number <= value,
        Comparator::Greater => number > value,
        Comparator::GreaterOrEqual => number >= value,
        Comparator::Like | Comparator::ILike | Comparator::In | Comparator::NotIn => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_parse_with_their_keys_and_quotes() {
        let clauses = parse(
            "name LIKE 'credit%' AND tags.team = \"risk\" and tags.`owner team` != 'x'",
            Searched::RegisteredModels,
        )
        .unwrap();
        assert_eq!(clauses.len(), 3);
        assert_eq!(clauses[0].key, Key::Name);
        assert_eq!(clauses[0].comparator, Comparator::Like);
        assert_eq!(clauses[0].value, "credit%");
        assert_eq!(clauses[1].key, Key::Tag("team".to_owned()));
        assert_eq!(clauses[2].key, Key::Tag("owner team".to_owned()));
        assert_eq!(clauses[2].comparator, Comparator::NotEqual);
        let versions = parse(
            "name='m' AND version_number >= 3 AND run_id = 'abc'",
            Searched::ModelVersions,
        )
        .unwrap();
        assert_eq!(versions[1].key, Key::VersionNumber);
        assert_eq!(versions[1].comparator, Comparator::GreaterOrEqual);
        assert!(parse("  ", Searched::ModelVersions).unwrap().is_empty());
        let listed = parse(
            "name IN ('a', \"b\") AND run_id NOT IN ('r1') AND tag.`mlflow.prompt.is_prompt` != 'true'",
            Searched::ModelVersions,
        )
        .unwrap();
        assert_eq!(listed[0].comparator, Comparator::In);
        assert_eq!(listed[0].list, ["a", "b"]);
        assert_eq!(listed[1].comparator, Comparator::NotIn);
        assert_eq!(listed[2].key, Key::Tag(PROMPT_TAG.to_owned()));
        assert!(text_matches("b", &listed[0]) && !text_matches("c", &listed[0]));
        // The prompt clause the client adds matches a model without the tag; other tags do not.
        assert!(tag_matches(PROMPT_TAG, None, &listed[2]));
        assert!(!tag_matches(PROMPT_TAG, Some("true"), &listed[2]));
        let other = parse("tags.team != 'x'", Searched::RegisteredModels).unwrap();
        assert!(!tag_matches("team", None, &other[0]));
    }

    #[test]
    fn malformed_filters_name_the_position() {
        for (filter, position, searched) in [
            ("name", 4, Searched::RegisteredModels),
            ("name = credit", 7, Searched::RegisteredModels),
            ("name = 'a' OR name = 'b'", 11, Searched::RegisteredModels),
            ("run_id = 'a'", 0, Searched::RegisteredModels),
            ("version_number LIKE '1'", 15, Searched::ModelVersions),
            ("name = 'unclosed", 7, Searched::RegisteredModels),
            ("name = 'a' AND", 14, Searched::RegisteredModels),
            ("name IN ()", 9, Searched::RegisteredModels),
            ("tags.k IN ('a')", 7, Searched::RegisteredModels),
        ] {
            let error = parse(filter, searched).unwrap_err();
            assert!(
                error.message.contains(&format!("position {position}")),
                "{filter}: {}",
                error.message
            );
            assert_eq!(error.code, super::super::error::INVALID_PARAMETER_VALUE);
        }
    }

    #[test]
    fn like_is_sqls() {
        assert!(like("credit-default", "credit%", false));
        assert!(like("credit-default", "%default", false));
        assert!(like("credit-default", "%-%", false));
        assert!(like("credit", "cr_dit", false));
        assert!(!like("credit", "cr_it", false));
        assert!(!like("Credit", "credit", false));
        assert!(like("Credit", "credit", true));
        assert!(like("", "%", false));
        assert!(!like("abc", "", false));
        assert!(like("aaa", "%a%a%a%", false));
        assert!(!like("aa", "%a%a%a%", false));
    }
}
