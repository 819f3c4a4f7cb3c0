//! The rules well-typed input must follow (broken rules are a 422 naming each field).

use validator::ValidateEmail;

use crate::error::{ApiError, FieldErrors, Result};
use crate::model::{ListQuery, NewTask, RegisterRequest, TaskPatch};

pub const TITLE_RULE: &str = "must be 1 to 200 characters";
pub const DESCRIPTION_RULE: &str = "must be at most 2000 characters";
/// PostgreSQL's `text` cannot hold U+0000: refused here as a 422 rather than failing in the
/// database as a 500.
pub const NUL_RULE: &str = "must not contain the NUL character (U+0000)";
/// The JSON Schema `pattern` of a string without U+0000.
pub const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

/// Collects every broken rule before failing, so a client learns all of them at once.
#[derive(Debug, Default)]
struct Rules(FieldErrors);

impl Rules {
    fn check(&mut self, ok: bool, field: &'static str, rule: &str) {
        if !ok {
            self.0.entry(field).or_insert_with(|| rule.to_owned());
        }
    }

    fn finish(self) -> Result<()> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::Validation(self.0)) }
    }
}

/// What `str::trim` removes (Unicode `White_Space`), as character ranges, so that the OpenAPI
/// document can state "1 to N characters once trimmed" exactly: the `\s` of ECMA-262 (JSON
/// Schema's regexes) and of Python (schemathesis) each differ from Rust's and from each other.
const WHITESPACE: [(char, char); 10] = [
    ('\t', '\r'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{A0}', '\u{A0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200A}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202F}', '\u{202F}'),
    ('\u{205F}', '\u{205F}'),
    ('\u{3000}', '\u{3000}'),
];

/// The JSON Schema `pattern` of a string that has 1 to `max` (at least 2) characters once its
/// surrounding whitespace is trimmed, and no U+0000, as `registration`, `new_task` and
/// `task_patch` check it.
pub fn trimmed_length_pattern(max: usize) -> String {
    assert!(max >= 2, "a trimmed-length pattern needs a maximum of at least 2, got {max}");
    let class: String = WHITESPACE
        .iter()
        .map(|&(from, to)| {
            let escape = |c: char| format!("\\u{:04X}", u32::from(c));
            if from == to { escape(from) } else { format!("{}-{}", escape(from), escape(to)) }
        })
        .collect();
    let (space, text) = (format!("[{class}]"), format!("[^{class}\\u0000]"));
    format!("^{space}*{text}(?:[^\\u0000]{{0,{}}}{text})?{space}*$", max - 2)
}

fn chars_between(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.chars().count())
}

fn storable(s: &str) -> bool {
    !s.contains('\0')
}

/// A registration, normalised (email lower-cased, name trimmed) when valid.
pub fn registration(mut req: RegisterRequest) -> Result<RegisterRequest> {
    req.email = req.email.trim().to_lowercase();
    req.name = req.name.trim().to_owned();
    let mut rules = Rules::default();
    rules.check(
        req.email.chars().count() <= 254 && storable(&req.email) && req.email.validate_email(),
        "email",
        "must be a valid email address of at most 254 characters",
    );
    rules.check(chars_between(&req.password, 8, 128), "password", "must be 8 to 128 characters");
    rules.check(chars_between(&req.name, 1, 100), "name", "must be 1 to 100 characters");
    rules.check(storable(&req.name), "name", NUL_RULE);
    rules.finish()?;
    Ok(req)
}

/// A new task, normalised (title trimmed) when valid.
pub fn new_task(mut task: NewTask) -> Result<NewTask> {
    task.title = task.title.trim().to_owned();
    let mut rules = Rules::default();
    rules.check(chars_between(&task.title, 1, 200), "title", TITLE_RULE);
    rules.check(storable(&task.title), "title", NUL_RULE);
    let description_ok = task.description.as_deref().is_none_or(|d| d.chars().count() <= 2000);
    rules.check(description_ok, "description", DESCRIPTION_RULE);
    rules.check(task.description.as_deref().is_none_or(storable), "description", NUL_RULE);
    rules.finish()?;
    Ok(task)
}

