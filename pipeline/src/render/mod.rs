//! The render stage: result tables → per-assignment context → report pages, figures and index.

mod a1;
mod a7a;
mod a7b;
mod context;
mod playground;
mod shift;
mod tp;

pub use context::{write_figures, Figure, FigureFile};

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nnlab_report::{IndexEntry, Page, Renderer, SiteIndex};
use serde_json::json;

use crate::catalogue::Catalogue;
use crate::key::{AnswerKey, KEY_FILE};
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

type PageBuilder = fn(&RenderInput<'_>) -> Result<BuiltPage>;

/// Every assignment's report page: its builder, and `templates/<id>.md.hbs`. Adding an assignment
/// means a catalogue file, a template and a page module registered here.
const PAGES: [(&str, PageBuilder); 4] = [("a1", a1::page), ("a7a", a7a::page), ("a7b", a7b::page), ("tp", tp::page)];

/// Fails, naming it, on an assignment of the catalogue that has no page builder or no template:
/// a report must never silently lack a page.
pub fn check_pages(catalogue: &Catalogue, templates: &Path) -> Result<()> {
    for assignment in &catalogue.assignments {
        if !PAGES.iter().any(|(id, _)| *id == assignment.id) {
            bail!(
                "assignment {} is in the catalogue but has no report page (add pipeline/src/render/{}.rs and register it in render::PAGES)",
                assignment.id,
                assignment.id
            );
        }
        let template = templates.join(format!("{}.md.hbs", assignment.id));
        if !template.is_file() {
            bail!("assignment {} has no report template {}", assignment.id, template.display());
        }
    }
    Ok(())
}

/// Renders every assignment of the run, the run page, the index and the answer key ([`KEY_FILE`])
/// into `out_dir`.
pub fn render_run(input: &RenderInput<'_>, templates: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(input.out_dir).with_context(|| format!("cannot create {}", input.out_dir.display()))?;
    let renderer = Renderer::new(templates)?;
    let profile = input.manifest.profile.clone();
    let generated_at = input.manifest.finished_at.clone().unwrap_or_else(crate::manifest::utc_now);
    let mut entries = Vec::new();
    let mut written = Vec::new();
    let mut answers = Vec::new();

    for (page, figures) in assignment_pages(input, templates)? {
        context::write_figures(input.out_dir, &figures)?;
        renderer.render_page(&page, input.out_dir)?;
        answers.push((page.name.clone(), renderer.take_answers()));
        entries.push(IndexEntry { title: page.title, href: format!("{}.html", page.name), summary: page_summary(&page.context) });
        written.push(input.out_dir.join(format!("{}.html", page.name)));
    }

    let run_page = Page {
        name: "run".into(),
        title: "Run manifest".into(),
        template: "run".into(),
        context: {
            let (training_seconds, training_jobs) = input.tables.total("wall_seconds")?;
            json!({ "manifest": input.manifest, "training_seconds": training_seconds, "training_jobs": training_jobs })
        },
        profile: profile.clone(),
        generated_at: generated_at.clone(),
    };
    renderer.render_page(&run_page, input.out_dir)?;
    let key = AnswerKey::new(input.manifest, &answers)?;
    nnlab_report::write_atomic(&input.out_dir.join(KEY_FILE), key.to_toml()?.as_bytes())?;
    let index =
        SiteIndex { title: "nnlab reports".into(), profile, generated_at, entries, manifest_href: Some("run.html".into()) };
    renderer.render_index(&index, input.out_dir)?;
    written.push(input.out_dir.join("index.html"));
    Ok(written)
}

/// The answer key of the run: its pages rendered in memory (nothing is written), their answers
/// collected.
pub fn answer_key(input: &RenderInput<'_>, templates: &Path) -> Result<AnswerKey> {
    let renderer = Renderer::new(templates)?;
    let mut answers = Vec::new();
    for (page, _) in assignment_pages(input, templates)? {
        renderer.render_markdown(&page.template, &page.context)?;
        answers.push((page.name.clone(), renderer.take_answers()));
    }
    AnswerKey::new(input.manifest, &answers)
}

/// Every assignment page of the run, built but not yet rendered, with the figures it links to.
fn assignment_pages(input: &RenderInput<'_>, templates: &Path) -> Result<Vec<(Page, Vec<context::FigureFile>)>> {
    check_pages(input.catalogue, templates)?;
    let profile = &input.manifest.profile;
    let generated_at = input.manifest.finished_at.clone().unwrap_or_else(crate::manifest::utc_now);
    let mut pages = Vec::new();
    for assignment in &input.manifest.assignments {
        let Some((_, build)) = PAGES.iter().find(|(id, _)| id == assignment) else {
            bail!("assignment {assignment} of the run has no report page");
        };
        let built = build(input).with_context(|| format!("report {assignment}"))?;
        let mut context = built.context;
        context["profile"] = json!({ "name": profile, "description": input.manifest.profile_description });
        let page = Page {
            name: assignment.clone(),
            title: built.title,
            template: assignment.clone(),
            context,
            profile: profile.clone(),
            generated_at: generated_at.clone(),
        };
        pages.push((page, built.figures));
    }
    Ok(pages)
}

fn page_summary(context: &serde_json::Value) -> String {
    context["summary"].as_str().unwrap_or_default().to_string()
}

/// A report page's title, context and the figures it links to, as built by an assignment's builder.
pub struct BuiltPage {
    pub title: String,
    pub context: serde_json::Value,
    pub figures: Vec<context::FigureFile>,
}
