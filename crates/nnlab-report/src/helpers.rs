//! Handlebars helpers through which templates print measured numbers.
//!
//! Every helper refuses what it cannot format faithfully — a missing field, a `null` where a
//! number belongs (which is what a NaN becomes in JSON), a replicate summary whose `std` is
//! missing although `n > 1` — so a report can never print a blank or a made-up figure.
//!
//! | template                     | output                                   |
//! |------------------------------|------------------------------------------|
//! | `{{fmt x 3}}`                | `0.923`                                  |
//! | `{{pct x 2}}`                | `92.31%`                                 |
//! | `{{mean_std s 4}}`           | `0.9231 ± 0.0012 (n = 3)`, `0.9231 (n = 1)` |
//! | `{{pct_mean_std s 2}}`       | `92.31 ± 0.12 % (n = 3)`, `92.31 % (n = 1)` |
//! | `{{answer "a1.q5" text}}`    | `<span class="answer" data-answer="a1.q5">text</span>` |
//! | `{{#if_gt a b}}…{{else}}…{{/if_gt}}`, `if_lt` | the first branch when `a > b` (`a < b`) |
//!
//! `s` is a replicate summary `{"mean": …, "std": … or null, "n": …}`; `std` is `null` only
//! when `n = 1`.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathAndJson, RenderContext, RenderError, RenderErrorReason,
    Renderable, ScopedJson,
};
use serde_json::Value;

/// More decimals than an f64 carries would print noise.
const MAX_DECIMALS: u64 = 15;

/// Registers every helper of this module on `registry`.
pub(crate) fn register(registry: &mut Handlebars<'_>) {
    registry.register_helper("fmt", Box::new(FixedNumber { percent: false }));
    registry.register_helper("pct", Box::new(FixedNumber { percent: true }));
    registry.register_helper("mean_std", Box::new(ReplicateSummary { percent: false }));
    registry.register_helper("pct_mean_std", Box::new(ReplicateSummary { percent: true }));
    registry.register_helper("answer", Box::new(AnswerSpan));
    registry.register_helper("if_gt", Box::new(CompareBlock::greater()));
    registry.register_helper("if_lt", Box::new(CompareBlock::less()));
}

/// Escapes the characters that would turn text into HTML markup. Templates produce Markdown,
/// whose readers show `&#x3D;` and friends verbatim, so only what HTML strictly needs is escaped.
pub(crate) fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// `{{fmt x d}}` and `{{pct x d}}`: one number with `d` decimals, as a fraction or a percentage.
struct FixedNumber {
    percent: bool,
}

impl HelperDef for FixedNumber {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let value = number_param(h, 0)?;
        let decimals = decimals_param(h, 1)?;
        let text = if self.percent { format!("{}%", fixed(value * 100.0, decimals)) } else { fixed(value, decimals) };
        Ok(ScopedJson::Derived(Value::String(text)))
    }
}

/// `{{mean_std s d}}` and `{{pct_mean_std s d}}`: a replicate summary as `mean ± std (n = …)`.
struct ReplicateSummary {
    percent: bool,
}

impl HelperDef for ReplicateSummary {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let summary = MeanStd::from_param(h, 0)?;
        let decimals = decimals_param(h, 1)?;
        let scale = if self.percent { 100.0 } else { 1.0 };
        let unit = if self.percent { " %" } else { "" };
        let mean = fixed(summary.mean * scale, decimals);
        let text = match summary.std {
            Some(std) => format!("{mean} ± {}{unit} (n = {})", fixed(std * scale, decimals), summary.n),
            None => format!("{mean}{unit} (n = {})", summary.n),
        };
        Ok(ScopedJson::Derived(Value::String(text)))
    }
}

/// A replicate summary as the pipeline serialises it.
struct MeanStd {
    mean: f64,
    std: Option<f64>,
    n: u64,
}

impl MeanStd {
    fn from_param(h: &Helper<'_>, index: usize) -> Result<MeanStd, RenderError> {
        let param = present_param(h, index)?;
        let name = param_name(param);
        let object = param
            .value()
            .as_object()
            .ok_or_else(|| helper_error(h, format!("{name} is {}, expected {{mean, std, n}}", param.value())))?;
        let mean =
            object.get("mean").and_then(Value::as_f64).ok_or_else(|| helper_error(h, format!("{name} has no number `mean`")))?;
        let n = object
            .get("n")
            .and_then(Value::as_u64)
            .filter(|&n| n > 0)
            .ok_or_else(|| helper_error(h, format!("{name} has no positive integer `n`")))?;
        let std = match object.get("std") {
            Some(Value::Null) if n == 1 => None,
            Some(Value::Null) => return Err(helper_error(h, format!("{name} has `std` null although n = {n}"))),
            Some(value) => Some(
                value
                    .as_f64()
                    .filter(|std| *std >= 0.0)
                    .ok_or_else(|| helper_error(h, format!("{name} has `std` {value}, expected a number ≥ 0")))?,
            ),
            None => return Err(helper_error(h, format!("{name} has no `std` (null when n = 1)"))),
        };
        Ok(MeanStd { mean, std, n })
    }
}

