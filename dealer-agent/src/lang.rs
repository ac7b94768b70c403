//! The two languages of what staff read: Persian (the default, right to left, Persian digits)
//! and English. Used by the staff screen and by the import's messages.

/// The language of a page or a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fa,
    En,
}

impl Lang {
    /// `fa` or `en`; anything else is not a language here.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "fa" => Some(Lang::Fa),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fa => "fa",
            Lang::En => "en",
        }
    }

    /// The writing direction of the page.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::Fa => "rtl",
            Lang::En => "ltr",
        }
    }

    /// The other language (the switch on every page).
    pub fn other(self) -> Self {
        match self {
            Lang::Fa => Lang::En,
            Lang::En => Lang::Fa,
        }
    }

    /// Digits as this language shows them (Persian digits in Persian).
    pub fn digits(self, text: &str) -> String {
        match self {
            Lang::Fa => crate::jalali::to_persian_digits(text),
            Lang::En => text.to_owned(),
        }
    }

    /// One of the two texts.
    pub fn pick<'a>(self, fa: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Fa => fa,
            Lang::En => en,
        }
    }
}
