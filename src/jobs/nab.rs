//! The Numenta Anomaly Benchmark scorer, implemented from NAB's published
//! method (`nab/sweeper.py`, v1.1): per-row anomaly scores, a probationary
//! period that is never scored, anomaly windows in which only the earliest
//! detection counts (weighted by a scaled sigmoid of its position), false
//! positives weighted by their distance past the previous window, one
//! threshold for the whole corpus chosen by a sweep, and a normalisation
//! that maps the null detector to 0 and a perfect one to 100.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::score::{Models, ScoreError, format_timestamp, score_file};
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::parallel::parallel_map;
use tidewatch_stream::pipeline::Verdict;
use tidewatch_stream::source::decode::{FieldValue, parse_timestamp};
use tidewatch_stream::source::file::{ReadOptions, TimeOrder};
use tidewatch_stream::source::schema::TimestampFormat;

/// Reward weights of an application profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub tp_weight: f64,
    pub fp_weight: f64,
    pub fn_weight: f64,
}

/// NAB's three profiles.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp_weight: 1.0,
        fp_weight: 0.22,
        fn_weight: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 2.0,
    },
];

/// One labelled series: its row times and anomaly windows.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledSeries {
    /// Path relative to the data folder, as in the labels file.
    pub name: String,
    pub path: PathBuf,
    pub timestamps_ms: Vec<i64>,
    /// Inclusive row ranges of the anomaly windows, in time order.
    pub windows: Vec<(usize, usize)>,
}

