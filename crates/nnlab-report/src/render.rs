//! The page pipeline: handlebars template → Markdown → HTML wrapped in the layout, written
//! beside the stylesheet.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use handlebars::{Handlebars, RenderError, RenderErrorReason, TemplateError};
use serde::Serialize;
use serde_json::Value;

use crate::atomic::write_atomic;
use crate::error::{ReportError, Result};
use crate::helpers;
use crate::markdown::markdown_to_html;

/// Suffix of the page templates registered from the top of the templates directory.
const PAGE_TEMPLATE_SUFFIX: &str = ".md.hbs";
/// Directory of partials, below the templates directory.
const PARTIALS_DIR: &str = "partials";
/// The HTML layout every page body is wrapped in, and its template name.
const LAYOUT_FILE: &str = "layout.html.hbs";
const LAYOUT_TEMPLATE: &str = "layout";
/// The index page: its template and output file stem.
const INDEX_PAGE: &str = "index";
/// The stylesheet copied beside every page.
const STYLESHEET_FILE: &str = "style.css";

/// One report page to render.
#[derive(Debug, Clone)]
pub struct Page {
    /// Output file stem: the page is written as `<name>.md` and `<name>.html`.
    pub name: String,
    /// Shown in the header and the browser tab.
    pub title: String,
    /// Template name, e.g. `a1` for `templates/a1.md.hbs`.
    pub template: String,
    /// Everything the template prints.
    pub context: Value,
    /// The profile the numbers were measured under, stated on every page.
    pub profile: String,
    /// When the run was rendered, as the caller wants it shown.
    pub generated_at: String,
}

/// One line of the index page.
#[derive(Debug, Clone, Serialize)]
pub struct IndexEntry {
    pub title: String,
    /// Link relative to the output directory, e.g. `a1.html`.
    pub href: String,
    pub summary: String,
}

/// The index page of a rendered run.
#[derive(Debug, Clone, Serialize)]
pub struct SiteIndex {
    pub title: String,
    pub profile: String,
    pub generated_at: String,
    pub entries: Vec<IndexEntry>,
    /// Link to the rendered run manifest, when there is one.
    pub manifest_href: Option<String>,
}

/// What the layout template sees.
#[derive(Serialize)]
struct LayoutContext<'a> {
    title: &'a str,
    body: &'a str,
    profile: &'a str,
    generated_at: &'a str,
    is_index: bool,
}

/// Renders pages from one templates directory.
///
/// Strict mode is on: a template that names a field the context lacks is an error naming the
/// template, line and field, never an empty spot where a number should be.
#[derive(Debug)]
pub struct Renderer {
    registry: Handlebars<'static>,
    templates_dir: PathBuf,
    stylesheet: String,
    answers: helpers::AnswerLog,
}

impl Renderer {
    /// Loads every `*.md.hbs` in `templates_dir` as a page template, every file in
    /// `templates_dir/partials/` as a partial, `layout.html.hbs` and `style.css`.
    /// A template's name is its file name up to the first dot (`a1.md.hbs` → `a1`).
    pub fn new(templates_dir: &Path) -> Result<Renderer> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(helpers::escape_html);
        let answers = helpers::AnswerLog::default();
        helpers::register(&mut registry, answers.clone());

        let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in files_in(templates_dir)? {
            if file_name(&path).ends_with(PAGE_TEMPLATE_SUFFIX) {
                insert_source(&mut sources, template_name(&path), path)?;
            }
        }
        let partials_dir = templates_dir.join(PARTIALS_DIR);
        if partials_dir.is_dir() {
            for path in files_in(&partials_dir)? {
                insert_source(&mut sources, template_name(&path), path)?;
            }
        }
        insert_source(&mut sources, LAYOUT_TEMPLATE.to_string(), templates_dir.join(LAYOUT_FILE))?;

