//! Resident ID numbers (公民身份号码) as every service handles them: the
//! ISO 7064 MOD 11-2 check character, and the masked form shown to roles that
//! do not need the full number; and the other identifiers a service hall writes
//! down (division codes, phone numbers), each parsed into a type that can
//! only hold a valid value.

use chrono::NaiveDate;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check character of the first 17 digits; `None` if they are not 17 digits.
pub fn check_character(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += c.to_digit(10)? * w;
    }
    Some(CHECK[(sum % 11) as usize])
}

/// What an erased personal field reads as (`onedoor_personal_data` seals and
/// erases them).
pub const ERASED: &str = "[已删除]";

/// `110101********123X`: the division code and the last four; no birth date.
/// An erased number stays `[已删除]`, so the window sees it was erased.
pub fn mask_id_number(id: &str) -> String {
    if id == ERASED {
        return ERASED.to_string();
    }
    match (id.get(..6), id.get(14..)) {
        (Some(head), Some(tail)) if id.len() == 18 => format!("{head}********{tail}"),
        _ => "*".repeat(id.chars().count()),
    }
}

/// An 18-character resident ID number (公民身份号码): 6-digit division code,
/// birth date YYYYMMDD, 3-digit sequence, ISO 7064 MOD 11-2 check character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdNumber(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdNumberError {
    Length,
    Characters,
    BirthDate,
    CheckDigit,
}

impl IdNumberError {
    pub const ALL: [IdNumberError; 4] = [Self::Length, Self::Characters, Self::BirthDate, Self::CheckDigit];

    pub fn code(self) -> &'static str {
        match self {
            Self::Length => "invalid_length",
            Self::Characters => "invalid_characters",
            Self::BirthDate => "invalid_birth_date",
            Self::CheckDigit => "invalid_check_digit",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Length => "an ID number has 18 characters",
            Self::Characters => "an ID number is 17 digits followed by a digit or X",
            Self::BirthDate => "the birth date in the ID number is not a real date",
            Self::CheckDigit => "the check digit of the ID number is wrong",
        }
    }
}

impl IdNumber {
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, IdNumberError> {
        let s = raw.trim().to_ascii_uppercase();
        if s.chars().count() != 18 {
            return Err(IdNumberError::Length);
        }
        // By characters, never by byte offsets: the input may hold any Unicode.
        let body: String = s.chars().take(17).collect();
        let last: String = s.chars().skip(17).collect();
        if !body.chars().all(|c| c.is_ascii_digit()) || !last.chars().all(|c| c.is_ascii_digit() || c == 'X') {
            return Err(IdNumberError::Characters);
        }
        let birth = NaiveDate::parse_from_str(&body[6..14], "%Y%m%d").map_err(|_| IdNumberError::BirthDate)?;
        if birth > today || birth < NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date") {
            return Err(IdNumberError::BirthDate);
        }
        if check_character(&body) != last.chars().next() {
            return Err(IdNumberError::CheckDigit);
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `110101********123X`: division code and the last four, nothing of the birth date.
    pub fn masked(&self) -> String {
        mask_id_number(&self.0)
    }
}

/// A 12-digit statistical division code (统计用区划代码); its first 9 digits are the township.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DivisionCode(String);

impl DivisionCode {
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 12 && raw.chars().all(|c| c.is_ascii_digit())).then(|| Self(raw.to_string()))
    }

    pub fn township(&self) -> &str {
        &self.0[..9]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mainland mobile (11 digits starting with 1) or a landline with area code
/// (0 + 2–3 digit area code + 7–8 digits, an optional hyphen after the area code).
pub fn is_phone_number(raw: &str) -> bool {
    let digits_only = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let mobile = raw.len() == 11 && raw.starts_with('1') && digits_only(raw) && raw.as_bytes()[1] >= b'3';
    let landline = {
        let compact: String = raw.chars().filter(|c| *c != '-').collect();
        raw.matches('-').count() <= 1
            && !raw.starts_with('-')
            && !raw.ends_with('-')
            && compact.starts_with('0')
            && (10..=12).contains(&compact.len())
            && digits_only(&compact)
    };
    mobile || landline
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_character_follows_iso_7064_mod_11_2() {
        assert_eq!(check_character("11010519491231002"), Some('X'));
        assert_eq!(check_character("1101051949123100"), None);
        assert_eq!(check_character("1101051949123100a"), None);
    }

    #[test]
    fn a_masked_id_number_keeps_the_division_code_and_the_last_four() {
        assert_eq!(mask_id_number("11010519491231002X"), "110105********002X");
        assert_eq!(mask_id_number("123"), "***");
        assert_eq!(mask_id_number(ERASED), ERASED, "an erased number shows it was erased");
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    /// Builds a valid ID number from its first 17 digits.
    pub fn valid(first17: &str) -> String {
        format!("{first17}{}", check_character(first17).unwrap())
    }

    #[test]
    fn accepts_a_well_formed_id_number() {
        let id = IdNumber::parse("11010519491231002X", today()).unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert!(IdNumber::parse(&valid("33010219900307123"), today()).is_ok());
    }

    #[test]
    fn accepts_a_lowercase_x_and_normalises_it() {
        assert_eq!(IdNumber::parse("11010519491231002x", today()).unwrap().as_str(), "11010519491231002X");
    }

    #[test]
    fn rejects_an_id_number_with_a_bad_check_digit() {
        assert_eq!(IdNumber::parse("110105194912310021", today()), Err(IdNumberError::CheckDigit));
    }

    #[test]
    fn rejects_an_impossible_birth_date() {
        assert_eq!(IdNumber::parse(&valid("11010519490230002"), today()), Err(IdNumberError::BirthDate));
        assert_eq!(IdNumber::parse(&valid("11010520990101002"), today()), Err(IdNumberError::BirthDate));
    }

    #[test]
    fn rejects_wrong_length_and_characters() {
        assert_eq!(IdNumber::parse("1101051949123100", today()), Err(IdNumberError::Length));
        assert_eq!(IdNumber::parse("1101051949123100AX", today()), Err(IdNumberError::Characters));
    }

    #[test]
    fn non_ascii_characters_are_refused_by_character_never_split_by_byte() {
        assert_eq!(IdNumber::parse("1101051949123100中X", today()), Err(IdNumberError::Characters));
        assert_eq!(IdNumber::parse("11010519491231002\u{1F600}", today()), Err(IdNumberError::Characters));
    }

    #[test]
    fn masks_the_birth_date_and_sequence() {
        let id = IdNumber::parse("11010519491231002X", today()).unwrap();
        assert_eq!(id.masked(), "110105********002X");
    }

    #[test]
    fn a_division_code_has_twelve_digits_and_its_township_nine() {
        let code = DivisionCode::parse("330102001001").unwrap();
        assert_eq!(code.township(), "330102001");
        assert!(DivisionCode::parse("33010200100").is_none());
        assert!(DivisionCode::parse("33010200100a").is_none());
    }

    #[test]
    fn phone_numbers_are_mobiles_or_landlines_with_area_code() {
        assert!(is_phone_number("13800138000"));
        assert!(is_phone_number("0571-87654321"));
        assert!(is_phone_number("01012345678"));
        assert!(!is_phone_number("12345"));
        assert!(!is_phone_number("23800138000"));
        assert!(!is_phone_number("1380013800a"));
    }
}
