//! Data drift between a reference dataset and a batch of production rows, feature by feature: for a numeric
//! feature PSI, Jensen–Shannon distance, Wasserstein distance normed by the reference's standard deviation
//! and the two-sample Kolmogorov–Smirnov test; for a categorical one PSI, Jensen–Shannon distance and the
//! chi-square test of the 2 × k table; one statistic decides per kind, and the share of drifted features
//! decides for the dataset. Binning and the distances are Evidently 0.7's, the tests scipy's, held to 1e-9
//! by `fixtures/drift.json` (made by `fixtures/make_drift_fixtures.py`); `docs/drift.md` states every
//! formula. A [`Reference`] is profiled once (sorted values, category counts) and compared against many
//! batches. Missing values (NaN, null, ±infinity) are counted and left out; a statistic that cannot be
//! computed is a [`Value`] with a reason, never NaN.

pub mod distributions;

pub use distributions::KsMethod;

use crate::Value;
use crate::dataset::{Column, DatasetError, MISSING, Table};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A numeric feature with more distinct reference values than this is binned by Sturges' rule over
/// reference and current together; one with at most this many gets a bin per value (Evidently 0.7).
pub const VALUE_BINS_UP_TO: usize = 20;

/// The statistic that decides whether a numeric feature drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumericMethod {
    /// `wasserstein_normed ≥ threshold` (Evidently's default for more than 1,000 reference rows).
    WassersteinNormed,
    Psi,
    JensenShannon,
    /// `ks_pvalue < threshold`.
    #[serde(alias = "ks")]
    KsPvalue,
}

/// The statistic that decides whether a categorical feature drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoricalMethod {
    /// `jensen_shannon ≥ threshold` (Evidently's default for more than 1,000 reference rows).
    JensenShannon,
    Psi,
    /// `chi2_pvalue < threshold`.
    #[serde(alias = "chi2")]
    Chi2Pvalue,
}

impl NumericMethod {
    /// Evidently's default threshold for the statistic: 0.1 for the distances, 0.05 for the p-value.
    pub fn default_threshold(self) -> f64 {
        match self {
            NumericMethod::KsPvalue => 0.05,
            _ => 0.1,
        }
    }

    fn is_pvalue(self) -> bool {
        self == NumericMethod::KsPvalue
    }
}

impl CategoricalMethod {
    pub fn default_threshold(self) -> f64 {
        match self {
            CategoricalMethod::Chi2Pvalue => 0.05,
            _ => 0.1,
        }
    }

    fn is_pvalue(self) -> bool {
        self == CategoricalMethod::Chi2Pvalue
    }
}

/// What decides drift: the statistic and threshold per kind of feature, and the share of drifted features
/// at which the dataset drifted. Stored in every report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftSettings {
    pub numeric_method: NumericMethod,
    pub numeric_threshold: f64,
    pub categorical_method: CategoricalMethod,
    pub categorical_threshold: f64,
    /// The dataset drifted when `drifted features / decided features ≥ drift_share`.
    pub drift_share: f64,
}

impl Default for DriftSettings {
    /// Evidently's defaults for large samples: normed Wasserstein ≥ 0.1, Jensen–Shannon ≥ 0.1, share 0.5.
    fn default() -> Self {
        Self {
            numeric_method: NumericMethod::WassersteinNormed,
            numeric_threshold: 0.1,
            categorical_method: CategoricalMethod::JensenShannon,
            categorical_threshold: 0.1,
            drift_share: 0.5,
        }
    }
}

impl DriftSettings {
    /// The settings, or what is wrong with them: thresholds must be finite and non-negative, a p-value
    /// threshold within (0, 1), the drift share within (0, 1].
    pub fn check(&self) -> Result<(), DriftError> {
        let thresholds = [
            (
                "numeric_threshold",
                self.numeric_threshold,
                self.numeric_method.is_pvalue(),
            ),
            (
                "categorical_threshold",
                self.categorical_threshold,
                self.categorical_method.is_pvalue(),
            ),
        ];
        for (name, value, pvalue) in thresholds {
            if pvalue && !(value > 0.0 && value < 1.0) {
                return Err(DriftError::Settings(format!(
                    "{name} is a p-value threshold, within (0, 1), not {value}"
                )));
            }
            if !(value.is_finite() && value >= 0.0) {
                return Err(DriftError::Settings(format!(
                    "{name} must be a finite, non-negative number, not {value}"
                )));
            }
        }
        if !(self.drift_share > 0.0 && self.drift_share <= 1.0) {
            return Err(DriftError::Settings(format!(
                "drift_share must be within (0, 1], not {}",
                self.drift_share
            )));
        }
        Ok(())
    }
}

