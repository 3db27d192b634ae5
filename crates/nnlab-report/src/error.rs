//! The one error type of report rendering; every message is one line that names the file,
//! template or figure at fault.

use std::io;
use std::path::PathBuf;

/// Why a report, page or figure could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A template directory, template or stylesheet could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    /// An output file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },

    /// A template file does not parse.
    #[error("invalid template {}: {message}", path.display())]
    Template { path: PathBuf, message: String },

    /// Two files would register under the same template name (templates and partials share
    /// one namespace in handlebars, so the second would silently replace the first).
    #[error("two templates named \"{name}\": {} and {}", first.display(), second.display())]
    DuplicateTemplate { name: String, first: PathBuf, second: PathBuf },

    /// A page asked for a template that the templates directory does not have.
    #[error("no template \"{name}\" in {} (expected {name}.md.hbs)", dir.display())]
    UnknownTemplate { name: String, dir: PathBuf },

    /// Rendering failed, typically because the context lacks a field the template uses.
    #[error("cannot render template \"{template}\": {message}")]
    Render { template: String, message: String },

    /// A page name that is not a plain file stem, so it could write outside the output directory.
    #[error("invalid page name \"{0}\": expected a file stem such as \"a1\"")]
    PageName(String),

    /// A figure's data cannot be drawn (no points, a non-finite value, …) or drawing failed.
    #[error("figure \"{title}\": {reason}")]
    Figure { title: String, reason: String },
}

/// Result of report operations.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