        for (name, path) in &sources {
            let text = read(path)?;
            registry.register_template_string(name, text).map_err(|e| template_error(path, &e))?;
        }
        let stylesheet = read(&templates_dir.join(STYLESHEET_FILE))?;
        Ok(Renderer { registry, templates_dir: templates_dir.to_path_buf(), stylesheet, answers })
    }

    /// The answers (`{{answer …}}`) printed since the last call, in print order.
    pub fn take_answers(&self) -> Vec<helpers::RecordedAnswer> {
        self.answers.take()
    }

    /// Renders template `template` with `context` to Markdown.
    pub fn render_markdown(&self, template: &str, context: &Value) -> Result<String> {
        if template == LAYOUT_TEMPLATE || !self.registry.has_template(template) {
            return Err(ReportError::UnknownTemplate { name: template.to_string(), dir: self.templates_dir.clone() });
        }
        self.render_template(template, context)
    }

    /// Writes `<out_dir>/<name>.md` and `<out_dir>/<name>.html` (the Markdown as HTML inside the
    /// layout) and `<out_dir>/style.css`, creating `out_dir` if needed. Everything is rendered
    /// before anything is written, and each file is replaced atomically.
    pub fn render_page(&self, page: &Page, out_dir: &Path) -> Result<()> {
        if !is_file_stem(&page.name) {
            return Err(ReportError::PageName(page.name.clone()));
        }
        let markdown = self.render_markdown(&page.template, &page.context)?;
        let body = markdown_to_html(&markdown);
        let layout = LayoutContext {
            title: &page.title,
            body: &body,
            profile: &page.profile,
            generated_at: &page.generated_at,
            is_index: page.name == INDEX_PAGE,
        };
        let html = self.render_template(LAYOUT_TEMPLATE, &layout)?;
        // The layout states the profile on every HTML page; the Markdown file stands alone,
        // so it carries the same statement as a closing line.
        let markdown =
            format!("{}\n\n---\n\n*nnlab · profile: {} · generated {}*\n", markdown.trim_end(), page.profile, page.generated_at);

        fs::create_dir_all(out_dir).map_err(|source| ReportError::Write { path: out_dir.to_path_buf(), source })?;
        write(&out_dir.join(format!("{}.md", page.name)), markdown.as_bytes())?;
        write(&out_dir.join(format!("{}.html", page.name)), html.as_bytes())?;
        write(&out_dir.join(STYLESHEET_FILE), self.stylesheet.as_bytes())
    }

    /// Writes the index page (`index.md`, `index.html`) from template `index.md.hbs`, whose
    /// context is `index` itself: `title`, `profile`, `generated_at`, `entries` (each `title`,
    /// `href`, `summary`) and `manifest_href` (null when absent).
    pub fn render_index(&self, index: &SiteIndex, out_dir: &Path) -> Result<()> {
        let context = serde_json::to_value(index)
            .map_err(|e| ReportError::Render { template: INDEX_PAGE.to_string(), message: e.to_string() })?;
        let page = Page {
            name: INDEX_PAGE.to_string(),
            title: index.title.clone(),
            template: INDEX_PAGE.to_string(),
            context,
            profile: index.profile.clone(),
            generated_at: index.generated_at.clone(),
        };
        self.render_page(&page, out_dir)
    }

    fn render_template<T: Serialize>(&self, template: &str, context: &T) -> Result<String> {
        self.registry
            .render(template, context)
            .map_err(|e| ReportError::Render { template: template.to_string(), message: describe_render_error(&e) })
    }
}

/// Records `name → path`, refusing a second file under the same name.
fn insert_source(sources: &mut BTreeMap<String, PathBuf>, name: String, path: PathBuf) -> Result<()> {
    if let Some(first) = sources.get(&name) {
        return Err(ReportError::DuplicateTemplate { name, first: first.clone(), second: path });
    }
    sources.insert(name, path);
    Ok(())
}

/// The regular, non-hidden files directly in `dir`, sorted so that registration (and any error
/// it reports) does not depend on directory order.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let read_error = |source| ReportError::Read { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        // Hidden files are editor swap files and the like, never templates.
        if path.is_file() && !file_name(&path).starts_with('.') {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `a1.md.hbs` → `a1`: the file name up to its first dot.
fn template_name(path: &Path) -> String {
    let name = file_name(path);
    match name.split_once('.') {
        Some((stem, _)) => stem.to_string(),
        None => name,
    }
}

fn is_file_stem(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\'])
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| ReportError::Read { path: path.to_path_buf(), source })
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes).map_err(|source| ReportError::Write { path: path.to_path_buf(), source })
}

/// One line for a template parse error (handlebars' own display spans several lines).
fn template_error(path: &Path, error: &TemplateError) -> ReportError {
    let message = match error.pos() {
        Some((line, column)) => format!("line {line}, col {column}: {}", error.reason()),
        None => error.reason().to_string(),
    };
    ReportError::Template { path: path.to_path_buf(), message }
}

