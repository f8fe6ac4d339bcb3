//! The input limits (rules.yaml `limits:`, docs/rules.md): kept in core
//! because the world file readers enforce them as well as the evaluator.

/// Input limits (rules.yaml `limits:`): what a request or a data file may
/// hold before it is refused with a clear error rather than processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Longest message body, in bytes.
    pub max_body_bytes: usize,
    /// Most tags on one contact.
    pub max_tags: usize,
    /// Longest tag, in bytes.
    pub max_tag_bytes: usize,
    /// Most override / temporary-switch patterns in one body.
    pub max_patterns: usize,
    /// Largest world file, in bytes.
    pub max_world_bytes: u64,
}

impl Default for InputLimits {
    fn default() -> InputLimits {
        InputLimits {
            max_body_bytes: 64 * 1024,
            max_tags: 1000,
            max_tag_bytes: 1024,
            max_patterns: 100,
            max_world_bytes: 1 << 30,
        }
    }
}