/// Why a drift report could not be made.
#[derive(Debug, Clone, PartialEq)]
pub enum DriftError {
    /// A feature column is missing from a table, or is of a different type in the batch.
    Dataset(DatasetError),
    Settings(String),
}

impl std::fmt::Display for DriftError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriftError::Dataset(error) => error.fmt(f),
            DriftError::Settings(message) => write!(f, "drift settings: {message}"),
        }
    }
}

impl std::error::Error for DriftError {}

impl From<DatasetError> for DriftError {
    fn from(error: DatasetError) -> Self {
        DriftError::Dataset(error)
    }
}

/// A drift report: per feature, and for the dataset, with the settings that decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub features: BTreeMap<String, FeatureDrift>,
    pub dataset: DatasetDrift,
    pub settings: DriftSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetDrift {
    /// Drifted features over decided features (undefined when no feature could be decided).
    pub drift_share: Value,
    pub drifted: bool,
    pub drifted_features: usize,
    /// Features compared.
    pub features: usize,
    /// Features without a decision (no values on one side).
    pub undecided_features: usize,
    pub reference_rows: usize,
    pub current_rows: usize,
}

/// One feature's drift, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureDrift {
    Numeric(NumericDrift),
    Categorical(CategoricalDrift),
}

impl FeatureDrift {
    pub fn drifted(&self) -> bool {
        match self {
            FeatureDrift::Numeric(drift) => drift.drifted,
            FeatureDrift::Categorical(drift) => drift.drifted,
        }
    }

    /// Why the feature has no decision, if it has none.
    pub fn reason(&self) -> Option<&str> {
        match self {
            FeatureDrift::Numeric(drift) => drift.reason.as_deref(),
            FeatureDrift::Categorical(drift) => drift.reason.as_deref(),
        }
    }
}

/// Rows on each side: those compared and those left out as missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub reference_rows: usize,
    pub current_rows: usize,
    pub reference_missing: usize,
    pub current_missing: usize,
}