/// A profile's result over a corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileScore {
    pub profile: Profile,
    /// 100 (score - null) / (perfect - null)
    pub normalized: f64,
    pub raw: f64,
    pub threshold: f64,
    pub detected_windows: usize,
    pub windows: usize,
    pub false_positives: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum NabError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Corpus(String),
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> NabError {
    NabError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Reads the labels and every CSV under `data_dir`; each data file must
/// have an entry in the labels.
pub fn load_corpus(data_dir: &Path, labels_path: &Path) -> Result<Vec<LabelledSeries>, NabError> {
    let text = std::fs::read_to_string(labels_path).map_err(|e| file_error(labels_path, e))?;
    let labels: BTreeMap<String, Vec<[String; 2]>> = serde_json::from_str(&text)
        .map_err(|e| file_error(labels_path, format!("not NAB windows JSON: {e}")))?;
    let files = super::csv_files(data_dir).map_err(|e| file_error(data_dir, e))?;
    if files.is_empty() {
        return Err(file_error(data_dir, "no CSV files"));
    }
    files
        .into_iter()
        .map(|path| {
            let name = relative_name(data_dir, &path);
            let windows = labels.get(&name).ok_or_else(|| {
                NabError::Corpus(format!("{name} has no entry in {}", labels_path.display()))
            })?;
            let timestamps_ms = read_column_times(&path)?;
            let windows = windows
                .iter()
                .map(|[start, end]| {
                    let bound = |s: &str| {
                        parse_time(s)
                            .ok_or_else(|| file_error(labels_path, format!("bad time {s:?}")))
                    };
                    let (start, end) = (bound(start)?, bound(end)?);
                    let first = timestamps_ms.partition_point(|&t| t < start);
                    let last = timestamps_ms.partition_point(|&t| t <= end);
                    if last <= first {
                        return Err(NabError::Corpus(format!(
                            "{name}: window {start}..{end} holds no row"
                        )));
                    }
                    Ok((first, last - 1))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(LabelledSeries {
                name,
                path,
                timestamps_ms,
                windows,
            })
        })
        .collect()
}

/// The series of `corpus` in the given categories (the first folder of
/// their names); all of them when none is given. A category with no
/// series is an error naming those there are.
pub fn in_categories(
    corpus: Vec<LabelledSeries>,
    categories: &[String],
) -> Result<Vec<LabelledSeries>, NabError> {
    if categories.is_empty() {
        return Ok(corpus);
    }
    let category_of = |s: &LabelledSeries| s.name.split('/').next().unwrap_or_default().to_owned();
    let present: std::collections::BTreeSet<String> = corpus.iter().map(category_of).collect();
    if let Some(missing) = categories.iter().find(|c| !present.contains(*c)) {
        return Err(NabError::Corpus(format!(
            "no series in category {missing:?}; the categories are {}",
            present.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(corpus
        .into_iter()
        .filter(|s| categories.contains(&category_of(s)))
        .collect())
}

fn relative_name(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// At most the first 40 characters of `text`, for a message.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

fn parse_time(text: &str) -> Option<i64> {
    parse_timestamp(FieldValue::Text(text), &TimestampFormat::Auto).ok()
}

/// The first column of a CSV, as times.
fn read_column_times(path: &Path) -> Result<Vec<i64>, NabError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| file_error(path, e))?;
    let mut times = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| file_error(path, e))?;
        let text = record.get(0).unwrap_or_default();
        times.push(
            parse_time(text).ok_or_else(|| {
                file_error(path, format!("line {}: bad timestamp {text:?}", i + 2))
            })?,
        );
    }
    Ok(times)
}

/// Reads ready-made scores for `series` from a folder mirroring the data
/// folder: `DIR/<category>/<name>.csv` or with a detector prefix,
/// `DIR/<category>/<detector>_<name>.csv`; column `anomaly_score`.
pub fn read_scores(scores_dir: &Path, series: &LabelledSeries) -> Result<Vec<f64>, NabError> {
    let relative = Path::new(&series.name);
    let folder = scores_dir.join(relative.parent().unwrap_or(Path::new("")));
    let file_name = relative
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    let entries = std::fs::read_dir(&folder).map_err(|e| file_error(&folder, e))?;
    let mut candidates: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f == file_name || f.ends_with(&format!("_{file_name}")))
        })
        .collect();
    candidates.sort();
    let path = match candidates.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(NabError::Corpus(format!(
                "no scores for {} in {}",
                series.name,
                folder.display()
            )));
        }
        many => {
            return Err(NabError::Corpus(format!(
                "several score files for {}: {}",
                series.name,
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let mut reader = csv::Reader::from_path(&path).map_err(|e| file_error(&path, e))?;
    let headers = reader.headers().map_err(|e| file_error(&path, e))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let score_column =
        column("anomaly_score").ok_or_else(|| file_error(&path, "no anomaly_score column"))?;
    let time_column = column("timestamp");
    let mut scores = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| file_error(&path, e))?;
        let line = i + 2;
        if let Some(time_column) = time_column {
            let text = record.get(time_column).unwrap_or_default().trim();
            let time = parse_time(text).ok_or_else(|| {
                file_error(
                    &path,
                    format!("line {line}: bad timestamp {:?}", excerpt(text)),
                )
            })?;
            if let Some(&expected) = series.timestamps_ms.get(i)
                && time != expected
            {
                return Err(file_error(
                    &path,
                    format!(
                        "line {line}: timestamp {:?} is not the data's row {} ({})",
                        excerpt(text),
                        i + 1,
                        super::score::format_timestamp(expected)
                    ),
                ));
            }
        }
        let cell = record.get(score_column).unwrap_or_default().trim();
        // A NaN would leave the threshold sweep with no order to follow.
        let score = cell
            .parse::<f64>()
            .ok()
            .filter(|s| (0.0..=1.0).contains(s))
            .ok_or_else(|| {
                file_error(
                    &path,
                    format!(
                        "line {line}: anomaly_score {:?} is not a number in [0, 1]",
                        excerpt(cell)
                    ),
                )
            })?;
        scores.push(score);
    }
    if scores.len() != series.timestamps_ms.len() {
        return Err(file_error(
            &path,
            format!(
                "{} scores for {} data rows",
                scores.len(),
                series.timestamps_ms.len()
            ),
        ));
    }
    Ok(scores)
}

/// NAB's probationary period: 15% of the rows, at most 750.
pub fn probationary_rows(rows: usize) -> usize {
    ((rows as f64 * 0.15).floor() as usize).min(750)
}

/// `2 σ(-5x) - 1`, and -1 from 3 window-widths past a window on.
fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * position).exp()) - 1.0
    }
}

