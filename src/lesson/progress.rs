//! Progress kept per lesson, in `$XDG_STATE_HOME/protolab/lessons.toml` (else
//! `~/.local/state/protolab/lessons.toml`): tries, the last and the best score, when.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One lesson's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Times the lesson was played to its end.
    pub tries: u32,
    /// The last try's right answers, of how many graded.
    pub last: (u32, u32),
    /// The best try, by the share of right answers.
    pub best: (u32, u32),
    /// The last try's length, in seconds.
    pub seconds: u64,
    /// When the last try ended, in seconds since 1970.
    pub when: u64,
}

/// Every lesson's record, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    #[serde(default)]
    pub lesson: BTreeMap<String, Record>,
}

/// Where the records are kept.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))?;
    Some(base.join("protolab").join("lessons.toml"))
}

impl Progress {
    /// The records kept; none (or a file that does not read) is a fresh start.
    pub fn load() -> Progress {
        path().and_then(|p| std::fs::read_to_string(p).ok()).and_then(|t| toml::from_str(&t).ok()).unwrap_or_default()
    }

    /// Adds one finished try of `name` and saves; `Err` is the one line to say (the lesson
    /// itself went fine).
    pub fn add(name: &str, right: usize, total: usize, took: Duration) -> Result<Record, String> {
        let mut progress = Progress::load();
        let record = progress.lesson.entry(name.to_string()).or_default();
        let score = (right as u32, total as u32);
        record.tries += 1;
        record.last = score;
        if record.tries == 1 || share(score) > share(record.best) {
            record.best = score;
        }
        record.seconds = took.as_secs();
        record.when = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let record = record.clone();
        progress.save()?;
        Ok(record)
    }

    /// Writes the records (a whole new file, renamed over the old one).
    fn save(&self) -> Result<(), String> {
        let path = path().ok_or("no HOME or XDG_STATE_HOME to keep lesson progress in")?;
        let text = toml::to_string(self).map_err(|e| e.to_string())?;
        let fail = |e: std::io::Error| format!("keeping lesson progress in {}: {e}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = path.with_extension("toml.new");
        std::fs::write(&tmp, text).map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(fail)
    }
}

fn share((right, total): (u32, u32)) -> f64 {
    if total == 0 { 1.0 } else { f64::from(right) / f64::from(total) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back() {
        let mut p = Progress::default();
        p.lesson.insert("dhcp".into(), Record { tries: 2, last: (3, 5), best: (5, 5), seconds: 90, when: 1 });
        let text = toml::to_string(&p).unwrap();
        assert_eq!(toml::from_str::<Progress>(&text).unwrap(), p);
    }

    #[test]
    fn the_best_is_by_share() {
        assert!(share((4, 5)) > share((3, 5)));
        assert_eq!(share((0, 0)), 1.0, "a lesson with nothing graded is not failed");
    }
}
