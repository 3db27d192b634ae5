//! Markdown → HTML with tables, footnotes, strikethrough and an id on every heading.

use std::collections::HashSet;

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};

/// Converts report Markdown to an HTML fragment (no `<html>` or `<body>`).
///
/// Every heading gets an id so that sections can be linked to: an explicit one written as
/// `## Test accuracy {#a1.q5}`, otherwise a slug of its text (`test-accuracy`), made unique
/// within the page by a `-1`, `-2`, … suffix.
pub fn markdown_to_html(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut events: Vec<Event<'_>> = Parser::new_ext(markdown, options).collect();
    assign_heading_ids(&mut events);
    let mut out = String::with_capacity(markdown.len() + markdown.len() / 2);
    html::push_html(&mut out, events.into_iter());
    out
}

fn assign_heading_ids(events: &mut [Event<'_>]) {
    // Explicit ids are reserved first, so a generated id never takes one a link relies on.
    let mut taken: HashSet<String> = events
        .iter()
        .filter_map(|event| match event {
            Event::Start(Tag::Heading { id: Some(id), .. }) => Some(id.to_string()),
            _ => None,
        })
        .collect();
    for index in 0..events.len() {
        if !matches!(events[index], Event::Start(Tag::Heading { id: None, .. })) {
            continue;
        }
        let id = unique_id(slug(&heading_text(&events[index + 1..])), &mut taken);
        if let Event::Start(Tag::Heading { id: slot, .. }) = &mut events[index] {
            *slot = Some(CowStr::from(id));
        }
    }
}

/// The plain text of the heading whose content starts at `events[0]`.
fn heading_text(events: &[Event<'_>]) -> String {
    events
        .iter()
        .take_while(|event| !matches!(event, Event::End(TagEnd::Heading(_))))
        .filter_map(|event| match event {
            Event::Text(text) | Event::Code(text) => Some(text.as_ref()),
            _ => None,
        })
        .collect()
}

/// GitHub-style slug: lower case, spaces to `-`, only letters, digits, `-` and `_` kept.
fn slug(text: &str) -> String {
    let slug: String = text
        .trim()
        .chars()
        .filter_map(|c| match c {
            c if c.is_whitespace() => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect();
    if slug.is_empty() {
        "section".to_string()
    } else {
        slug
    }
}

fn unique_id(base: String, taken: &mut HashSet<String>) -> String {
    let mut candidate = base.clone();
    let mut suffix = 1;
    while taken.contains(&candidate) {
        candidate = format!("{base}-{suffix}");
        suffix += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_become_html_tables() {
        let html = markdown_to_html("| model | acc |\n|---|---:|\n| relu | 0.98 |\n");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<td>relu</td>"), "{html}");
    }

    #[test]
    fn footnotes_and_strikethrough_are_enabled() {
        let html = markdown_to_html("Seeded.[^1] ~~guess~~\n\n[^1]: Three replicates.\n");
        assert!(html.contains("footnote-definition"), "{html}");
        assert!(html.contains("<del>guess</del>"), "{html}");
    }

    #[test]
    fn headings_get_unique_slugs_or_keep_explicit_ids() {
        let html =
            markdown_to_html("# Test accuracy\n\n## Test accuracy\n\n## `a1.cnn` history {#a1.q11}\n\n## Test-accuracy-1\n");
        assert!(html.contains(r#"<h1 id="test-accuracy">"#), "{html}");
        assert!(html.contains(r#"<h2 id="test-accuracy-1">"#), "{html}");
        assert!(html.contains(r#"<h2 id="a1.q11">"#), "{html}");
        assert!(html.contains(r#"<h2 id="test-accuracy-1-1">"#), "{html}");
    }

    #[test]
    fn inline_html_spans_pass_through() {
        let html = markdown_to_html(r#"Accuracy <span class="answer" data-answer="x">0.98</span>."#);
        assert!(html.contains(r#"<span class="answer" data-answer="x">0.98</span>"#), "{html}");
    }
}
