//! Profiles scale the catalogue: `full` runs the assignments' own settings, `quick` answers the same
//! questions in minutes, `smoke` in seconds for the tests.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Replicates per experiment unless the experiment asks for more.
    pub replicates: usize,
    /// Upper bound on replicates, whatever the experiment asks.
    #[serde(default)]
    pub max_replicates: Option<usize>,
    #[serde(default)]
    pub max_epochs: Option<usize>,
    /// Train on the first N training samples (the validation split is then taken from those N).
    #[serde(default)]
    pub train_samples: Option<usize>,
    /// Evaluate on the first N test samples.
    #[serde(default)]
    pub test_samples: Option<usize>,
    /// How many of the first test images the separability analysis projects (all if absent).
    #[serde(default)]
    pub analysis_points: Option<usize>,
    /// Each sweep axis keeps at most this many of its values, evenly spaced, both ends kept (all if absent).
    #[serde(default)]
    pub max_axis_values: Option<usize>,
    /// Caps on the Playground study: epochs of every training, and the size of the networks its
    /// search may try (the catalogue's values if absent).
    #[serde(default)]
    pub playground_epochs: Option<usize>,
    #[serde(default)]
    pub playground_max_parameters: Option<usize>,
}

impl Profile {
    pub fn default_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline/profiles")
    }

    /// Loads `<dir>/<name>.toml`.
    pub fn load(dir: &Path, name: &str) -> Result<Self> {
        let file = dir.join(format!("{name}.toml"));
        if !file.exists() {
            let known = known_profiles(dir).join(", ");
            bail!("unknown profile `{name}`: no {} (known profiles: {known})", file.display());
        }
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let profile: Profile = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim().replace('\n', " ")))?;
        if profile.name != name {
            bail!("{}: name is `{}` but the file is named `{name}`", file.display(), profile.name);
        }
        if profile.replicates == 0
            || profile.max_replicates == Some(0)
            || profile.max_epochs == Some(0)
            || profile.max_axis_values.is_some_and(|m| m < 2)
            || profile.playground_epochs == Some(0)
        {
            bail!("{}: replicates, max_replicates and max_epochs must be at least 1, max_axis_values at least 2, playground_epochs at least 1", file.display());
        }
        if let (Some(points), Some(test)) = (profile.analysis_points, profile.test_samples) {
            if points > test {
                bail!("{}: analysis_points ({points}) cannot exceed test_samples ({test})", file.display());
            }
        }
        if profile.analysis_points.is_some_and(|p| p < 50) {
            bail!(
                "{}: analysis_points must be at least 50 (t-SNE with perplexity 30 needs > 90 points to be meaningful)",
                file.display()
            );
        }
        Ok(profile)
    }

    pub fn replicates_for(&self, asked: Option<usize>) -> usize {
        let n = asked.unwrap_or(self.replicates).max(self.replicates);
        self.max_replicates.map_or(n, |m| n.min(m))
    }

    pub fn epochs_for(&self, asked: usize) -> usize {
        self.max_epochs.map_or(asked, |m| asked.min(m))
    }
}

fn known_profiles(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_load_and_scale() {
        let smoke = Profile::load(&Profile::default_dir(), "smoke").unwrap();
        assert_eq!(smoke.replicates_for(Some(5)), 2);
        assert_eq!(smoke.epochs_for(12), 2);
        let full = Profile::load(&Profile::default_dir(), "full").unwrap();
        assert_eq!(full.replicates_for(None), 3);
        assert_eq!(full.replicates_for(Some(5)), 5);
        assert_eq!(full.epochs_for(12), 12);
        Profile::load(&Profile::default_dir(), "quick").unwrap();
    }

    #[test]
    fn unknown_profile_lists_the_known_ones() {
        let err = Profile::load(&Profile::default_dir(), "fast").unwrap_err().to_string();
        assert!(err.contains("unknown profile `fast`") && err.contains("smoke"), "{err}");
    }
}
