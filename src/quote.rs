//! Quoting what a user wrote or a member logged inside an error: never more than a bounded part
//! of one line, so that a 10 MB line makes a readable error and not a 10 MB one.

/// `text` cut to at most `max` characters, saying how much was left out.
pub fn clip(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… ({} more characters)", total - max)
}

/// A window of at most `max` characters of `line` around the 1-based column `col`, and the
/// column of the same character in the window, so that a caret still points at it.
pub fn around(line: &str, col: usize, max: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= max {
        return (line.to_owned(), col);
    }
    let at = col.saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(max / 2).min(chars.len() - max);
    let end = start + max;
    let mut window = String::new();
    let mut caret = at - start + 1;
    if start > 0 {
        window.push('…');
        caret += 1;
    }
    window.extend(&chars[start..end]);
    if end < chars.len() {
        window.push('…');
    }
    (window, caret)
}

/// Every line of `text` clipped to `max` characters.
pub fn clip_lines(text: &str, max: usize) -> String {
    text.lines()
        .map(|l| clip(l, max))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(around("abc", 2, 3), ("abc".to_owned(), 2));
    }

    #[test]
    fn a_long_line_is_cut_around_the_column_and_the_caret_follows() {
        let line = format!("{}X{}", "a".repeat(5000), "b".repeat(5000));
        let (window, caret) = around(&line, 5001, 100);
        assert!(window.chars().count() <= 102, "{}", window.len());
        assert_eq!(window.chars().nth(caret - 1), Some('X'));
        assert!(window.starts_with('…') && window.ends_with('…'));
        assert_eq!(clip(&line, 10), "aaaaaaaaaa… (9991 more characters)");
    }
}