/// One scorable row: its anomaly score, its reward if it were a detection,
/// and the window it lies in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SweepPoint {
    score: f64,
    reward: f64,
    window: Option<usize>,
}

/// Rewards of every scorable row of one series (NAB's `calcSweepScore`).
/// Window ids start at `first_window`.
fn sweep_points(
    series: &LabelledSeries,
    scores: &[f64],
    profile: &Profile,
    first_window: usize,
) -> Vec<SweepPoint> {
    let rows = scores.len();
    let probation = probationary_rows(rows);
    let max_tp = scaled_sigmoid(-1.0);
    let mut points = Vec::with_capacity(rows - probation.min(rows));
    let mut windows = series.windows.iter().enumerate().peekable();
    let mut current: Option<(usize, usize, f64)> = None; // (id, right, width)
    let mut previous: Option<(usize, f64)> = None; // (right, width)
    for (i, &score) in scores.iter().enumerate() {
        if let Some(&(id, &(left, right))) = windows.peek()
            && i == left
        {
            current = Some((first_window + id, right, (right - left + 1) as f64));
            windows.next();
        }
        let (reward, window) = match (current, previous) {
            (Some((id, right, width)), _) => {
                let position = -((right - i + 1) as f64) / width;
                (
                    scaled_sigmoid(position) * profile.tp_weight / max_tp,
                    Some(id),
                )
            }
            (None, Some((right, width))) => {
                let position = (i as f64 - right as f64).abs() / (width - 1.0);
                (scaled_sigmoid(position) * profile.fp_weight, None)
            }
            (None, None) => (-profile.fp_weight, None),
        };
        if i >= probation {
            points.push(SweepPoint {
                score,
                reward,
                window,
            });
        }
        if let Some((_, right, width)) = current
            && i == right
        {
            previous = Some((right, width));
            current = None;
        }
    }
    points
}

/// The best threshold over the pooled rows (NAB's `calcScoreByThreshold`):
/// rows sorted by descending score are detected one score level at a time;
/// a window is worth -fn_weight until detected, then its best (earliest)
/// detection's reward; every detection outside a window adds its (negative)
/// reward. Returns (score, threshold, detected windows, false positives).
fn best_threshold(
    mut points: Vec<SweepPoint>,
    windows: usize,
    profile: &Profile,
) -> (f64, f64, usize, usize) {
    points.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut window_value = vec![-profile.fn_weight; windows];
    let mut detected = vec![false; windows];
    let scorable_windows: std::collections::HashSet<usize> =
        points.iter().filter_map(|p| p.window).collect();
    let mut score = -profile.fn_weight * scorable_windows.len() as f64;
    let (mut detected_count, mut false_positives) = (0, 0);
    let mut best = (score, 1.1, 0, 0);
    let mut i = 0;
    while i < points.len() {
        let level = points[i].score;
        while i < points.len() && points[i].score == level {
            let point = points[i];
            match point.window {
                None => {
                    score += point.reward;
                    false_positives += 1;
                }
                Some(w) if point.reward > window_value[w] => {
                    score += point.reward - window_value[w];
                    window_value[w] = point.reward;
                    if !detected[w] {
                        detected[w] = true;
                        detected_count += 1;
                    }
                }
                Some(_) => {}
            }
            i += 1;
        }
        if score > best.0 {
            best = (score, level, detected_count, false_positives);
        }
    }
    best
}