/// How a numeric feature was binned for PSI and Jensen–Shannon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binning {
    /// numpy's `histogram_bin_edges(reference ∪ current, bins='sturges')`.
    Sturges,
    /// One bin per value seen on either side.
    PerValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericDrift {
    /// The statistic that decided, and its threshold.
    pub method: NumericMethod,
    pub threshold: f64,
    pub drifted: bool,
    /// Why there is no decision (no values on one side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    pub reference_distinct: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binning: Option<Binning>,
    pub bins: usize,
    pub psi: Value,
    pub jensen_shannon: Value,
    pub wasserstein_normed: Value,
    pub ks_statistic: Value,
    pub ks_pvalue: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_method: Option<KsMethod>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalDrift {
    pub method: CategoricalMethod,
    pub threshold: f64,
    pub drifted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Categories seen on either side.
    pub categories: usize,
    /// Categories in the batch that the reference never had.
    pub new_categories: usize,
    pub psi: Value,
    pub jensen_shannon: Value,
    pub chi2_statistic: Value,
    pub chi2_pvalue: Value,
}

/// A reference dataset profiled for drift: per feature its sorted values (numeric) or category counts
/// (categorical), built once and compared against every batch with [`Reference::compare`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    rows: usize,
    features: Vec<(String, Profile)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Profile {
    Numeric(NumericProfile),
    Categorical(CategoricalProfile),
}

#[derive(Debug, Clone, PartialEq)]
struct NumericProfile {
    /// The present values, ascending.
    sorted: Vec<f64>,
    missing: usize,
    /// Population standard deviation (numpy's `np.std`).
    std: f64,
    distinct: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct CategoricalProfile {
    categories: Vec<String>,
    counts: Vec<u64>,
    index: HashMap<String, usize>,
    missing: usize,
}

/// The kind a feature is compared as, from its column in the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// A number column.
    Numeric,
    /// A text column.
    Categorical,
}

impl Reference {
    /// Profiles `features` of `table` (all its columns when empty): number columns as numeric features,
    /// text columns as categorical ones. Features are profiled on all cores.
    pub fn new(table: &Table, features: &[String]) -> Result<Self, DriftError> {
        let names: Vec<String> = if features.is_empty() {
            table.column_names().to_vec()
        } else {
            features.to_vec()
        };
        let kinds = names
            .into_iter()
            .map(|name| {
                let kind = match table.get(&name)? {
                    Column::Number(_) => FeatureKind::Numeric,
                    Column::Text { .. } => FeatureKind::Categorical,
                };
                Ok((name, kind))
            })
            .collect::<Result<Vec<_>, DatasetError>>()?;
        Self::with_kinds(table, &kinds)
    }

    /// Profiles the named features as the given kinds: a number column may be categorical (its values
    /// compared as the text they print, `1` and `1.0` alike; for codes such as a region number), a text
    /// column cannot be numeric.
    pub fn with_kinds(
        table: &Table,
        features: &[(String, FeatureKind)],
    ) -> Result<Self, DriftError> {
        let columns = features
            .iter()
            .map(|(name, kind)| match (table.get(name)?, kind) {
                (Column::Text { .. }, FeatureKind::Numeric) => Err(DatasetError::new(
                    None,
                    Some(name),
                    "a text column cannot be compared as a numeric feature",
                )),
                (column, _) => Ok(column),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let profiles = on_all_cores(columns.len(), |index| {
            profile(columns[index], features[index].1)
        });
        Ok(Self {
            rows: table.row_count(),
            features: features
                .iter()
                .map(|(name, _)| name.clone())
                .zip(profiles)
                .collect(),
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The features, in order, with the kind each is compared as.
    pub fn features(&self) -> impl Iterator<Item = (&str, FeatureKind)> {
        self.features.iter().map(|(name, profile)| {
            let kind = match profile {
                Profile::Numeric(_) => FeatureKind::Numeric,
                Profile::Categorical(_) => FeatureKind::Categorical,
            };
            (name.as_str(), kind)
        })
    }

    /// Compares a batch with the reference, feature by feature on all cores. Every reference feature must
    /// be a column of `current`; a numeric one must be numbers there (or have no present value).
    /// Categories are matched by their text, whatever each table's dictionary order, and a number column
    /// compared with a categorical feature by the text its numbers print.
    pub fn compare(
        &self,
        current: &Table,
        settings: &DriftSettings,
    ) -> Result<DriftReport, DriftError> {
        settings.check()?;
        let columns = self
            .features
            .iter()
            .map(|(name, profile)| {
                let column = current.get(name)?;
                let all_missing = match column {
                    Column::Number(values) => values.iter().all(|value| !value.is_finite()),
                    Column::Text { codes, .. } => codes.iter().all(|&code| code == MISSING),
                };
                match (profile, column) {
                    (Profile::Numeric(_), Column::Text { .. }) if !all_missing => {
                        Err(DatasetError::new(
                            None,
                            Some(name),
                            "the column is text in this batch but numbers in the reference",
                        ))
                    }
                    _ => Ok(column),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows = current.row_count();
        let drifts = on_all_cores(self.features.len(), |index| {
            match (&self.features[index].1, columns[index]) {
                (Profile::Numeric(reference), column) => {
                    FeatureDrift::Numeric(numeric_drift(reference, column, rows, settings))
                }
                (Profile::Categorical(reference), column) => {
                    FeatureDrift::Categorical(categorical_drift(reference, column, settings))
                }
            }
        });
        let undecided = drifts
            .iter()
            .filter(|drift| drift.reason().is_some())
            .count();
        let drifted = drifts.iter().filter(|drift| drift.drifted()).count();
        let decided = drifts.len() - undecided;
        let drift_share = Value::ratio(
            drifted as f64,
            decided as f64,
            "no feature has values on both sides",
        );
        let dataset = DatasetDrift {
            drifted: drift_share
                .value
                .is_some_and(|share| share >= settings.drift_share),
            drift_share,
            drifted_features: drifted,
            features: drifts.len(),
            undecided_features: undecided,
            reference_rows: self.rows,
            current_rows: rows,
        };
        Ok(DriftReport {
            features: self
                .features
                .iter()
                .map(|(name, _)| name.clone())
                .zip(drifts)
                .collect(),
            dataset,
            settings: *settings,
        })
    }
}

/// Compares `current` with `reference` on `features` (all the reference's columns when empty); for one
/// comparison. A server comparing many batches builds the [`Reference`] once.
pub fn drift_report(
    reference: &Table,
    current: &Table,
    features: &[String],
    settings: &DriftSettings,
) -> Result<DriftReport, DriftError> {
    settings.check()?; // before profiling, so that bad settings cost nothing
    Reference::new(reference, features)?.compare(current, settings)
}

/// `work(0..count)` on all cores, in order.
fn on_all_cores<T: Send>(count: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |cores| cores.get())
        .min(count);
    if workers <= 1 {
        return (0..count).map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut found = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= count {
                            break found;
                        }
                        found.push((index, work(index)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, value)| value).collect()
}

fn profile(column: &Column, kind: FeatureKind) -> Profile {
    match (kind, column) {
        (FeatureKind::Numeric, Column::Number(values)) => {
            let (sorted, missing) = present_sorted(values);
            let distinct = distinct_sorted(&sorted);
            let std = population_std(&sorted);
            Profile::Numeric(NumericProfile {
                sorted,
                missing,
                std,
                distinct,
            })
        }
        // Refused in `with_kinds`; profiled as all missing should it ever get here.
        (FeatureKind::Numeric, Column::Text { codes, .. }) => Profile::Numeric(NumericProfile {
            sorted: Vec::new(),
            missing: codes.len(),
            std: 0.0,
            distinct: 0,
        }),
        (FeatureKind::Categorical, column) => {
            let (categories, counts, missing) = category_counts(column);
            let index = categories
                .iter()
                .enumerate()
                .map(|(position, category)| (category.clone(), position))
                .collect();
            Profile::Categorical(CategoricalProfile {
                categories,
                counts,
                index,
                missing,
            })
        }
    }
}

/// A column's categories that occur, with their counts, and the missing cells: text as it reads, numbers
/// as they print (one category for both zeros; NaN and infinities missing), as `Table::groups` names them.
fn category_counts(column: &Column) -> (Vec<String>, Vec<u64>, usize) {
    match column {
        Column::Text { dictionary, codes } => {
            let (counts, missing) = code_counts(dictionary.len(), codes);
            let (categories, counts) = dictionary
                .iter()
                .zip(counts)
                .filter(|(_, count)| *count > 0)
                .map(|(category, count)| (category.clone(), count))
                .unzip();
            (categories, counts, missing)
        }
        Column::Number(values) => {
            let mut index: HashMap<u64, usize> = HashMap::new();
            let (mut categories, mut counts, mut missing) = (Vec::new(), Vec::new(), 0);
            for &value in values {
                if !value.is_finite() {
                    missing += 1;
                    continue;
                }
                let position = *index.entry((value + 0.0).to_bits()).or_insert_with(|| {
                    categories.push((value + 0.0).to_string());
                    counts.push(0);
                    counts.len() - 1
                });
                counts[position] += 1;
            }
            (categories, counts, missing)
        }
    }
}

fn code_counts(categories: usize, codes: &[u32]) -> (Vec<u64>, usize) {
    let mut counts = vec![0u64; categories];
    let mut missing = 0;
    for &code in codes {
        match counts.get_mut(code as usize) {
            Some(count) => *count += 1,
            None => missing += 1,
        }
    }
    (counts, missing)
}

/// The finite values of a column, ascending, and how many were missing (NaN) or infinite.
fn present_sorted(values: &[f64]) -> (Vec<f64>, usize) {
    const SMALL: usize = 4096;
    if values.len() < SMALL {
        let mut present: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        present.sort_unstable_by(f64::total_cmp);
        let missing = values.len() - present.len();
        return (present, missing);
    }
    let keys: Vec<u64> = values
        .iter()
        .filter(|value| value.is_finite())
        .map(|&value| order_key(value))
        .collect();
    let missing = values.len() - keys.len();
    (
        radix_sort(keys).into_iter().map(from_order_key).collect(),
        missing,
    )
}

/// A float's bits as an unsigned integer in the float's order (negatives flipped, positives' sign set).
fn order_key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

fn distinct_sorted(sorted: &[f64]) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    1 + sorted.windows(2).filter(|pair| pair[0] != pair[1]).count()
}

/// numpy's `np.std` (population): the mean, then the mean squared deviation, each summed with Neumaier's
/// compensation (numpy sums pairwise; both are within a few ulps).
fn population_std(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = compensated_sum(values.iter().copied()) / n;
    let squares = compensated_sum(values.iter().map(|value| (value - mean) * (value - mean)));
    (squares / n).sqrt()
}

fn compensated_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut compensation) = (0.0f64, 0.0f64);
    for value in values {
        let total = sum + value;
        if sum.abs() >= value.abs() {
            compensation += (sum - total) + value;
        } else {
            compensation += (value - total) + sum;
        }
        sum = total;
    }
    sum + compensation
}

/// Sorts keys ascending: a most-significant-digit radix sort on the 11 bits below the highest bit in which
/// the keys differ, recursing into buckets (sorted with the standard sort from 256 keys down). Two passes
/// over memory at the top level, then buckets of a few hundred keys sorted in cache: the sort is bound by
/// memory bandwidth, which a server shares, and an LSD sort makes six such passes.
fn radix_sort(mut keys: Vec<u64>) -> Vec<u64> {
    let mut scratch = vec![0u64; keys.len()];
    sort_keys(&mut keys, &mut scratch);
    keys
}

fn sort_keys(keys: &mut [u64], scratch: &mut [u64]) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    if keys.len() <= 256 {
        keys.sort_unstable();
        return;
    }
    let (low, high) = keys.iter().fold((u64::MAX, 0), |(low, high), &key| {
        (low.min(key), high.max(key))
    });
    if low == high {
        return;
    }
    let top = 64 - (low ^ high).leading_zeros();
    let shift = top.saturating_sub(BITS);
    let digit = |key: u64| ((key >> shift) as usize) & (BUCKETS - 1);
    let mut counts = [0usize; BUCKETS];
    for &key in keys.iter() {
        counts[digit(key)] += 1;
    }
    let mut offsets = [0usize; BUCKETS];
    let mut running = 0;
    for (offset, &count) in offsets.iter_mut().zip(counts.iter()) {
        *offset = running;
        running += count;
    }
    let starts = offsets;
    for &key in keys.iter() {
        let bucket = digit(key);
        scratch[offsets[bucket]] = key;
        offsets[bucket] += 1;
    }
    keys.copy_from_slice(scratch);
    if shift == 0 {
        return;
    }
    for (&start, &count) in starts.iter().zip(counts.iter()) {
        if count > 1 {
            let range = start..start + count;
            sort_keys(&mut keys[range.clone()], &mut scratch[range]);
        }
    }
}

fn no_values(counts: &Counts) -> Option<String> {
    if counts.reference_rows == 0 {
        Some(format!(
            "no values in the reference ({} missing)",
            counts.reference_missing
        ))
    } else if counts.current_rows == 0 {
        Some(format!(
            "no values in the batch ({} missing)",
            counts.current_missing
        ))
    } else {
        None
    }
}

/// `score ≥ threshold` for a distance, `p < threshold` for a p-value; false when undefined.
fn decide(score: &Value, threshold: f64, pvalue: bool) -> bool {
    score.value.is_some_and(|score| {
        if pvalue {
            score < threshold
        } else {
            score >= threshold
        }
    })
}

fn numeric_drift(
    reference: &NumericProfile,
    column: &Column,
    rows: usize,
    settings: &DriftSettings,
) -> NumericDrift {
    let (current, current_missing) = match column {
        Column::Number(values) => present_sorted(values),
        Column::Text { .. } => (Vec::new(), rows),
    };
    let counts = Counts {
        reference_rows: reference.sorted.len(),
        current_rows: current.len(),
        reference_missing: reference.missing,
        current_missing,
    };
    let method = settings.numeric_method;
    let threshold = settings.numeric_threshold;
    if let Some(reason) = no_values(&counts) {
        let undefined = Value::undefined(reason.clone());
        return NumericDrift {
            method,
            threshold,
            drifted: false,
            reason: Some(reason),
            counts,
            reference_distinct: reference.distinct,
            binning: None,
            bins: 0,
            psi: undefined.clone(),
            jensen_shannon: undefined.clone(),
            wasserstein_normed: undefined.clone(),
            ks_statistic: undefined.clone(),
            ks_pvalue: undefined,
            ks_method: None,
        };
    }
    let statistics = numeric_statistics(&reference.sorted, &current, reference.distinct);
    let wasserstein_normed = statistics.wasserstein / reference.std.max(0.001);
    let (ks_statistic, ks_pvalue, ks_method) = distributions::ks_two_sample(
        reference.sorted.len(),
        current.len(),
        statistics.ks_statistic,
    );
    let (psi, jensen_shannon) = psi_and_jensen_shannon(
        &statistics.reference_counts,
        &statistics.current_counts,
        reference.sorted.len(),
        current.len(),
    );
    let mut drift = NumericDrift {
        method,
        threshold,
        drifted: false,
        reason: None,
        counts,
        reference_distinct: reference.distinct,
        binning: Some(statistics.binning),
        bins: statistics.reference_counts.len(),
        psi: Value::defined(psi),
        jensen_shannon: Value::defined(jensen_shannon),
        wasserstein_normed: Value::defined(wasserstein_normed),
        ks_statistic: Value::defined(ks_statistic),
        ks_pvalue: Value::defined(ks_pvalue),
        ks_method: Some(ks_method),
    };
    let score = match method {
        NumericMethod::WassersteinNormed => &drift.wasserstein_normed,
        NumericMethod::Psi => &drift.psi,
        NumericMethod::JensenShannon => &drift.jensen_shannon,
        NumericMethod::KsPvalue => &drift.ks_pvalue,
    };
    drift.drifted = decide(score, threshold, method.is_pvalue());
    drift
}

struct NumericStatistics {
    ks_statistic: f64,
    wasserstein: f64,
    binning: Binning,
    reference_counts: Vec<u64>,
    current_counts: Vec<u64>,
}

/// One merge of the two sorted samples: the KS statistic and the Wasserstein distance from the empirical
/// CDFs at every distinct value (scipy's `ks_2samp` and `wasserstein_distance`), and the bin counts.
fn numeric_statistics(reference: &[f64], current: &[f64], distinct: usize) -> NumericStatistics {
    let (n1, n2) = (reference.len(), current.len());
    let (n1_f, n2_f) = (n1 as f64, n2 as f64);
    let per_value = distinct <= VALUE_BINS_UP_TO;
    let (mut value_reference, mut value_current) = (Vec::new(), Vec::new());
    let (mut max_difference, mut min_difference) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut wasserstein = 0.0f64;
    if per_value {
        // Few distinct reference values: runs of equal values, counted per side.
        let (mut i, mut j) = (0usize, 0usize);
        let mut previous: Option<(f64, f64)> = None;
        while i < n1 || j < n2 {
            let value = match (reference.get(i), current.get(j)) {
                (Some(&a), Some(&b)) => a.min(b),
                (Some(&a), None) => a,
                (None, Some(&b)) => b,
                (None, None) => break,
            };
            let (start_i, start_j) = (i, j);
            while i < n1 && reference[i] == value {
                i += 1;
            }
            while j < n2 && current[j] == value {
                j += 1;
            }
            let difference = i as f64 / n1_f - j as f64 / n2_f;
            max_difference = max_difference.max(difference);
            min_difference = min_difference.min(difference);
            if let Some((last_value, last_difference)) = previous {
                wasserstein += last_difference.abs() * (value - last_value);
            }
            previous = Some((value, difference));
            value_reference.push((i - start_i) as u64);
            value_current.push((j - start_j) as u64);
        }
    } else {
        // Mostly distinct values: one value per step, taken from the side with the smaller one without a
        // branch on which (half the steps would mispredict), and the CDFs compared where the next value
        // differs (the end of a run of ties).
        let at = |values: &[f64], index: usize| values.get(index).copied().unwrap_or(f64::INFINITY);
        let (mut i, mut j) = (0usize, 0usize);
        let mut next = at(reference, 0).min(at(current, 0));
        while i + j < n1 + n2 {
            let value = next;
            let take_reference = at(reference, i) <= at(current, j);
            i += usize::from(take_reference);
            j += usize::from(!take_reference);
            next = at(reference, i).min(at(current, j));
            if next != value {
                let difference = i as f64 / n1_f - j as f64 / n2_f;
                max_difference = max_difference.max(difference);
                min_difference = min_difference.min(difference);
                if next.is_finite() {
                    wasserstein += difference.abs() * (next - value);
                }
            }
        }
    }
    let min_statistic = (-min_difference).clamp(0.0, 1.0);
    let ks_statistic = if min_statistic > max_difference {
        min_statistic
    } else {
        max_difference
    };
    let (binning, reference_counts, current_counts) = if per_value {
        (Binning::PerValue, value_reference, value_current)
    } else {
        let first = reference[0].min(current[0]);
        let last = reference[n1 - 1].max(current[n2 - 1]);
        let edges = sturges_edges(first, last, n1 + n2);
        (
            Binning::Sturges,
            histogram(reference, &edges),
            histogram(current, &edges),
        )
    };
    NumericStatistics {
        ks_statistic,
        wasserstein,
        binning,
        reference_counts,
        current_counts,
    }
}

/// numpy's `histogram_bin_edges(data, bins='sturges')` for data of `size` values within [first, last]:
/// width ptp / (log2(size) + 1), ceil(ptp / width) bins, edges `i · step + first` as `linspace` makes them.
fn sturges_edges(first: f64, last: f64, size: usize) -> Vec<f64> {
    let (first, last) = if first == last {
        (first - 0.5, last + 0.5)
    } else {
        (first, last)
    };
    let width = (last - first) / ((size as f64).log2() + 1.0);
    let bins = if width != 0.0 {
        ((last - first) / width).ceil() as usize
    } else {
        1
    }
    .max(1);
    let step = (last - first) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step + first).collect();
    edges[bins] = last;
    edges
}

/// numpy's `histogram(sorted, edges)`: half-open bins, the last one closed.
fn histogram(sorted: &[f64], edges: &[f64]) -> Vec<u64> {
    let mut positions: Vec<usize> = edges[..edges.len() - 1]
        .iter()
        .map(|&edge| sorted.partition_point(|&value| value < edge))
        .collect();
    let last = edges[edges.len() - 1];
    positions.push(sorted.partition_point(|&value| value <= last));
    positions
        .windows(2)
        .map(|pair| (pair[1] - pair[0]) as u64)
        .collect()
}

/// Evidently's PSI and Jensen–Shannon distance from bin counts over `n1` and `n2` values: shares
/// count / n; for PSI only, an empty bin's share becomes 0.0001, or the smallest non-zero share / 10⁶ when
/// that is ≤ 0.0001; Jensen–Shannon is scipy's `jensenshannon` (natural logarithm) of the unfilled shares.
fn psi_and_jensen_shannon(reference: &[u64], current: &[u64], n1: usize, n2: usize) -> (f64, f64) {
    let shares = |counts: &[u64], n: usize| -> Vec<f64> {
        counts
            .iter()
            .map(|&count| count as f64 / n as f64)
            .collect()
    };
    let (p, q) = (shares(reference, n1), shares(current, n2));
    let filled = |shares: &[f64]| -> Vec<f64> {
        let smallest = shares
            .iter()
            .copied()
            .filter(|&share| share != 0.0)
            .fold(f64::INFINITY, f64::min);
        let fill = if smallest <= 0.0001 {
            smallest / 1e6
        } else {
            0.0001
        };
        shares
            .iter()
            .map(|&share| if share == 0.0 { fill } else { share })
            .collect()
    };
    let (p_filled, q_filled) = (filled(&p), filled(&q));
    let psi = p_filled
        .iter()
        .zip(&q_filled)
        .map(|(r, c)| (r - c) * (r / c).ln())
        .sum();
    (psi, jensen_shannon(&p, &q))
}

/// scipy's `jensenshannon(p, q)`: both normalised to sum 1, √((KL(p‖m) + KL(q‖m)) / 2) with m their mean.
/// A sum that rounding leaves a hair below zero is 0, not NaN.
fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let (p_total, q_total): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let relative_entropy = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let (mut left, mut right) = (0.0, 0.0);
    for (&p, &q) in p.iter().zip(q) {
        let (p, q) = (p / p_total, q / q_total);
        let m = (p + q) / 2.0;
        left += relative_entropy(p, m);
        right += relative_entropy(q, m);
    }
    ((left + right) / 2.0).max(0.0).sqrt()
}

fn categorical_drift(
    reference: &CategoricalProfile,
    column: &Column,
    settings: &DriftSettings,
) -> CategoricalDrift {
    // The batch's counts over the reference's categories, then the categories only the batch has.
    let mut current_counts = vec![0u64; reference.categories.len()];
    let mut new_counts = Vec::new();
    let (categories, counts, current_missing) = category_counts(column);
    for (category, count) in categories.iter().zip(counts) {
        match reference.index.get(category) {
            Some(&position) => current_counts[position] += count,
            None => new_counts.push(count),
        }
    }
    let n1: u64 = reference.counts.iter().sum();
    let n2: u64 = current_counts.iter().chain(&new_counts).sum();
    let counts = Counts {
        reference_rows: n1 as usize,
        current_rows: n2 as usize,
        reference_missing: reference.missing,
        current_missing,
    };
    let mut reference_counts = reference.counts.clone();
    reference_counts.resize(reference.counts.len() + new_counts.len(), 0);
    current_counts.extend(&new_counts);
    let (method, threshold) = (settings.categorical_method, settings.categorical_threshold);
    let categories = reference_counts.len();
    let new_categories = new_counts.len();
    let reason = no_values(&counts);
    let [psi, jensen_shannon, chi2_statistic, chi2_pvalue] = match &reason {
        Some(reason) => std::array::from_fn(|_| Value::undefined(reason.clone())),
        None => {
            let (psi, jensen_shannon) = psi_and_jensen_shannon(
                &reference_counts,
                &current_counts,
                n1 as usize,
                n2 as usize,
            );
            let (statistic, pvalue) = chi_square_test(&reference_counts, &current_counts);
            [psi, jensen_shannon, statistic, pvalue].map(Value::defined)
        }
    };
    let mut drift = CategoricalDrift {
        method,
        threshold,
        drifted: false,
        reason,
        counts,
        categories,
        new_categories,
        psi,
        jensen_shannon,
        chi2_statistic,
        chi2_pvalue,
    };
    let score = match method {
        CategoricalMethod::JensenShannon => &drift.jensen_shannon,
        CategoricalMethod::Psi => &drift.psi,
        CategoricalMethod::Chi2Pvalue => &drift.chi2_pvalue,
    };
    drift.drifted = decide(score, threshold, method.is_pvalue());
    drift
}

/// scipy's `chi2_contingency(table, correction=False)` of the 2 × k table (reference and batch counts per
/// category): expected counts from the margins, Σ (observed − expected)² / expected, k − 1 degrees of
/// freedom; one category gives (0, 1) as scipy does. Both rows and every column have a positive total here.
fn chi_square_test(reference: &[u64], current: &[u64]) -> (f64, f64) {
    let dof = reference.len().saturating_sub(1);
    if dof == 0 {
        return (0.0, 1.0);
    }
    let n1: u64 = reference.iter().sum();
    let n2: u64 = current.iter().sum();
    let total = (n1 + n2) as f64;
    let mut statistic = 0.0;
    for (row, row_total) in [(reference, n1), (current, n2)] {
        for (index, &observed) in row.iter().enumerate() {
            let column_total = reference[index] + current[index];
            let expected = (row_total as f64 * column_total as f64) / total;
            let difference = observed as f64 - expected;
            statistic += difference * difference / expected;
        }
    }
    (
        statistic,
        distributions::chi_square_sf(dof as f64, statistic),
    )
}

#[cfg(test)]
mod tests;
