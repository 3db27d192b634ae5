//! The a1 report renders `templates/partials/a1_lowlevel.md.hbs` in strict mode, with the
//! serialised worked example under the key `lowlevel`: a path the partial names that the example
//! does not have stops the whole report. These tests catch that here, without a renderer, by
//! resolving every `{{…}}` expression of the partial in the example's JSON, and check that the
//! partial answers each question of the exercise under its own anchor.

use nnlab_lowlevel::worked_example;
use serde_json::{json, Value};

const PARTIAL: &str = include_str!("../../../templates/partials/a1_lowlevel.md.hbs");

/// The questions of exercise 3, in the order the partial answers them.
const QUESTIONS: [&str; 6] = ["a1.q20", "a1.q21", "a1.q22", "a1.q23", "a1.q24", "a1.q25"];

#[test]
fn every_path_the_partial_names_exists_in_the_worked_example() {
    let context = json!({ "lowlevel": serde_json::to_value(worked_example(42).unwrap()).unwrap() });
    let check = check_paths(PARTIAL, &context);
    assert!(check.problems.is_empty(), "the partial names what the worked example lacks:\n{}", check.problems.join("\n"));
    // Guards the checker itself: a parsing slip that skipped most expressions would pass above.
    assert!(check.paths_checked >= 50, "only {} paths were checked", check.paths_checked);
}

#[test]
fn the_checker_reports_missing_paths_and_fields_missing_inside_each() {
    let context = json!({ "a": { "b": 1, "list": [{ "x": 1 }, { "y": 2 }], "none": [] } });
    let template = "{{a.b}} {{fmt a.c 2}} {{#each a.list}}{{x}}{{#if @last}}{{/if}}{{/each}} \
                    {{#each a.none}}{{z}}{{/each}}";
    let check = check_paths(template, &context);
    assert_eq!(
        check.problems,
        [
            "`a.c` does not resolve",
            "`x` does not resolve in one element of an #each",
            "`a.none` is an empty array, so what its #each names goes unchecked",
        ]
    );
}

#[test]
fn the_partial_answers_each_question_under_its_anchor() {
    assert!(PARTIAL.starts_with("## Exercise 3: low-level functions (from scratch)\n"));
    let mut rest = PARTIAL;
    for question in QUESTIONS {
        let anchor = format!("<a id=\"{question}\"></a>\n### {question} — ");
        let position = rest.find(&anchor).unwrap_or_else(|| panic!("no anchored heading for {question} (or out of order)"));
        rest = &rest[position + anchor.len()..];
    }
}

/// What checking a template found.
struct PathCheck {
    /// Context paths looked up, counting each `#each` element separately.
    paths_checked: usize,
    /// One line per path that strict mode would refuse, or that could not be checked.
    problems: Vec<String>,
}

/// Resolves every path `template` names against `context`, reading the paths inside an
/// `{{#each}}` in every element of its array, as handlebars does.
fn check_paths(template: &str, context: &Value) -> PathCheck {
    let mut check = PathCheck { paths_checked: 0, problems: Vec::new() };
    // The contexts a path is read in: the root, or every element of the enclosing #each arrays.
    let mut scopes: Vec<Vec<&Value>> = vec![vec![context]];
    for expression in expressions(template) {
        let mut words = expression.split_whitespace();
        let head = words.next().unwrap_or_default();
        let params: Vec<&str> = words.collect();
        let contexts = scopes.last().expect("the root scope is never closed").clone();
        let inside_each = scopes.len() > 1;
        match head {
            "#each" => {
                let path = params.first().expect("#each names an array");
                let mut elements = Vec::new();
                for context in &contexts {
                    check.paths_checked += 1;
                    match resolve(context, path) {
                        Some(Value::Array(array)) => elements.extend(array),
                        _ => check.problems.push(format!("`{path}` is not an array")),
                    }
                }
                if elements.is_empty() {
                    check.problems.push(format!("`{path}` is an empty array, so what its #each names goes unchecked"));
                }
                scopes.push(elements);
            }
            "/each" => {
                scopes.pop();
                assert!(!scopes.is_empty(), "an /each without its #each");
            }
            // `if` only tests its value; it does not change what paths are read in.
            "#if" | "#unless" => check.read(&contexts, &params, inside_each),
            "else" | "/if" | "/unless" => {}
            _ if head.starts_with('!') || head.starts_with('>') => {}
            _ if head.starts_with('#') || head.starts_with('/') => {
                panic!("the checker does not know the block `{expression}`")
            }
            // `{{path}}`, or a helper call such as `{{fmt path 3}}`.
            _ if params.is_empty() => check.read(&contexts, &[head], inside_each),
            _ => check.read(&contexts, &params, inside_each),
        }
    }
    assert_eq!(scopes.len(), 1, "an #each without its /each");
    check
}

impl PathCheck {
    /// Looks up each of `params` that is a path (not a literal or an `@` variable) in every
    /// context; a null counts as missing, since it would print as nothing.
    fn read(&mut self, contexts: &[&Value], params: &[&str], inside_each: bool) {
        for &param in params.iter().filter(|param| is_path(param)) {
            assert!(!param.starts_with("../"), "the checker does not follow `{param}`");
            for context in contexts {
                self.paths_checked += 1;
                if resolve(context, param).is_none_or(Value::is_null) {
                    let place = if inside_each { " in one element of an #each" } else { "" };
                    self.problems.push(format!("`{param}` does not resolve{place}"));
                    break;
                }
            }
        }
    }
}

/// The text inside each `{{…}}` (or `{{{…}}}`), without braces, whitespace control or padding.
fn expressions(template: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("every {{ is closed");
        found.push(after[..end].trim_matches(['{', '}', '~', ' ']));
        rest = &after[end + 2..];
    }
    found
}

fn is_path(param: &str) -> bool {
    let literal = param.starts_with('"')
        || param.starts_with('\'')
        || param.starts_with('@')
        || param.parse::<f64>().is_ok()
        || matches!(param, "true" | "false" | "null");
    !literal
}

/// The value at a dotted path such as `lowlevel.conv_2d.output.text` (or `this`, `this.x`,
/// `list.0`).
fn resolve<'a>(context: &'a Value, path: &str) -> Option<&'a Value> {
    let path = match path {
        "this" => "",
        _ => path.strip_prefix("this.").unwrap_or(path),
    };
    path.split('.').filter(|segment| !segment.is_empty()).try_fold(context, |value, segment| {
        let segment = segment.trim_matches(['[', ']']);
        match value {
            Value::Object(map) => map.get(segment),
            Value::Array(array) => segment.parse::<usize>().ok().and_then(|i| array.get(i)),
            _ => None,
        }
    })
}
