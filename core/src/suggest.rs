//! "Did you mean": the closest known name to a misspelt one, for the
//! messages of every reader and rule that names what it expected.

/// The closest of `candidates` to `input`, when one is close enough to be a
/// likely typo ("did you mean").
pub fn did_you_mean<'c>(input: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let input = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (levenshtein(&input, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(input.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` or nothing, for appending to a message.
pub fn suggestion<'c>(input: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    did_you_mean(input, candidates).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default()
}

/// Edit distance where swapping two neighbours counts as one edit
/// (optimal string alignment): `opne` is one edit from `open`.
fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d: Vec<Vec<usize>> =
        (0..=a.len()).map(|i| (0..=b.len()).map(|j| if i == 0 { j } else { i }).collect()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["manual_override", "contact_tag", "any_available"];
        assert_eq!(did_you_mean("manul_override", names), Some("manual_override"));
        assert_eq!(did_you_mean("Contact_Tags", names), Some("contact_tag"));
        assert_eq!(did_you_mean("zzz", names), None);
        assert_eq!(did_you_mean("opne", ["open", "close"]), Some("open"));
    }
}
