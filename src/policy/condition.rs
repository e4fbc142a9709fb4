//! CEL conditions over a verified in-toto statement.
//!
//! Variables: `predicate` (the predicate, as JSON), `predicateType`, `subjects` (list of
//! `{name, digest: {alg: hex}}`), `image` (`{registry, repository, digest, tag}`), `signer`
//! (`{identity, issuer, claims: {…}}`).
//!
//! The `cel` crate has no evaluation-cost limit, so custody bounds cost at load time: at most
//! [`MAX_EXPRESSION_LEN`] characters, at most [`MAX_COMPREHENSIONS`] comprehension macros
//! (`all`, `exists`, `exists_one`, `map`, `filter`) and none nested more than
//! [`MAX_COMPREHENSION_NESTING`] deep; the inputs are bounded by the evidence limits (DSSE
//! payload size, subject count). Undeclared variables are refused at load (the crate would only
//! notice at run time). A condition that does not return a boolean, or fails at run time, is a
//! deny with the reason — never an allow.

use std::sync::{Arc, LazyLock};

/// Longest condition accepted.
pub const MAX_EXPRESSION_LEN: usize = 2048;
/// Most comprehension macros in one condition.
pub const MAX_COMPREHENSIONS: usize = 4;
/// Deepest nesting of comprehension macros.
pub const MAX_COMPREHENSION_NESTING: usize = 2;
/// The variables a condition may use.
pub const VARIABLES: &[&str] = &["predicate", "predicateType", "subjects", "image", "signer"];
const MACROS: &[&str] = &["all", "exists", "exists_one", "map", "filter"];

static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// A compiled condition.
#[derive(Debug)]
pub struct Condition {
    source: String,
    program: cel::Program,
    variables: Vec<&'static str>,
}

/// Why a condition did not compile: the message and the (line, column) inside the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    /// Stable code: `cel-syntax`, `cel-unknown-variable`, `cel-too-costly`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// 1-based line and column within the expression, when known.
    pub position: Option<(usize, usize)>,
}

impl Condition {
    /// Compiles and checks a condition.
    ///
    /// # Errors
    /// [`ConditionError`] for syntax errors, undeclared variables and cost bounds.
    pub fn compile(source: &str) -> Result<Self, ConditionError> {
        if source.len() > MAX_EXPRESSION_LEN {
            return Err(ConditionError {
                code: "cel-too-costly",
                message: format!(
                    "condition is {} characters, more than {MAX_EXPRESSION_LEN}",
                    source.len()
                ),
                position: None,
            });
        }
        let (count, nesting) = comprehension_shape(source);
        if count > MAX_COMPREHENSIONS || nesting > MAX_COMPREHENSION_NESTING {
            return Err(ConditionError {
                code: "cel-too-costly",
                message: format!(
                    "condition uses {count} comprehension(s) nested {nesting} deep; at most {MAX_COMPREHENSIONS}, nested at most {MAX_COMPREHENSION_NESTING} deep (cost bound: CEL evaluation has no budget)"
                ),
                position: None,
            });
        }
        let program = ENV.compile(source).map_err(|e| {
            let first = e.errors.first();
            ConditionError {
                code: "cel-syntax",
                message: first.map_or_else(|| e.to_string(), |p| p.msg.clone()),
                position: first.and_then(|p| {
                    Some((
                        usize::try_from(p.pos.0).ok()?,
                        usize::try_from(p.pos.1).ok()?.max(1),
                    ))
                }),
            }
        })?;
        let bound = comprehension_variables(source);
        if let Some(unknown) = program
            .references()
            .variables()
            .into_iter()
            .find(|v| !VARIABLES.contains(v) && !bound.iter().any(|b| b == v))
        {
            return Err(ConditionError {
                code: "cel-unknown-variable",
                message: format!(
                    "unknown variable {unknown:?}: conditions may use {}",
                    VARIABLES.join(", ")
                ),
                position: None,
            });
        }
        let references = program.references();
        let used = references.variables();
        let variables = VARIABLES
            .iter()
            .copied()
            .filter(|v| used.contains(v))
            .collect();
        Ok(Self {
            source: source.to_owned(),
            program,
            variables,
        })
    }

    /// The declared variables it uses (only these are bound: binding copies the value).
    pub fn variables(&self) -> &[&'static str] {
        &self.variables
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against a bound context: `Ok(true/false)`, or why it could not decide.
    pub fn evaluate(&self, context: &ConditionContext) -> Result<bool, String> {
        match self.program.execute(&context.context) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("returned {:?}, not a boolean", other.type_of())),
            Err(e) => Err(format!("failed: {e}")),
        }
    }
}