/// A partial update, normalised (title trimmed) when valid; `{}` is refused.
pub fn task_patch(mut patch: TaskPatch) -> Result<TaskPatch> {
    if patch.is_empty() {
        return Err(ApiError::validation(
            "body",
            "must set at least one of title, description, status, priority, due_at",
        ));
    }
    if let Some(title) = &mut patch.title {
        *title = title.trim().to_owned();
    }
    let mut rules = Rules::default();
    rules.check(patch.title.as_deref().is_none_or(|t| chars_between(t, 1, 200)), "title", TITLE_RULE);
    rules.check(patch.title.as_deref().is_none_or(storable), "title", NUL_RULE);
    let description = patch.description.as_ref().and_then(Option::as_deref);
    rules.check(description.is_none_or(|d| d.chars().count() <= 2000), "description", DESCRIPTION_RULE);
    rules.check(description.is_none_or(storable), "description", NUL_RULE);
    rules.finish()?;
    Ok(patch)
}

pub fn list_query(query: &ListQuery) -> Result<()> {
    let mut rules = Rules::default();
    rules.check((1..=100).contains(&query.limit), "limit", "must be between 1 and 100");
    rules.check(query.offset >= 0, "offset", "must be 0 or more");
    rules.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(email: &str, password: &str, name: &str) -> RegisterRequest {
        RegisterRequest { email: email.into(), password: password.into(), name: name.into() }
    }

    #[test]
    fn registration_normalises_and_reports_every_field() {
        let ok = registration(reg(" Ann@Example.COM ", "password1", "  Ann ")).expect("valid");
        assert_eq!((ok.email.as_str(), ok.name.as_str()), ("ann@example.com", "Ann"));
        let Err(ApiError::Validation(fields)) = registration(reg("nope", "short", "   ")) else {
            panic!("expected a validation error");
        };
        assert_eq!(fields.keys().copied().collect::<Vec<_>>(), ["email", "name", "password"]);
    }

    #[test]
    fn the_whitespace_ranges_are_what_trim_removes() {
        let listed = |c: char| WHITESPACE.iter().any(|&(from, to)| (from..=to).contains(&c));
        let differ: Vec<char> = (char::MIN..=char::MAX).filter(|&c| c.is_whitespace() != listed(c)).collect();
        assert!(differ.is_empty(), "whitespace not listed, or listed and not whitespace: {differ:?}");
        let pattern = trimmed_length_pattern(200);
        assert!(pattern.starts_with(r"^[\u0009-\u000D\u0020\u0085"), "{pattern}");
        assert!(pattern.contains(r"(?:[^\u0000]{0,198}[^"), "{pattern}");
    }

    #[test]
    fn nul_is_refused_in_stored_text_as_a_422() {
        let task = NewTask { title: "a\0b".into(), description: Some("\0".into()), priority: None, due_at: None };
        let Err(ApiError::Validation(fields)) = new_task(task) else { panic!("expected a validation error") };
        assert_eq!(fields.get("title").map(String::as_str), Some(NUL_RULE));
        assert_eq!(fields.get("description").map(String::as_str), Some(NUL_RULE));
        let Err(ApiError::Validation(fields)) = registration(reg("a@b.example", "password1", "x\0")) else {
            panic!("expected a validation error")
        };
        assert_eq!(fields.keys().copied().collect::<Vec<_>>(), ["name"]);
    }

    #[test]
    fn title_counts_characters_not_bytes() {
        let title = "é".repeat(200);
        let task = NewTask { title, description: None, priority: None, due_at: None };
        assert!(new_task(task.clone()).is_ok());
        let long = NewTask { title: "é".repeat(201), ..task };
        assert!(new_task(long).is_err());
    }

    #[test]
    fn empty_patch_and_bad_limits_are_refused() {
        assert!(task_patch(TaskPatch::default()).is_err());
        let bad = ListQuery { limit: 0, offset: -1, ..ListQuery::default() };
        let Err(err) = list_query(&bad) else { panic!("expected a validation error") };
        assert_eq!(err.to_string(), "limit: must be between 1 and 100; offset: must be 0 or more");
    }
}
