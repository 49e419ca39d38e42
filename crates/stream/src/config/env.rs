//! Environment variables in config files, as vector and Docker Compose
//! write them: `${VAR}`, `${VAR:-default}` (the default when `VAR` is
//! unset or empty), `${VAR:?message}` (refused with `message` when unset
//! or empty), and `$$` for a literal `$`. A `$` followed by anything else
//! stays as it is. Every config file is read through [`read_config`], so
//! secrets can stay out of the files.

use std::path::Path;

/// Why a file's variables could not be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    #[error(
        "line {line}: ${{{name}}} is not set (give it a value or a default: ${{{name}:-default}})"
    )]
    Unset { line: usize, name: String },
    #[error("line {line}: ${{{name}}}: {message}")]
    Required {
        line: usize,
        name: String,
        message: String,
    },
    #[error("line {line}: unterminated ${{ (missing `}}`; write $$ for a literal $)")]
    Unterminated { line: usize },
    #[error(
        "line {line}: {name:?} is not a variable name (letters, digits and _, not starting with a digit)"
    )]
    BadName { line: usize, name: String },
}

/// `text` with every variable filled in from `lookup`.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let line = text[..text.len() - rest.len() + at].matches('\n').count() + 1;
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or(InterpolationError::Unterminated { line })?;
            out.push_str(&substitute(&body[..end], line, &lookup)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of one `${...}` body.
fn substitute(
    body: &str,
    line: usize,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let bad_name = |name: &str| InterpolationError::BadName {
        line,
        name: name.to_owned(),
    };
    let (name, fallback) = match body.split_once(':') {
        Some((name, fallback)) => (name, Some(fallback)),
        None => (body, None),
    };
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(bad_name(name));
    }
    let value = lookup(name).filter(|v| !v.is_empty());
    match fallback {
        None => value.ok_or_else(|| InterpolationError::Unset {
            line,
            name: name.to_owned(),
        }),
        Some(fallback) => match (fallback.split_at_checked(1), value) {
            (Some(("-", _)), Some(value)) | (Some(("?", _)), Some(value)) => Ok(value),
            (Some(("-", default)), None) => Ok(default.to_owned()),
            (Some(("?", message)), None) => Err(InterpolationError::Required {
                line,
                name: name.to_owned(),
                message: message.to_owned(),
            }),
            _ => Err(bad_name(body)),
        },
    }
}

/// A config file's text with the process environment filled in (errors
/// say what went wrong, not which file: the caller names it).
pub fn read_config(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    interpolate(&text, |name| std::env::var(name).ok()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(text: &str) -> Result<String, InterpolationError> {
        interpolate(text, |name| match name {
            "USER" => Some("alice".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        })
    }

    #[test]
    fn fills_variables_defaults_and_literal_dollars() {
        assert_eq!(
            fill("u = \"${USER}\"\nh = \"${HOST:-localhost:9092}\"").unwrap(),
            "u = \"alice\"\nh = \"localhost:9092\""
        );
        assert_eq!(
            fill("p = \"$$5 ${EMPTY:-x} $HOME\"").unwrap(),
            "p = \"$5 x $HOME\""
        );
        assert_eq!(fill("a = '${USER:-}'").unwrap(), "a = 'alice'");
        assert_eq!(fill("a = '${NOPE:-}'").unwrap(), "a = ''");
    }

    #[test]
    fn refuses_what_it_cannot_fill_with_the_line() {
        assert_eq!(
            fill("a = 1\nb = \"${PASSWORD}\"").unwrap_err(),
            InterpolationError::Unset {
                line: 2,
                name: "PASSWORD".into()
            }
        );
        assert_eq!(
            fill("${TOKEN:?set the registry token}")
                .unwrap_err()
                .to_string(),
            "line 1: ${TOKEN}: set the registry token"
        );
        assert_eq!(
            fill("\n\nx = \"${USER\"").unwrap_err(),
            InterpolationError::Unterminated { line: 3 }
        );
        assert!(matches!(
            fill("${1X}").unwrap_err(),
            InterpolationError::BadName { .. }
        ));
        assert!(matches!(
            fill("${USER:+x}").unwrap_err(),
            InterpolationError::BadName { .. }
        ));
    }
}