/// One line naming where rendering stopped (which may be a partial) and why.
fn describe_render_error(error: &RenderError) -> String {
    let reason = match error.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => {
            format!("missing field `{path}` in the context")
        }
        other => other.to_string(),
    };
    match (&error.template_name, error.line_no, error.column_no) {
        (Some(name), Some(line), Some(column)) => {
            format!("at {name}:{line}:{column}: {reason}")
        }
        (None, Some(line), Some(column)) => format!("at line {line}, col {column}: {reason}"),
        _ => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A templates directory with a minimal layout, a page template using a partial, and a
    /// stylesheet.
    fn templates_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = [
            (
                LAYOUT_FILE,
                "<html><title>{{title}}</title><span class=\"profile\">profile: {{profile}}</span>\
                 {{#unless is_index}}<a href=\"index.html\">index</a>{{/unless}}\
                 <main>{{{body}}}</main><footer>{{generated_at}}</footer></html>",
            ),
            (
                "page.md.hbs",
                "# Results\n\n{{> model_row model}}\n\nTest accuracy: \
                 {{answer \"t.q1.acc\" model.acc pct=2}}.\n",
            ),
            ("partials/model_row.md.hbs", "| model | params |\n|---|---:|\n| {{name}} | {{params}} |"),
            (STYLESHEET_FILE, "body { margin: 0; }\n"),
            (
                "index.md.hbs",
                "# {{title}}\n\n{{#each entries}}- [{{title}}]({{href}}): {{summary}}\n{{/each}}\
                 {{#if manifest_href}}\n[manifest]({{manifest_href}})\n{{/if}}",
            ),
        ];
        fs::create_dir(dir.path().join(PARTIALS_DIR)).expect("partials dir");
        for (name, text) in files {
            fs::write(dir.path().join(name), text).expect("write template");
        }
        dir
    }

    fn context() -> Value {
        json!({"model": {"name": "dense_relu", "params": 203530,
                         "acc": {"mean": 0.9789, "std": 0.0011, "n": 3}}})
    }

    fn page(context: Value) -> Page {
        Page {
            name: "t".to_string(),
            title: "Test report".to_string(),
            template: "page".to_string(),
            context,
            profile: "smoke".to_string(),
            generated_at: "2025-01-01 12:00 UTC".to_string(),
        }
    }

    #[test]
    fn renders_markdown_with_partials_and_helpers() {
        let templates = templates_dir();
        let renderer = Renderer::new(templates.path()).expect("renderer");
        let markdown = renderer.render_markdown("page", &context()).expect("render");
        assert!(markdown.contains("| dense_relu | 203530 |"), "{markdown}");
        assert!(markdown.contains("97.89 ± 0.11 % (n = 3)"), "{markdown}");
    }

    #[test]
    fn missing_field_is_an_error_naming_template_and_field() {
        let templates = templates_dir();
        let renderer = Renderer::new(templates.path()).expect("renderer");
        let mut context = context();
        context["model"].as_object_mut().expect("model object").remove("params");
        let error = renderer.render_markdown("page", &context).expect_err("missing field").to_string();
        assert!(error.contains("\"page\""), "{error}");
        assert!(error.contains("model_row"), "{error}");
        assert!(error.contains("`params`"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn unknown_template_is_an_error() {
        let templates = templates_dir();
        let renderer = Renderer::new(templates.path()).expect("renderer");
        for name in ["absent", LAYOUT_TEMPLATE] {
            let error = renderer.render_markdown(name, &context()).expect_err(name);
            assert!(matches!(error, ReportError::UnknownTemplate { .. }), "{error}");
        }
    }

    #[test]
    fn render_page_writes_markdown_html_and_stylesheet() {
        let templates = templates_dir();
        let renderer = Renderer::new(templates.path()).expect("renderer");
        let out = tempfile::tempdir().expect("out dir");
        let out_dir = out.path().join("reports");
        renderer.render_page(&page(context()), &out_dir).expect("render page");

        let markdown = fs::read_to_string(out_dir.join("t.md")).expect("markdown");
        assert!(markdown.starts_with("# Results"), "{markdown}");
        assert!(markdown.contains("profile: smoke"), "{markdown}");
        let html = fs::read_to_string(out_dir.join("t.html")).expect("html");
        assert!(html.contains("<title>Test report</title>"), "{html}");
        assert!(html.contains("profile: smoke"), "{html}");
        assert!(html.contains("<a href=\"index.html\">"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains(r#"<h1 id="results">Results</h1>"#), "{html}");
        assert!(html.contains(r#"data-answer="t.q1.acc">97.89 ± 0.11 % (n = 3)</span>"#), "{html}");
        assert!(out_dir.join(STYLESHEET_FILE).is_file());
    }

    #[test]
    fn failed_render_writes_nothing() {
        let templates = templates_dir();
        let renderer = Renderer::new(templates.path()).expect("renderer");
        let out = tempfile::tempdir().expect("out dir");
        renderer.render_page(&page(json!({})), out.path()).expect_err("empty context");
        assert_eq!(fs::read_dir(out.path()).expect("list").count(), 0);
    }

    #[test]
    fn page_names_cannot_leave_the_output_directory() {
        let templates = templates_dir();
        let renderer = Renderer::new(templates.path()).expect("renderer");
        let out = tempfile::tempdir().expect("out dir");
        let mut page = page(context());
        page.name = "../escape".to_string();
        let error = renderer.render_page(&page, out.path()).expect_err("bad name");
        assert!(matches!(error, ReportError::PageName(_)), "{error}");
    }

    #[test]
    fn render_index_lists_entries_and_the_manifest() {
        let templates = templates_dir();
        let renderer = Renderer::new(templates.path()).expect("renderer");
        let out = tempfile::tempdir().expect("out dir");
        let mut index = SiteIndex {
            title: "Reports".to_string(),
            profile: "quick".to_string(),
            generated_at: "now".to_string(),
            entries: vec![IndexEntry {
                title: "a1".to_string(),
                href: "a1.html".to_string(),
                summary: "MNIST & CIFAR-10".to_string(),
            }],
            manifest_href: None,
        };
        renderer.render_index(&index, out.path()).expect("index");
        let html = fs::read_to_string(out.path().join("index.html")).expect("index html");
        assert!(html.contains(r#"<a href="a1.html">a1</a>: MNIST &amp; CIFAR-10"#), "{html}");
        assert!(!html.contains("manifest"), "{html}");
        assert!(!html.contains("<a href=\"index.html\">"), "{html}");

        index.manifest_href = Some("manifest.html".to_string());
        renderer.render_index(&index, out.path()).expect("index");
        let html = fs::read_to_string(out.path().join("index.html")).expect("index html");
        assert!(html.contains(r#"<a href="manifest.html">manifest</a>"#), "{html}");
    }

    #[test]
    fn a_bad_template_is_a_one_line_error_naming_the_file() {
        let templates = templates_dir();
        fs::write(templates.path().join("broken.md.hbs"), "{{#if x}}never closed").expect("write");
        let error = Renderer::new(templates.path()).expect_err("parse error").to_string();
        assert!(error.contains("broken.md.hbs"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn a_partial_may_not_shadow_a_page_template() {
        let templates = templates_dir();
        fs::write(templates.path().join("partials/page.md.hbs"), "x").expect("write");
        let error = Renderer::new(templates.path()).expect_err("duplicate");
        assert!(matches!(error, ReportError::DuplicateTemplate { .. }), "{error}");
    }

    #[test]
    fn missing_layout_or_stylesheet_is_an_error() {
        for file in [LAYOUT_FILE, STYLESHEET_FILE] {
            let templates = templates_dir();
            fs::remove_file(templates.path().join(file)).expect("remove");
            let error = Renderer::new(templates.path()).expect_err(file).to_string();
            assert!(error.contains(file), "{error}");
        }
    }

    /// The project's own layout, index and stylesheet, in a temp copy beside a stand-in
    /// page template (the real page templates are checked by the pipeline's tests).
    #[test]
    fn project_templates_parse_and_render() {
        let project_templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        let templates = tempfile::tempdir().expect("temp dir");
        for file in [LAYOUT_FILE, STYLESHEET_FILE, "index.md.hbs"] {
            fs::copy(project_templates.join(file), templates.path().join(file)).unwrap_or_else(|e| panic!("copy {file}: {e}"));
        }
        fs::write(templates.path().join("sample.md.hbs"), "# Sample\n\nAccuracy {{answer \"s.q1.acc\" acc pct=2}}.\n")
            .expect("write sample");
        let renderer = Renderer::new(templates.path()).expect("project templates");

        let out = tempfile::tempdir().expect("out dir");
        let sample = Page {
            name: "sample".to_string(),
            title: "Sample report".to_string(),
            template: "sample".to_string(),
            context: json!({"acc": {"mean": 0.9231, "std": null, "n": 1}}),
            profile: "smoke".to_string(),
            generated_at: "2025-01-01 12:00 UTC".to_string(),
        };
        renderer.render_page(&sample, out.path()).expect("sample page");
        let html = fs::read_to_string(out.path().join("sample.html")).expect("sample html");
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("<meta charset=\"utf-8\">"), "{html}");
        assert!(html.contains("style.css"), "{html}");
        assert!(html.contains("profile: smoke"), "{html}");
        assert!(html.contains("Sample report"), "{html}");
        assert!(html.contains("2025-01-01 12:00 UTC"), "{html}");
        assert!(html.contains("href=\"index.html\""), "{html}");
        assert!(html.contains(r#"data-answer="s.q1.acc">92.31 % (n = 1)</span>"#), "{html}");

        let index = SiteIndex {
            title: "nnlab reports".to_string(),
            profile: "smoke".to_string(),
            generated_at: "2025-01-01 12:00 UTC".to_string(),
            entries: vec![IndexEntry {
                title: "Sample report".to_string(),
                href: "sample.html".to_string(),
                summary: "One sample.".to_string(),
            }],
            manifest_href: Some("manifest.html".to_string()),
        };
        renderer.render_index(&index, out.path()).expect("index page");
        let html = fs::read_to_string(out.path().join("index.html")).expect("index html");
        assert!(html.contains("href=\"sample.html\""), "{html}");
        assert!(html.contains("One sample."), "{html}");
        assert!(html.contains("href=\"manifest.html\""), "{html}");
        assert!(html.contains("profile: smoke"), "{html}");
    }
}
