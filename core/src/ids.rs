//! Click identifiers. A sub id is Keitaro-shaped (lower-case base 36): the time in
//! milliseconds followed by 40 random bits, so ids sort roughly by time and never repeat in
//! practice across nodes.

use rand::Rng;

const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn base36(mut value: u64, width: usize, out: &mut String) {
    let mut buf = [b'0'; 13];
    let mut i = buf.len();
    while value > 0 {
        i -= 1;
        buf[i] = DIGITS[(value % 36) as usize];
        value /= 36;
    }
    let start = buf.len().saturating_sub(width).min(i);
    out.extend(buf[start..].iter().map(|&b| b as char));
}

/// A new click sub id, for example `mhq3v1k2a9x0c4f1`.
pub fn new_sub_id() -> String {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let random: u64 = rand::rng().random::<u64>() & ((1 << 40) - 1);
    let mut id = String::with_capacity(17);
    base36(millis, 9, &mut id);
    base36(random, 8, &mut id);
    id
}

/// A random token of `len` URL-safe characters (for generated secrets and Click API tokens).
pub fn random_token(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| DIGITS[rng.random_range(0..DIGITS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sub_ids_are_unique_and_url_safe() {
        let ids: HashSet<String> = (0..10_000).map(|_| new_sub_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            assert_eq!(id.len(), 17, "{id}");
            assert!(id.bytes().all(|b| DIGITS.contains(&b)));
        }
    }

    #[test]
    fn tokens_have_the_asked_length() {
        assert_eq!(random_token(32).len(), 32);
        assert_ne!(random_token(32), random_token(32));
    }
}
