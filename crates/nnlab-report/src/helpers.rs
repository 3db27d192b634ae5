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
//! | `{{answer "a1.q5" s pct=2}}` | `<span class="answer" data-answer="a1.q5">92.31 ± 0.12 % (n = 3)</span>` |
//! | `{{answer "a1.p" x dec=4}}`  | the same span around `{{fmt x 4}}` (`mean_std` for a summary) |
//! | `{{answer "a1.q9" v}}`       | the span around `v` as it is: a category (text) or an exact number |
//! | `{{#if_gt a b}}…{{else}}…{{/if_gt}}`, `if_lt` | the first branch when `a > b` (`a < b`) |
//!
//! `s` is a replicate summary `{"mean": …, "std": … or null, "n": …}`; `std` is `null` only
//! when `n = 1`. Every `answer` is also recorded, value and all, in the renderer's [`AnswerLog`]:
//! the answer key is built from what the pages actually print.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathAndJson, RenderContext, RenderError, RenderErrorReason,
    Renderable, ScopedJson,
};
use serde::Serialize;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// More decimals than an f64 carries would print noise.
const MAX_DECIMALS: u64 = 15;

/// One answer a page printed: its id, the text shown and the value behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedAnswer {
    pub id: String,
    pub text: String,
    /// A replicate summary `{mean, std, n, …}`, a number or a text, as the context held it.
    pub value: Value,
    /// Printed as a percentage of a fraction.
    pub percent: bool,
    /// Decimals printed (in the printed unit), where the helper formatted a number.
    pub decimals: Option<usize>,
    /// For a choice (the best of several): `{agree, of}`, how many replicates on their own make it too.
    pub agreement: Option<Value>,
    /// A time or a speed (`timing=true`): a property of the machine more than of the model.
    pub timing: bool,
}

/// The answers recorded while rendering, in the order the pages printed them.
#[derive(Debug, Clone, Default)]
pub struct AnswerLog(Arc<Mutex<Vec<RecordedAnswer>>>);

impl AnswerLog {
    /// Everything recorded since the last call.
    pub fn take(&self) -> Vec<RecordedAnswer> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn push(&self, answer: RecordedAnswer) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(answer);
    }
}

/// Registers every helper of this module on `registry`; `answers` records what `answer` prints.
pub(crate) fn register(registry: &mut Handlebars<'_>, answers: AnswerLog) {
    registry.register_helper("fmt", Box::new(FixedNumber { percent: false }));
    registry.register_helper("pct", Box::new(FixedNumber { percent: true }));
    registry.register_helper("mean_std", Box::new(ReplicateSummary { percent: false }));
    registry.register_helper("pct_mean_std", Box::new(ReplicateSummary { percent: true }));
    registry.register_helper("answer", Box::new(AnswerSpan { log: answers }));
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
        Ok(ScopedJson::Derived(Value::String(summary_text(&summary, self.percent, decimals))))
    }
}