/// `{{answer "id" text}}`: wraps an already formatted figure in a span carrying its answer id,
/// so tests and graders can find every reported figure in the HTML.
struct AnswerSpan;

impl HelperDef for AnswerSpan {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let id_param = present_param(h, 0)?;
        let id = id_param.value().as_str().filter(|id| !id.is_empty()).ok_or_else(|| {
            helper_error(h, format!("{} is {}, expected an answer id string", param_name(id_param), id_param.value()))
        })?;
        let text_param = present_param(h, 1)?;
        let text = match text_param.value() {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            other => return Err(helper_error(h, format!("{} is {other}, expected formatted text", param_name(text_param)))),
        };
        out.write(&format!(r#"<span class="answer" data-answer="{}">{}</span>"#, escape_html(id), escape_html(&text)))?;
        Ok(())
    }
}

/// `{{#if_gt a b}}…{{else}}…{{/if_gt}}` and `if_lt`: prose conditioned on measured numbers.
struct CompareBlock {
    holds: fn(f64, f64) -> bool,
}

impl CompareBlock {
    fn greater() -> Self {
        CompareBlock { holds: |a, b| a > b }
    }

    fn less() -> Self {
        CompareBlock { holds: |a, b| a < b }
    }
}

impl HelperDef for CompareBlock {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        registry: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        if !h.is_block() {
            return Err(helper_error(h, format!("is a block helper: write {{{{#{0} a b}}}}…{{{{/{0}}}}}", h.name())));
        }
        let a = number_param(h, 0)?;
        let b = number_param(h, 1)?;
        let branch = if (self.holds)(a, b) { h.template() } else { h.inverse() };
        match branch {
            Some(template) => template.render(registry, ctx, rc, out),
            None => Ok(()),
        }
    }
}

/// `x` with `decimals` decimals, never as `-0.00`: a tiny negative that rounds to zero is zero.
fn fixed(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    match text.strip_prefix('-') {
        Some(magnitude) if magnitude.chars().all(|c| c == '0' || c == '.') => magnitude.to_string(),
        _ => text,
    }
}

/// The parameter at `index`, which must be given and must resolve to a value.
fn present_param<'a, 'rc>(h: &'a Helper<'rc>, index: usize) -> Result<&'a PathAndJson<'rc>, RenderError> {
    let param = h.param(index).ok_or_else(|| helper_error(h, format!("argument {} is missing", index + 1)))?;
    if param.is_value_missing() {
        // The same error strict mode raises for `{{missing}}`, so both read alike.
        return Err(RenderErrorReason::MissingVariable(param.relative_path().cloned()).into());
    }
    Ok(param)
}

fn number_param(h: &Helper<'_>, index: usize) -> Result<f64, RenderError> {
    let param = present_param(h, index)?;
    param
        .value()
        .as_f64()
        .ok_or_else(|| helper_error(h, format!("{} is {}, expected a number", param_name(param), param.value())))
}

fn decimals_param(h: &Helper<'_>, index: usize) -> Result<usize, RenderError> {
    let param = present_param(h, index)?;
    param
        .value()
        .as_u64()
        .filter(|&decimals| decimals <= MAX_DECIMALS)
        .and_then(|decimals| usize::try_from(decimals).ok())
        .ok_or_else(|| helper_error(h, format!("decimals {} must be an integer from 0 to {MAX_DECIMALS}", param.value())))
}

/// How an error names a parameter: its path in the context, or that it was a literal.
fn param_name(param: &PathAndJson<'_>) -> String {
    match param.relative_path() {
        Some(path) => format!("`{path}`"),
        None => "the literal argument".to_string(),
    }
}