/// Scores a corpus under one profile. `scores[i]` belongs to `corpus[i]`.
pub fn score_corpus(
    corpus: &[LabelledSeries],
    scores: &[Vec<f64>],
    profile: &Profile,
) -> ProfileScore {
    let mut points = Vec::new();
    let mut windows = 0;
    for (series, series_scores) in corpus.iter().zip(scores) {
        points.extend(sweep_points(series, series_scores, profile, windows));
        windows += series.windows.len();
    }
    // The null detector detects nothing: every window with a scorable row is missed.
    let null = -profile.fn_weight
        * points
            .iter()
            .filter_map(|p| p.window)
            .collect::<std::collections::HashSet<_>>()
            .len() as f64;
    let perfect = windows as f64 * profile.tp_weight;
    let (raw, threshold, detected_windows, false_positives) =
        best_threshold(points, windows, profile);
    ProfileScore {
        profile: *profile,
        normalized: 100.0 * (raw - null) / (perfect - null),
        raw,
        threshold,
        detected_windows,
        windows,
        false_positives,
    }
}

/// The settings `eval nab` uses unless given others (`examples/nab.toml`).
pub fn default_config() -> StreamConfig {
    toml::from_str(include_str!("../../examples/nab.toml")).expect("the shipped NAB config parses")
}

/// Scores every series of the corpus in online mode, `threads` at a time.
pub fn online_scores(
    corpus: &[LabelledSeries],
    config: &StreamConfig,
    threads: usize,
) -> Result<Vec<Vec<f64>>, ScoreError> {
    let models = Models::online(config)?;
    parallel_map(corpus, threads, |series| {
        score_series_online(series, config, &models)
    })
}

fn score_series_online(
    series: &LabelledSeries,
    config: &StreamConfig,
    models: &Models,
) -> Result<Vec<f64>, ScoreError> {
    let config = config.clone();
    let read = ReadOptions {
        time_order: TimeOrder::FileOrder,
        ..ReadOptions::default()
    };
    let scored = score_file(&series.path, Arc::new(config), models, read)?;
    Ok(scored
        .rows
        .iter()
        .map(|r| alert_score(&r.verdict))
        .collect())
}

/// What NAB is given for a row: the score of a raised flag, 0 otherwise.
/// The daemon publishes flags, so they are what the benchmark measures;
/// NAB's sweep then chooses how strong a flag must be to count.
pub fn alert_score(verdict: &Verdict) -> f64 {
    if verdict.flag { verdict.score } else { 0.0 }
}

