//! Resident ID numbers (公民身份号码) as every service handles them: the
//! ISO 7064 MOD 11-2 check character, and the masked form shown to roles that
//! do not need the full number.

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

/// `110101********123X`: the division code and the last four; no birth date.
pub fn mask_id_number(id: &str) -> String {
    match (id.get(..6), id.get(14..)) {
        (Some(head), Some(tail)) if id.len() == 18 => format!("{head}********{tail}"),
        _ => "*".repeat(id.chars().count()),
    }
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
    }
}
