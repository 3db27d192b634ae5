//! The render stage: result tables → per-assignment context → report pages, figures and index.

mod a1;
mod context;
mod tp;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nnlab_report::{IndexEntry, Page, Renderer, SiteIndex};
use serde_json::json;

use crate::catalogue::Catalogue;
use crate::manifest::RunManifest;
use crate::separation::SeparationTables;
use crate::tables::Tables;

/// Everything a report builder may read.
pub struct RenderInput<'a> {
    pub catalogue: &'a Catalogue,
    pub tables: &'a Tables,
    /// The analysis stage's tables, if the run had one.
    pub separation: Option<&'a SeparationTables>,
    pub manifest: &'a RunManifest,
    pub run_dir: &'a Path,
    pub out_dir: &'a Path,
}

/// The templates shipped with the source tree.
pub fn default_templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

/// Renders every assignment of the run that has a report, the run page and the index into `out_dir`.
pub fn render_run(input: &RenderInput<'_>, templates: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(input.out_dir).with_context(|| format!("cannot create {}", input.out_dir.display()))?;
    let renderer = Renderer::new(templates)?;
    let profile = input.manifest.profile.clone();
    let generated_at = input.manifest.finished_at.clone().unwrap_or_else(crate::manifest::utc_now);
    let mut entries = Vec::new();
    let mut written = Vec::new();

    for assignment in &input.manifest.assignments {
        let page = match assignment.as_str() {
            "a1" => a1::page(input)?,
            "tp" => tp::page(input)?,
            _ => continue,
        };
        let mut context = page.context;
        context["profile"] = json!({ "name": profile, "description": input.manifest.profile_description });
        let page = Page {
            name: assignment.clone(),
            title: page.title.clone(),
            template: assignment.clone(),
            context,
            profile: profile.clone(),
            generated_at: generated_at.clone(),
        };
        renderer.render_page(&page, input.out_dir)?;
        entries.push(IndexEntry { title: page.title, href: format!("{assignment}.html"), summary: page_summary(&page.context) });
        written.push(input.out_dir.join(format!("{assignment}.html")));
    }

    let run_page = Page {
        name: "run".into(),
        title: "Run manifest".into(),
        template: "run".into(),
        context: json!({ "manifest": input.manifest }),
        profile: profile.clone(),
        generated_at: generated_at.clone(),
    };
    renderer.render_page(&run_page, input.out_dir)?;
    let index =
        SiteIndex { title: "nnlab reports".into(), profile, generated_at, entries, manifest_href: Some("run.html".into()) };
    renderer.render_index(&index, input.out_dir)?;
    written.push(input.out_dir.join("index.html"));
    Ok(written)
}

fn page_summary(context: &serde_json::Value) -> String {
    context["summary"].as_str().unwrap_or_default().to_string()
}

/// A report page's title and context, as built by an assignment's builder.
pub struct BuiltPage {
    pub title: String,
    pub context: serde_json::Value,
}
