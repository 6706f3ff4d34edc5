//! Every symbol the UI draws, in one place, so a test can check that the
//! fonts bundled with the app have a glyph for each (a missing glyph shows
//! as an empty box).

/// Presence dot of a member (coloured online / offline).
pub const PRESENCE: &str = "⏺";
/// A message on its way (no answer yet).
pub const SENDING: &str = "⏳";
/// Saved on this device.
pub const STORED: &str = "✔";
/// Held by a peer (replica, or members).
pub const DELIVERED: &str = "✔✔";
/// A reply's quote.
pub const REPLY: &str = "↪";
/// Scroll to the newest message.
pub const NEWEST: &str = "⬇";
/// Create a server.
pub const CREATE: &str = "+";
/// Join with an invite.
pub const JOIN: &str = "⤵";
/// Discover public servers.
pub const DISCOVER: &str = "🔍";
/// Direct messages.
pub const DMS: &str = "✉";
/// Settings.
pub const SETTINGS: &str = "⚙";
/// Diagnostics.
pub const DIAGNOSTICS: &str = "📊";
/// The reactions offered in a message's menu.
pub const QUICK_REACTIONS: [&str; 6] = ["👍", "❤", "😂", "🎉", "😮", "👀"];

/// All symbols above.
pub fn all() -> Vec<&'static str> {
    let mut all = vec![
        PRESENCE,
        SENDING,
        STORED,
        DELIVERED,
        REPLY,
        NEWEST,
        CREATE,
        JOIN,
        DISCOVER,
        DMS,
        SETTINGS,
        DIAGNOSTICS,
        "—",
        "…",
    ];
    all.extend(QUICK_REACTIONS);
    all
}

#[cfg(test)]
mod tests {
    use skrifa::MetadataProvider;

    use super::*;

    /// Whether a font of egui's default proportional family maps `c`.
    /// (egui's own `has_glyph` cannot tell a glyph of the replacement
    /// character's face from a missing one.)
    fn drawable(c: char) -> bool {
        let fonts = egui::FontDefinitions::default();
        fonts.families[&egui::FontFamily::Proportional]
            .iter()
            .filter_map(|name| fonts.font_data.get(name))
            .any(|data| {
                skrifa::FontRef::from_index(&data.font, data.index)
                    .is_ok_and(|font| font.charmap().map(c).is_some())
            })
    }

    #[test]
    fn the_bundled_fonts_draw_every_symbol() {
        for symbol in all() {
            for c in symbol.chars() {
                assert!(drawable(c), "no glyph for {c:?} (U+{:04X})", u32::from(c));
            }
        }
        // The check can fail: this tick mark is in none of the fonts.
        assert!(!drawable('✓'));
    }
}