fn helper_error(h: &Helper<'_>, message: String) -> RenderError {
    RenderErrorReason::Other(format!("helper `{}`: {message}", h.name())).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Handlebars<'static> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(escape_html);
        register(&mut registry);
        registry
    }

    fn render(template: &str, data: &Value) -> Result<String, RenderError> {
        registry().render_template(template, data)
    }

    fn rendered(template: &str, data: &Value) -> String {
        render(template, data).unwrap_or_else(|e| panic!("{template}: {e}"))
    }

    #[test]
    fn fmt_and_pct_round_to_the_given_decimals() {
        let data = json!({"acc": 0.923_14, "tiny": -0.000_01, "epochs": 12});
        assert_eq!(rendered("{{fmt acc 3}}", &data), "0.923");
        assert_eq!(rendered("{{fmt epochs 0}}", &data), "12");
        assert_eq!(rendered("{{fmt tiny 2}}", &data), "0.00");
        assert_eq!(rendered("{{pct acc 2}}", &data), "92.31%");
    }

    #[test]
    fn mean_std_prints_replicates_and_handles_a_single_run() {
        let data = json!({
            "three": {"mean": 0.923_14, "std": 0.001_23, "n": 3},
            "one": {"mean": 0.923_14, "std": null, "n": 1},
        });
        assert_eq!(rendered("{{mean_std three 4}}", &data), "0.9231 ± 0.0012 (n = 3)");
        assert_eq!(rendered("{{mean_std one 4}}", &data), "0.9231 (n = 1)");
        assert_eq!(rendered("{{pct_mean_std three 2}}", &data), "92.31 ± 0.12 % (n = 3)");
        assert_eq!(rendered("{{pct_mean_std one 2}}", &data), "92.31 % (n = 1)");
    }

    #[test]
    fn inconsistent_summaries_are_refused() {
        let cases = [
            json!({"s": {"mean": 0.9, "std": null, "n": 3}}),
            json!({"s": {"mean": 0.9, "n": 3}}),
            json!({"s": {"mean": null, "std": 0.1, "n": 3}}),
            json!({"s": {"mean": 0.9, "std": 0.1, "n": 0}}),
            json!({"s": {"mean": 0.9, "std": -0.1, "n": 3}}),
            json!({"s": 0.9}),
        ];
        for data in &cases {
            let error = render("{{mean_std s 2}}", data).expect_err("inconsistent summary");
            assert!(error.to_string().contains("`s`"), "{error}");
        }
    }

    #[test]
    fn a_null_number_is_an_error_not_a_blank() {
        let error = render("{{fmt loss 3}}", &json!({"loss": null})).expect_err("null");
        assert!(error.to_string().contains("`loss` is null"), "{error}");
    }

    #[test]
    fn a_missing_field_names_its_path() {
        let error = render("{{pct q5.test_acc 2}}", &json!({"q5": {}})).expect_err("missing");
        assert!(matches!(error.reason(), RenderErrorReason::MissingVariable(Some(path)) if path == "q5.test_acc"), "{error}");
    }

    #[test]
    fn decimals_must_be_a_small_integer() {
        assert!(render("{{fmt x 2.5}}", &json!({"x": 1.0})).is_err());
        assert!(render("{{fmt x 40}}", &json!({"x": 1.0})).is_err());
        assert!(render("{{fmt x}}", &json!({"x": 1.0})).is_err());
    }

    #[test]
    fn answer_wraps_formatted_text_in_a_findable_span() {
        let data = json!({"acc": {"mean": 0.98, "std": 0.001, "n": 3}});
        assert_eq!(
            rendered(r#"{{answer "a1.q5.test_acc" (pct_mean_std acc 1)}}"#, &data),
            r#"<span class="answer" data-answer="a1.q5.test_acc">98.0 ± 0.1 % (n = 3)</span>"#
        );
        assert_eq!(
            rendered(r#"{{answer "a1.params" 203530}}"#, &data),
            r#"<span class="answer" data-answer="a1.params">203530</span>"#
        );
    }

    #[test]
    fn comparison_blocks_choose_by_measured_numbers() {
        let data = json!({"relu": 0.98, "linear": 0.92});
        let template = "{{#if_gt relu linear}}higher{{else}}not higher{{/if_gt}}";
        assert_eq!(rendered(template, &data), "higher");
        let template = "{{#if_lt relu linear}}lower{{else}}not lower{{/if_lt}}";
        assert_eq!(rendered(template, &data), "not lower");
        assert!(render("{{#if_gt relu absent}}x{{/if_gt}}", &data).is_err());
        assert!(render("{{if_gt relu linear}}", &data).is_err());
    }

    #[test]
    fn escaping_keeps_markdown_readable() {
        assert_eq!(escape_html(r#"a<b & "c" = d"#), "a&lt;b &amp; &quot;c&quot; = d");
    }
}
