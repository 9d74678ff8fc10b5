//! Byte-string equality for short values (digests, UUIDs, component identifiers).

/// `a == b`, four bytes at a time. Slice equality calls `memcmp`, which on the
/// Cortex-M4 (compiler-builtins) compares a byte at a time with a call around it: about
/// 200 instructions for a 32-byte digest, a quarter of that here. Not constant-time,
/// exactly like `==` (nothing compared with it is secret).
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let word = |c: &[u8]| <[u8; 4]>::try_from(c).map(u32::from_ne_bytes).unwrap_or(0);
    let (wa, wb) = (a.chunks_exact(4), b.chunks_exact(4));
    a.len() == b.len() && wa.remainder() == wb.remainder() && wa.map(word).eq(wb.map(word))
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn agrees_with_slice_equality() {
        let v: [u8; 37] = core::array::from_fn(|i| i as u8);
        for n in 0..v.len() {
            for m in 0..v.len() {
                let (a, b) = (&v[..n], &v[..m]);
                assert_eq!(same(a, b), a == b);
                let mut c = [0u8; 37];
                c[..n].copy_from_slice(a);
                for k in 0..n {
                    c[k] ^= 1;
                    assert_eq!(same(a, &c[..n]), a == &c[..n]);
                    c[k] ^= 1;
                }
            }
        }
    }
}