/// Writes scores in NAB's results layout, `DIR/<category>/<detector>_<name>.csv`
/// with columns `timestamp,anomaly_score`, so NAB's own tools can read them.
pub fn write_scores(
    dir: &Path,
    detector: &str,
    corpus: &[LabelledSeries],
    scores: &[Vec<f64>],
) -> std::io::Result<()> {
    for (series, series_scores) in corpus.iter().zip(scores) {
        let relative = Path::new(&series.name);
        let folder = dir.join(relative.parent().unwrap_or(Path::new("")));
        std::fs::create_dir_all(&folder)?;
        let file_name = relative
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("series.csv");
        let mut out = std::io::BufWriter::new(std::fs::File::create(
            folder.join(format!("{detector}_{file_name}")),
        )?);
        writeln!(out, "timestamp,anomaly_score")?;
        for (&t, s) in series.timestamps_ms.iter().zip(series_scores) {
            writeln!(out, "{},{s}", format_timestamp(t))?;
        }
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(rows: usize, windows: Vec<(usize, usize)>) -> LabelledSeries {
        LabelledSeries {
            name: "t.csv".into(),
            path: PathBuf::new(),
            timestamps_ms: (0..rows as i64).collect(),
            windows,
        }
    }

    #[test]
    fn categories_select_series_by_their_folder() {
        let named = |name: &str| LabelledSeries {
            name: name.into(),
            ..series(10, Vec::new())
        };
        let corpus = vec![named("a/x.csv"), named("b/y.csv"), named("c/z.csv")];
        let names =
            |kept: Vec<LabelledSeries>| kept.into_iter().map(|s| s.name).collect::<Vec<_>>();
        let both = in_categories(corpus.clone(), &["a".into(), "c".into()]).unwrap();
        assert_eq!(names(both), ["a/x.csv", "c/z.csv"]);
        assert_eq!(names(in_categories(corpus.clone(), &[]).unwrap()).len(), 3);
        let error = in_categories(corpus, &["d".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "no series in category \"d\"; the categories are a, b, c"
        );
    }

    /// A case worked by hand: 100 rows (probation 15), one window over rows
    /// 40..=59 (width 20).
    #[test]
    fn hand_computed_case() {
        let standard = PROFILES[0];
        let corpus = [series(100, vec![(40, 59)])];
        let max_tp = 2.0 / (1.0 + (-5.0f64).exp()) - 1.0;

        // A detection at the window's first row earns the full reward: 1.
        let mut scores = vec![0.0; 100];
        scores[40] = 1.0;
        let result = score_corpus(&corpus, &[scores.clone()], &standard);
        assert!((result.raw - 1.0).abs() < 1e-12, "{result:?}");
        // null = -1, perfect = 1 -> normalised 100
        assert!((result.normalized - 100.0).abs() < 1e-9);

        // Detecting at row 50 (position -(59-50+1)/20 = -0.5) earns
        // (2 σ(2.5) - 1) / max_tp; a false positive before any window
        // costs 0.11; one 10 rows after the window (position 10/19) costs
        // 0.11 (1 - 2 σ(-50/19)) = 0.095.
        scores[40] = 0.0;
        scores[50] = 0.9;
        scores[20] = 0.8;
        scores[69] = 0.8;
        let tp = (2.0 / (1.0 + (-2.5f64).exp()) - 1.0) / max_tp;
        let late_fp = 0.11 * (2.0 / (1.0 + (5.0 * 10.0 / 19.0f64).exp()) - 1.0);
        let result = score_corpus(&corpus, &[scores.clone()], &standard);
        // At threshold 0.9 only the TP counts; at 0.8 the false positives
        // come in and lower the total, so the sweep keeps 0.9.
        assert!((result.raw - tp).abs() < 1e-12, "{result:?}");
        assert_eq!((result.threshold, result.false_positives), (0.9, 0));
        // With the false positives scored above the detection, the best
        // threshold takes all three.
        scores[20] = 0.95;
        scores[69] = 0.95;
        let result = score_corpus(&corpus, &[scores], &standard);
        assert!(
            (result.raw - (tp - 0.11 + late_fp)).abs() < 1e-12,
            "{result:?}"
        );
        assert_eq!((result.threshold, result.false_positives), (0.9, 2));

        // A detection in the probationary period is never scored.
        let mut early = vec![0.0; 100];
        early[10] = 1.0;
        let result = score_corpus(&corpus, &[early], &standard);
        assert_eq!((result.raw, result.false_positives), (-1.0, 0));

        // Only the earliest detection in a window counts; later ones add nothing.
        let mut repeated = vec![0.0; 100];
        repeated[45] = 0.7;
        repeated[46..60].fill(0.9);
        let result = score_corpus(&corpus, &[repeated], &standard);
        let earliest = (2.0 / (1.0 + (-5.0f64 * 15.0 / 20.0).exp()) - 1.0) / max_tp;
        assert!((result.raw - earliest).abs() < 1e-12, "{result:?}");
        assert_eq!(result.threshold, 0.7);
    }

    #[test]
    fn shipped_config_is_valid() {
        default_config().validate().unwrap();
    }

    #[test]
    fn low_fn_profile_doubles_the_miss() {
        let corpus = [series(100, vec![(40, 59)])];
        let result = score_corpus(&corpus, &[vec![0.0; 100]], &PROFILES[2]);
        assert_eq!((result.raw, result.normalized), (-2.0, 0.0));
    }
}