/// Variables bound once per attestation, shared by all its conditions.
pub struct ConditionContext {
    context: cel::Context<'static, 'static>,
}

impl ConditionContext {
    /// Binds the variables (JSON values).
    ///
    /// # Errors
    /// When a value cannot be converted (it can always be, for JSON).
    pub fn new(vars: &[(&str, &serde_json::Value)]) -> Result<Self, String> {
        let mut context = cel::Context::with_env(ENV.clone());
        for (name, value) in vars {
            context
                .add_variable(*name, *value)
                .map_err(|e| format!("binding {name}: {e}"))?;
        }
        Ok(Self { context })
    }
}

/// (count, deepest nesting) of comprehension macro calls, by scanning the source.
fn comprehension_shape(source: &str) -> (usize, usize) {
    let bytes = source.as_bytes();
    let mut stack: Vec<bool> = Vec::new(); // one entry per open paren: is it a macro call?
    let (mut count, mut depth, mut max) = (0, 0, 0);
    let mut in_string: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(q) = in_string {
            if b == q && bytes.get(i.wrapping_sub(1)) != Some(&b'\\') {
                in_string = None;
            }
            continue;
        }
        match b {
            b'"' | b'\'' => in_string = Some(b),
            b'(' => {
                let before = &source[..i];
                let is_macro = MACROS
                    .iter()
                    .any(|m| before.ends_with(&format!(".{m}")) && before.len() > m.len() + 1);
                if is_macro {
                    count += 1;
                    depth += 1;
                    max = max.max(depth);
                }
                stack.push(is_macro);
            }
            b')' if stack.pop() == Some(true) => depth -= 1,
            _ => {}
        }
    }
    (count, max)
}

/// The loop variables introduced by comprehension macros (`x` in `list.all(x, …)`).
fn comprehension_variables(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for m in MACROS {
        let pat = format!(".{m}(");
        let mut rest = source;
        while let Some(i) = rest.find(&pat) {
            rest = &rest[i + pat.len()..];
            if let Some((var, _)) = rest.split_once(',') {
                let var = var.trim();
                if !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.push(var.to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> ConditionContext {
        let p = json!({"buildDefinition": {"buildType": "https://actions.github.io/buildtypes/workflow/v1"}, "runDetails": {"builder": {"id": "https://github.com/acme/x"}}});
        let s = json!([{"name": "a", "digest": {"sha256": "ab"}}]);
        ConditionContext::new(&[
            ("predicate", &p),
            ("subjects", &s),
            ("predicateType", &json!("https://slsa.dev/provenance/v1")),
        ])
        .unwrap()
    }

    #[test]
    fn true_false_and_non_boolean() {
        let c = Condition::compile(r#"predicate.buildDefinition.buildType == "https://actions.github.io/buildtypes/workflow/v1""#).unwrap();
        assert_eq!(c.evaluate(&ctx()), Ok(true));
        let c = Condition::compile(
            r#"predicate.runDetails.builder.id.startsWith("https://github.com/evil/")"#,
        )
        .unwrap();
        assert_eq!(c.evaluate(&ctx()), Ok(false));
        let c = Condition::compile("predicate.buildDefinition.buildType").unwrap();
        assert!(c.evaluate(&ctx()).unwrap_err().contains("not a boolean"));
        let c = Condition::compile("predicate.missing.key == 1").unwrap();
        assert!(c.evaluate(&ctx()).unwrap_err().starts_with("failed"));
        let c = Condition::compile(r#"subjects.all(s, has(s.digest.sha256))"#).unwrap();
        assert_eq!(c.evaluate(&ctx()), Ok(true));
    }

    #[test]
    fn load_time_errors() {
        let e = Condition::compile("predicate.a &&\n  (b ||| c)").unwrap_err();
        assert_eq!(e.code, "cel-syntax");
        assert_eq!(e.position.map(|p| p.0), Some(2));
        assert_eq!(
            Condition::compile("secrets.token == 1").unwrap_err().code,
            "cel-unknown-variable"
        );
        let nested = "subjects.all(a, subjects.all(b, subjects.all(c, true)))";
        assert_eq!(
            Condition::compile(nested).unwrap_err().code,
            "cel-too-costly"
        );
        assert!(Condition::compile("subjects.all(a, subjects.exists(b, true))").is_ok());
        assert_eq!(
            Condition::compile(&"1 == 1 && ".repeat(300))
                .unwrap_err()
                .code,
            "cel-too-costly"
        );
    }
}
