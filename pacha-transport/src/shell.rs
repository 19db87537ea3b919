//! The one way pacha puts a value into a shell command: single quotes.

/// Quotes `value` for a POSIX shell: the shell reads it back as exactly `value`, whatever it
/// holds (spaces, quotes, `$()`, `;`, newlines, globs), and never runs any of it.
pub fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for character in value.chars() {
        if character == '\'' {
            // Close the quote, add an escaped quote, reopen.
            quoted.push_str("'\\''");
        } else {
            quoted.push(character);
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use proptest::prelude::*;

    use super::*;

    /// What `sh` reads back from a quoted word.
    fn echo_back(values: &[&str]) -> Vec<String> {
        let script = format!(
            "for a in {}; do printf '%s\\0' \"$a\"; done",
            values.iter().map(|value| quote(value)).collect::<Vec<_>>().join(" ")
        );
        let output = Command::new("/bin/sh").arg("-c").arg(script).output().expect("sh runs");
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8(output.stdout).expect("utf-8");
        text.split_terminator('\0').map(str::to_owned).collect()
    }

    #[test]
    fn quotes_every_kind_of_trouble() {
        let values = [
            "",
            "plain",
            "with space",
            "it's",
            "''",
            "$(touch /tmp/pacha-pwned)",
            "`id`",
            "a;b|c&d",
            "new\nline",
            "*?[a]",
            "~root",
            "\\back\\slash",
            "\"double\"",
            "$HOME ${HOME}",
            "-n",
            "tab\there",
            "é ü 日本",
        ];
        assert_eq!(echo_back(&values), values);
        assert!(!std::path::Path::new("/tmp/pacha-pwned").exists());
    }

    #[test]
    fn exact_forms() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_text_round_trips_through_sh(values in prop::collection::vec("[^\u{0}]{0,12}", 1..6)) {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            prop_assert_eq!(echo_back(&refs), values);
        }
    }
}
