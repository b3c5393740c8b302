//! The rule files (`rules/*.txt`), parsed once, and the classification of an import by them.

use std::collections::HashSet;
use std::sync::OnceLock;

/// What the rules say about one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportClass {
    /// Matched by `rules/safe_imports.txt` and not by the dangerous list.
    Safe,
    /// In neither list.
    Unknown,
    /// Matched by `rules/dangerous_imports.txt`.
    Dangerous,
}

pub(crate) struct Rules {
    dangerous: HashSet<String>,
    safe: HashSet<String>,
    onnx_domains: HashSet<String>,
}

fn entries(text: &str) -> HashSet<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| Rules {
        dangerous: entries(crate::DANGEROUS_IMPORTS),
        safe: entries(crate::SAFE_IMPORTS),
        onnx_domains: entries(crate::ONNX_DOMAINS),
    })
}

/// Whether `qualified` or one of its dot-prefixes is in `set` (`os` matches `os.path.join`).
fn matches(set: &HashSet<String>, qualified: &str) -> bool {
    if set.contains(qualified) {
        return true;
    }
    qualified
        .char_indices()
        .filter(|&(_, character)| character == '.')
        .any(|(at, _)| set.contains(&qualified[..at]))
}

/// Classifies the import of `name` from `module` by the rule files; dangerous wins over safe.
///
/// From protocol 4 on, the unpickler's `find_class` resolves a dotted `name` attribute by attribute
/// (`getattr`), so `('sklearn', 'os.system')` reaches `os.system` through whatever `sklearn` imported.
/// A dotted name is therefore judged on its whole path: dangerous when any component is a dunder
/// (`__builtins__`, `__globals__`, …) or when any dotted suffix of the path matches the dangerous list
/// (`sklearn.os.system` is `os.system`); safe only on an exact `module.name` entry of the safe list,
/// never through a module-prefix entry; unknown otherwise. A plain name allowed by a module entry that
/// is itself a dangerous module (`numpy.random` + `os`, re-exported) is dangerous too.
pub fn classify_import(module: &str, name: &str) -> ImportClass {
    let rules = rules();
    let qualified = format!("{module}.{name}");
    if !name.contains('.') {
        return if matches(&rules.dangerous, &qualified) {
            ImportClass::Dangerous
        } else if rules.safe.contains(&qualified) {
            ImportClass::Safe
        } else if matches(&rules.safe, &qualified) {
            // Safe through a module entry (`sklearn`, `numpy.random`): every attribute of the module,
            // except a module it imported that is dangerous itself (`numpy.random.os`).
            if rules.dangerous.contains(name) {
                ImportClass::Dangerous
            } else {
                ImportClass::Safe
            }
        } else {
            ImportClass::Unknown
        };
    }
    let components: Vec<&str> = qualified.split('.').collect();
    let dunder = |component: &&str| {
        component.len() > 4 && component.starts_with("__") && component.ends_with("__")
    };
    if name.split('.').any(|component| dunder(&component)) {
        return ImportClass::Dangerous;
    }
    let suffix_dangerous = (0..components.len()).any(|start| {
        let suffix = components[start..].join(".");
        matches(&rules.dangerous, &suffix)
    });
    if suffix_dangerous {
        ImportClass::Dangerous
    } else if rules.safe.contains(&qualified) {
        ImportClass::Safe
    } else {
        ImportClass::Unknown
    }
}

/// Whether an ONNX operator domain needs no custom operator library (`""` is the default domain).
pub(crate) fn is_known_onnx_domain(domain: &str) -> bool {
    domain.is_empty() || rules().onnx_domains.contains(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_classified_by_module_prefix_and_dangerous_wins() {
        let cases = [
            ("os", "system", ImportClass::Dangerous),
            ("posix", "system", ImportClass::Dangerous),
            ("os.path", "join", ImportClass::Dangerous),
            ("subprocess", "Popen", ImportClass::Dangerous),
            ("builtins", "eval", ImportClass::Dangerous),
            ("__builtin__", "eval", ImportClass::Dangerous),
            ("builtins", "getattr", ImportClass::Dangerous),
            ("builtins", "set", ImportClass::Safe),
            ("builtins", "evaluate", ImportClass::Unknown),
            ("numpy.core.multiarray", "_reconstruct", ImportClass::Safe),
            ("numpy", "load", ImportClass::Dangerous),
            (
                "numpy.testing._private.utils",
                "runstring",
                ImportClass::Dangerous,
            ),
            (
                "sklearn.linear_model._logistic",
                "LogisticRegression",
                ImportClass::Safe,
            ),
            ("sklearn.externals.joblib", "load", ImportClass::Dangerous),
            ("torch._utils", "_rebuild_tensor_v2", ImportClass::Safe),
            ("torch", "FloatStorage", ImportClass::Safe),
            ("torch", "load", ImportClass::Dangerous),
            ("collections", "OrderedDict", ImportClass::Safe),
            ("osx", "thing", ImportClass::Unknown),
            ("__main__", "Model", ImportClass::Unknown),
            ("webbrowser", "open", ImportClass::Dangerous),
            ("runpy", "run_path", ImportClass::Dangerous),
            // Dotted names (protocol 4 `find_class` walks them with getattr).
            ("sklearn", "os.system", ImportClass::Dangerous),
            ("numpy.random", "os", ImportClass::Dangerous),
            ("sklearn", "subprocess", ImportClass::Dangerous),
            ("builtins", "dict.get", ImportClass::Unknown),
            (
                "copyreg",
                "_reconstructor.__builtins__",
                ImportClass::Dangerous,
            ),
            ("x", "builtins.eval", ImportClass::Dangerous),
            ("numpy", "random.os", ImportClass::Dangerous),
            ("sklearn.pipeline", "Pipeline.fit", ImportClass::Unknown),
        ];
        for (module, name, expected) in cases {
            assert_eq!(classify_import(module, name), expected, "{module}.{name}");
        }
    }

    #[test]
    fn rule_files_have_no_entry_in_both_lists() {
        let rules = rules();
        let both: Vec<_> = rules.safe.intersection(&rules.dangerous).collect();
        assert!(both.is_empty(), "{both:?}");
    }

    #[test]
    fn onnx_default_and_listed_domains_are_known() {
        assert!(is_known_onnx_domain(""));
        assert!(is_known_onnx_domain("ai.onnx.ml"));
        assert!(is_known_onnx_domain("com.microsoft"));
        assert!(!is_known_onnx_domain("com.example.custom"));
    }
}
