//! CSRF tokens: every form of the staff screen carries its session's token in a hidden field
//! `csrf`, and every POST is refused (403) unless the field matches. The login form, before
//! there is a session, uses the same check against a token in its own short cookie (a
//! "double-submit" token), so a login cannot be forged from another site either.

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// A new random token: 128 bits from the thread's CSPRNG, as 32 hex digits.
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Whether `given` (from a form) is the `expected` token, compared in constant time. An empty
/// or missing token never matches.
pub fn matches(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else {
        return false;
    };
    if expected.is_empty() || expected.len() != given.len() {
        return false;
    }
    expected
        .bytes()
        .zip(given.bytes())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_128_bit_and_only_the_same_token_matches() {
        let token = new_token();
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(token, new_token());
        assert!(matches(&token, Some(&token.clone())));
        assert!(!matches(&token, None));
        assert!(!matches(&token, Some("")));
        assert!(!matches(&token, Some(&token[..31])));
        let mut other = token.clone().into_bytes();
        other[0] = if other[0] == b'a' { b'b' } else { b'a' };
        assert!(!matches(&token, Some(&String::from_utf8(other).unwrap())));
        assert!(!matches("", Some("")));
    }
}