/// `mean ± std (n = k)`, or `mean (n = 1)`; as a percentage of a fraction with `percent`.
fn summary_text(summary: &MeanStd, percent: bool, decimals: usize) -> String {
    let scale = if percent { 100.0 } else { 1.0 };
    let unit = if percent { " %" } else { "" };
    let mean = fixed(summary.mean * scale, decimals);
    match summary.std {
        Some(std) => format!("{mean} ± {}{unit} (n = {})", fixed(std * scale, decimals), summary.n),
        None => format!("{mean}{unit} (n = {})", summary.n),
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

/// `{{answer "id" value pct=d}}` (or `dec=d`, or neither): prints `value` — a replicate summary
/// as `mean ± std (n)`, a number with `d` decimals, a text or an integer as it is — in a span
/// carrying its answer id, so that tests and graders find every reported figure in the HTML, and
/// records it in the answer log. A summary must say how it is printed. `agreement={agree, of}`
/// records, for a choice, how many replicates make it on their own; `timing=true` marks a time or a
/// speed, which depends on the machine.
struct AnswerSpan {
    log: AnswerLog,
}

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
        let value_param = present_param(h, 1)?;
        let format = match (h.hash_get("pct"), h.hash_get("dec")) {
            (Some(_), Some(_)) => return Err(helper_error(h, format!("answer {id}: give pct= or dec=, not both"))),
            (Some(d), None) => Some((true, decimals_value(h, d)?)),
            (None, Some(d)) => Some((false, decimals_value(h, d)?)),
            (None, None) => None,
        };
        let value = value_param.value();
        let text = match (value, format) {
            (Value::Object(_), Some((percent, decimals))) => summary_text(&MeanStd::from_param(h, 1)?, percent, decimals),
            (Value::Object(_), None) => {
                return Err(helper_error(h, format!("answer {id} is a replicate summary: say how to print it (pct=… or dec=…)")))
            }
            (Value::Number(number), Some((percent, decimals))) => {
                let x = number.as_f64().expect("JSON numbers are f64-representable");
                if percent {
                    format!("{}%", fixed(x * 100.0, decimals))
                } else {
                    fixed(x, decimals)
                }
            }
            (Value::Number(number), None) => number.to_string(),
            (Value::String(text), None) if !text.is_empty() => text.clone(),
            (other, _) => {
                return Err(helper_error(
                    h,
                    format!("answer {id}: {} is {other}, expected a summary, a number or a text", param_name(value_param)),
                ))
            }
        };
        self.log.push(RecordedAnswer {
            id: id.to_string(),
            text: text.clone(),
            value: value.clone(),
            percent: format.is_some_and(|(percent, _)| percent),
            decimals: format.map(|(_, decimals)| decimals),
            agreement: h.hash_get("agreement").map(|a| a.value().clone()),
            timing: h.hash_get("timing").is_some_and(|t| t.value().as_bool() == Some(true)),
        });
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
    decimals_value(h, present_param(h, index)?)
}

fn decimals_value(h: &Helper<'_>, param: &PathAndJson<'_>) -> Result<usize, RenderError> {
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
        register(&mut registry, AnswerLog::default());
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
    fn answer_prints_its_value_in_a_findable_span_and_records_it() {
        let data = json!({"acc": {"mean": 0.98, "std": 0.001, "n": 3}, "lr": 0.05, "best": "a7a.cnn3"});
        let log = AnswerLog::default();
        let mut registry = registry();
        register(&mut registry, log.clone());
        let render = |template: &str| registry.render_template(template, &data).unwrap();
        assert_eq!(
            render(r#"{{answer "a1.q5.test_acc" acc pct=1}}"#),
            r#"<span class="answer" data-answer="a1.q5.test_acc">98.0 ± 0.1 % (n = 3)</span>"#
        );
        assert_eq!(render(r#"{{answer "a1.params" 203530}}"#), r#"<span class="answer" data-answer="a1.params">203530</span>"#);
        assert!(render(r#"{{answer "x.lr" lr dec=3 timing=true}}"#).contains(">0.050<"));
        assert!(render(r#"{{answer "x.best" best}}"#).contains(">a7a.cnn3<"));
        let recorded = log.take();
        assert_eq!(recorded.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["a1.q5.test_acc", "a1.params", "x.lr", "x.best"]);
        assert_eq!((recorded[0].percent, recorded[0].decimals), (true, Some(1)));
        assert_eq!(recorded[0].value, data["acc"]);
        assert_eq!((recorded[1].value.clone(), recorded[1].decimals), (json!(203530), None));
        assert_eq!(recorded.iter().map(|a| a.timing).collect::<Vec<_>>(), [false, false, true, false]);
        assert!(log.take().is_empty(), "taking empties the log");
    }

    #[test]
    fn answer_refuses_a_summary_without_a_format_and_values_it_cannot_print() {
        let data = json!({"acc": {"mean": 0.98, "std": 0.001, "n": 3}, "empty": "", "flag": true});
        assert!(render(r#"{{answer "a" acc}}"#, &data).unwrap_err().to_string().contains("say how to print it"));
        assert!(render(r#"{{answer "a" acc pct=1 dec=2}}"#, &data).unwrap_err().to_string().contains("not both"));
        assert!(render(r#"{{answer "a" empty}}"#, &data).is_err());
        assert!(render(r#"{{answer "a" flag}}"#, &data).unwrap_err().to_string().contains("expected a summary"));
        assert!(render(r#"{{answer "a" missing}}"#, &data).is_err());
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
